package scenario

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMatcher(t *testing.T) {
	msg := []byte(`{"op":"update","data":{"room":{"id":"r1","n":3}},"items":[{"id":10},{"id":11}],"ok":true,"none":null,"esc":"a\"b"}`)
	cases := []struct {
		name string
		m    Matcher
		want bool
	}{
		{"zero matches anything", Matcher{}, true},
		{"contains yes", Matcher{Contains: []byte(`"update"`)}, true},
		{"contains no", Matcher{Contains: []byte(`"delete"`)}, false},
		{"regex yes", Matcher{Regex: regexp.MustCompile(`"id":1[01]`)}, true},
		{"regex no", Matcher{Regex: regexp.MustCompile(`^\[`)}, false},
		{"json string eq", Matcher{JSON: []Condition{NewCondition("data.room.id", OpEq, "r1")}}, true},
		{"json string eq wrong", Matcher{JSON: []Condition{NewCondition("data.room.id", OpEq, "r2")}}, false},
		{"json number vs string", Matcher{JSON: []Condition{NewCondition("data.room.id", OpEq, 1.0)}}, false},
		{"json array index", Matcher{JSON: []Condition{NewCondition("items.1.id", OpEq, 11.0)}}, true},
		{"json index out of range", Matcher{JSON: []Condition{NewCondition("items.2.id", OpExists, nil)}}, false},
		{"json gt", Matcher{JSON: []Condition{NewCondition("data.room.n", OpGt, 2.0)}}, true},
		{"json ge equal", Matcher{JSON: []Condition{NewCondition("data.room.n", OpGe, 3.0)}}, true},
		{"json lt", Matcher{JSON: []Condition{NewCondition("data.room.n", OpLt, 3.0)}}, false},
		{"json le", Matcher{JSON: []Condition{NewCondition("data.room.n", OpLe, 3.0)}}, true},
		{"json string order", Matcher{JSON: []Condition{NewCondition("op", OpGt, "apple")}}, true},
		{"json ne", Matcher{JSON: []Condition{NewCondition("op", OpNe, "delete")}}, true},
		{"json ne absent", Matcher{JSON: []Condition{NewCondition("nothing", OpNe, "x")}}, true},
		{"json bool", Matcher{JSON: []Condition{NewCondition("ok", OpEq, true)}}, true},
		{"json null", Matcher{JSON: []Condition{NewCondition("none", OpEq, nil)}}, true},
		{"json null exists", Matcher{JSON: []Condition{NewCondition("none", OpExists, nil)}}, true},
		{"json absent", Matcher{JSON: []Condition{NewCondition("data.user", OpAbsent, nil)}}, true},
		{"json escaped string", Matcher{JSON: []Condition{NewCondition("esc", OpEq, `a"b`)}}, true},
		{"json order on bool", Matcher{JSON: []Condition{NewCondition("ok", OpGt, 0.0)}}, false},
		{"all must hold", Matcher{Contains: []byte("update"), JSON: []Condition{NewCondition("op", OpEq, "update"), NewCondition("ok", OpEq, false)}}, false},
		{"stamped no", Matcher{Stamped: true}, false},
	}
	for _, c := range cases {
		if got := c.m.Match(msg); got != c.want {
			t.Fatalf("%s: Match = %v, want %v", c.name, got, c.want)
		}
	}
	notJSON := Matcher{JSON: []Condition{NewCondition("a", OpExists, nil)}}
	if notJSON.Match([]byte("hello")) {
		t.Fatalf("a JSON condition matched a text message")
	}
	if !(&Matcher{Stamped: true}).Match([]byte(`{"wsl-stamp":"1-2-3","x":1}`)) {
		t.Fatalf("stamped matcher refused a stamped message")
	}
}

func TestConditionNoAlloc(t *testing.T) {
	m := Matcher{Contains: []byte("op"), JSON: []Condition{NewCondition("data.room.id", OpEq, "r1"), NewCondition("data.room.n", OpGe, 3.0), NewCondition("items.1.id", OpExists, nil)}}
	msg := []byte(`{"op":"update","data":{"room":{"id":"r1","n":3}},"items":[{"id":10},{"id":11}]}`)
	allocs := testing.AllocsPerRun(200, func() {
		if !m.Match(msg) {
			t.Fatalf("no match")
		}
	})
	if allocs != 0 {
		t.Fatalf("Match allocates %v times per message", allocs)
	}
}

