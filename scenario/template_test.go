package scenario

import (
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestTemplateExpand(t *testing.T) {
	scope := TemplateScope{
		Columns: []string{"user", "token"},
		Vars:    []string{"room"},
		LookupEnv: func(k string) (string, bool) {
			return map[string]string{"TOKEN": "tok-1", "Q": `a"b`}[k], k == "TOKEN" || k == "Q"
		},
	}
	now := time.Date(2024, 5, 31, 16, 8, 37, 201_000_000, time.FixedZone("CEST", 2*3600))
	v := &Vars{Conn: 42, Seq: 7, Now: now, Row: []string{"ann", "t0"}, Captured: []string{"lobby"}}
	cases := []struct {
		src, want string
	}{
		{"plain", "plain"},
		{"", ""},
		{"${conn}/${seq}", "42/7"},
		{"${now.ms}", strconv.FormatInt(now.UnixMilli(), 10)},
		{"${now.ns}", strconv.FormatInt(now.UnixNano(), 10)},
		{"${now.rfc3339}", "2024-05-31T14:08:37.201Z"},
		{"${env.TOKEN} ${TOKEN}", "tok-1 tok-1"},
		{"${row.user}:${row.token}", "ann:t0"},
		{"room=${var.room}", "room=lobby"},
		{"$$5 and $ and $$${conn}", "$5 and $ and $42"},
		{"${ conn }", "42"},
		{"${rand.int 3 3}", "3"},
	}
	for _, c := range cases {
		tm, err := CompileTemplate(c.src, scope)
		if err != nil {
			t.Fatalf("CompileTemplate(%q): %v", c.src, err)
		}
		if got := string(tm.Append(nil, v)); got != c.want {
			t.Fatalf("%q expands to %q, want %q", c.src, got, c.want)
		}
		if tm.String() != c.src {
			t.Fatalf("String() = %q, want the source %q", tm.String(), c.src)
		}
	}
}

func TestTemplateRandom(t *testing.T) {
	tm, err := CompileTemplate("${rand.int -5 5}|${rand.str 23}|${uuid}", TemplateScope{})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	re := regexp.MustCompile(`^(-?\d+)\|([A-Za-z0-9]{23})\|([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})$`)
	v := &Vars{Rand: rand.New(rand.NewPCG(1, 1))}
	seen := map[int]bool{}
	uuids := map[string]bool{}
	for i := 0; i < 2000; i++ {
		out := string(tm.Append(nil, v))
		m := re.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("expansion %q does not match %v", out, re)
		}
		n, _ := strconv.Atoi(m[1])
		if n < -5 || n > 5 {
			t.Fatalf("rand.int %d outside [-5, 5]", n)
		}
		seen[n] = true
		uuids[m[3]] = true
	}
	if len(seen) != 11 {
		t.Fatalf("rand.int -5 5 produced %d distinct values in 2000 draws, want all 11", len(seen))
	}
	if len(uuids) != 2000 {
		t.Fatalf("%d distinct UUIDs in 2000", len(uuids))
	}
	// Without a Rand, the global source is used.
	if out := tm.Append(nil, &Vars{}); !re.Match(out) {
		t.Fatalf("expansion without Rand %q", out)
	}
}