func TestCaptureExtract(t *testing.T) {
	msg := []byte(`{"session":{"token":"abc\u0021","ttl":3600},"rooms":[{"id":"lobby"}],"flags":[1,2],"ok":false} room=kitchen`)
	cases := []struct {
		name string
		c    Capture
		want string
		ok   bool
	}{
		{"json string unescaped", Capture{JSONPath: "session.token", path: splitPath("session.token")}, "abc!", true},
		{"json number", Capture{JSONPath: "session.ttl"}, "3600", true},
		{"json array element", Capture{JSONPath: "rooms.0.id"}, "lobby", true},
		{"json array as text", Capture{JSONPath: "flags"}, "[1,2]", true},
		{"json bool", Capture{JSONPath: "ok"}, "false", true},
		{"json missing", Capture{JSONPath: "session.user"}, "", false},
		{"regex group 1", Capture{Regex: regexp.MustCompile(`room=(\w+)`), Group: 1}, "kitchen", true},
		{"regex group 0", Capture{Regex: regexp.MustCompile(`room=\w+`)}, "room=kitchen", true},
		{"regex optional group unmatched", Capture{Regex: regexp.MustCompile(`room=(x)?`), Group: 1}, "", false},
		{"regex no match", Capture{Regex: regexp.MustCompile(`user=(\w+)`), Group: 1}, "", false},
	}
	for _, c := range cases {
		// The JSON document is the message up to the trailing text.
		in := msg
		if c.c.Regex == nil {
			in = msg[:strings.LastIndexByte(string(msg), '}')+1]
		}
		got, ok := c.c.Extract(in)
		if got != c.want || ok != c.ok {
			t.Fatalf("%s: Extract = %q, %v; want %q, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestJSONLookup(t *testing.T) {
	doc := ` { "a" : { "b" : [ 1 , { "c" : "x" } , [ ] ] } , "a2": -1.5e3, "dup": 1, "dup": 2, "k\"q": 7 } `
	cases := []struct {
		path string
		want string
		ok   bool
	}{
		{"", strings.TrimSpace(doc), true},
		{"a.b.0", "1", true},
		{"a.b.1.c", `"x"`, true},
		{"a.b.2", "[ ]", true},
		{"a.b.3", "", false},
		{"a.b.-1", "", false},
		{"a.b.x", "", false},
		{"a2", "-1.5e3", true},
		{"dup", "2", true}, // the last wins, as in encoding/json
		{`k"q`, "7", true},
		{"a.b.0.z", "", false},
		{"zz", "", false},
	}
	for _, c := range cases {
		got, ok := jsonLookup([]byte(doc), splitPath(c.path))
		if string(got) != c.want || ok != c.ok {
			t.Fatalf("jsonLookup(%q) = %q, %v; want %q, %v", c.path, got, ok, c.want, c.ok)
		}
	}
	for _, bad := range []string{"", "{", `{"a":`, `{"a" 1}`, `[1,`, `"abc`, "nul", `{"a":1,}`} {
		if _, ok := jsonLookup([]byte(bad), []string{"a"}); ok {
			t.Fatalf("jsonLookup found a value in %q", bad)
		}
	}
}

// FuzzJSONLookup checks the byte-walking lookup against encoding/json on
// valid documents: same presence, same value.
func FuzzJSONLookup(f *testing.F) {
	f.Add([]byte(`{"a":{"b":[1,{"c":"x"}]},"d":null}`), "a.b.1.c")
	f.Add([]byte(`[{"id":1},{"id":"two"}]`), "1.id")
	f.Add([]byte(`{"a":1,"a":2}`), "a")
	f.Add([]byte(`{"k\u0041":true}`), "kA")
	f.Fuzz(func(t *testing.T, doc []byte, path string) {
		raw, ok := jsonLookup(doc, splitPath(path))
		var v any
		if !utf8.Valid(doc) || !utf8.ValidString(path) || json.Unmarshal(doc, &v) != nil {
			return // only valid documents have an answer to compare with
		}
		want, wantOK := lookupAny(v, splitPath(path))
		if ok != wantOK {
			t.Fatalf("jsonLookup(%q, %q) ok=%v, encoding/json says %v", doc, path, ok, wantOK)
		}
		if !ok {
			return
		}
		var got any
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("jsonLookup(%q, %q) = %q, not a JSON value: %v", doc, path, raw, err)
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Fatalf("jsonLookup(%q, %q) = %s, encoding/json says %s", doc, path, g, w)
		}
	})
}

func lookupAny(v any, path []string) (any, bool) {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[p]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(x) || p[0] == '+' {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}