func TestTemplateErrors(t *testing.T) {
	scope := TemplateScope{Columns: []string{"user"}, Vars: []string{"token"}, LookupEnv: func(string) (string, bool) { return "", false }}
	cases := []struct{ src, msg, hint string }{
		{"${}", "empty placeholder", "${conn}"},
		{"${conn", "unclosed placeholder", "$$"},
		{"${conn 1}", "${conn} takes no arguments", ""},
		{"${rand.int 1}", "needs two bounds", "${rand.int 1 100}"},
		{"${rand.int a b}", "bounds must be integers", ""},
		{"${rand.int 5 1}", "range is empty", ""},
		{"${rand.str 0}", "length must be 1 to", ""},
		{"${rand.str}", "needs a length", ""},
		{"${row.usr}", `no column "usr"`, "did you mean ${row.user}?"},
		{"${row.zzzzzz}", `no column "zzzzzz"`, "columns are user"},
		{"${var.tokn}", "undefined variable ${var.tokn}", "did you mean ${var.token}?"},
		{"${var.other}", "undefined variable ${var.other}", "capture it"},
		{"${env.NOPE}", "undefined environment variable ${env.NOPE}", "export NOPE"},
		{"${uuid4}", "undefined environment variable ${uuid4}", "did you mean ${uuid}?"},
		{"${now.sec}", "unknown placeholder ${now.sec}", "known placeholders: ${conn}"},
		{"${now.m}", "unknown placeholder ${now.m}", "did you mean ${now.ms}?"},
		{"${bad-name}", "unknown placeholder", ""},
	}
	for _, c := range cases {
		_, err := CompileTemplate(c.src, scope)
		if err == nil {
			t.Fatalf("CompileTemplate(%q) accepted", c.src)
		}
		if !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), c.hint) || !strings.HasPrefix(err.Error(), "scenario: template ") {
			t.Fatalf("CompileTemplate(%q) error %q, want %q with hint %q", c.src, err, c.msg, c.hint)
		}
	}
	if _, err := CompileTemplate("${row.user}", TemplateScope{}); err == nil || !strings.Contains(err.Error(), "no data file") {
		t.Fatalf("row without data: %v", err)
	}
	if _, err := CompileTemplate("${var.token}", TemplateScope{Vars: []string{"token"}, NoVars: "headers come first"}); err == nil || !strings.Contains(err.Error(), "headers come first") {
		t.Fatalf("var where refused: %v", err)
	}
}

func TestJSONTemplateEscapes(t *testing.T) {
	src := withSteps(
		`- expect: {capture: {v: {json: a}}}`,
		`- send: {json: {k: "${var.v}", n: "${conn}", s: "n=${conn}", list: [1, 2.5, true, null, "${row.c}"], "q\"k": x}}`,
	)
	src = strings.Replace(src, "flows:", "data: d.csv\nflows:", 1)
	dir := t.TempDir()
	writeFile(t, dir+"/d.csv", "c\n\"tab\there\"\n")
	p, err := Parse(dir+"/s.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	send := p.Flows[0].Steps[1].Send
	got := string(send.Append(nil, &Vars{Conn: 3, Captured: []string{"say \"hi\"\\\n"}, Row: p.Data.Row(0)}))
	want := `{"k":"say \"hi\"\\\n","n":3,"s":"n=3","list":[1,2.5,true,null,"tab\there"],"q\"k":"x"}`
	if got != want {
		t.Fatalf("json payload\n got %s\nwant %s", got, want)
	}
	if !jsonValid([]byte(got)) {
		t.Fatalf("payload is not valid JSON: %s", got)
	}
}

// TestTemplateAppendNoAlloc pins the send path's promise: expanding a
// compiled template into a buffer with room does not allocate.
func TestTemplateAppendNoAlloc(t *testing.T) {
	tm, err := CompileTemplate(`{"c":${conn},"s":${seq},"t":${now.ms},"at":"${now.rfc3339}","r":${rand.int 1 1000},"id":"${uuid}","p":"${rand.str 24}","u":"${row.user}","k":"${var.token}"}`,
		TemplateScope{Columns: []string{"user"}, Vars: []string{"token"}})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	v := &Vars{Conn: 1, Now: time.Now(), Rand: rand.New(rand.NewPCG(1, 2)), Row: []string{"ann"}, Captured: []string{"abc"}}
	buf := make([]byte, 0, 512)
	allocs := testing.AllocsPerRun(200, func() {
		v.Seq++
		buf = tm.Append(buf[:0], v)
	})
	if allocs != 0 {
		t.Fatalf("Template.Append allocates %v times per call", allocs)
	}
	send := &Send{Payload: tm}
	p := mustParse(t, withSteps(`- send: {json: {a: "${seq}"}, stamp: true}`))
	send = p.Flows[0].Steps[0].Send
	allocs = testing.AllocsPerRun(200, func() {
		v.Seq++
		buf = send.Append(buf[:0], v)
	})
	if allocs != 0 {
		t.Fatalf("stamped Send.Append allocates %v times per call", allocs)
	}
}
