package scenario

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// head is a valid scenario up to its one flow's steps; the steps given to
// withSteps start on line 6, and a step's kind key is at column 9.
const head = `target: ws://127.0.0.1:1/
phases: [{connections: 1, duration: 1s}]
flows:
  - name: f
    steps:
`

func withSteps(lines ...string) string {
	var b strings.Builder
	b.WriteString(head)
	for _, l := range lines {
		b.WriteString("      ")
		b.WriteString(l)
		b.WriteString("\n")
	}
	return b.String()
}

func mustParse(t *testing.T, src string) *Plan {
	t.Helper()
	p, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse:\n%v\nsource:\n%s", err, src)
	}
	return p
}

func TestValidationErrors(t *testing.T) {
	t.Setenv("WSLOAD_TEST_SET", "yes")
	cases := []struct {
		name string
		src  string
		at   string // "line:col" of the (first) error
		msg  string // in the message
		hint string // in the hint
	}{
		{"unknown top key", "targte: ws://x/\n" + head[len("target: ws://127.0.0.1:1/\n"):] + "      - send: x\n", "1:1", `unknown key "targte" in the scenario`, "did you mean `target`?"},
		{"unknown step key", withSteps("- expect: {contains: x, timout: 5s}"), "6:31", `unknown key "timout" in expect`, "did you mean `timeout`?"},
		{"unknown step kind", withSteps("- sned: x"), "6:9", `unknown key "sned" in a step`, "did you mean `send`?"},
		{"bare unknown step", withSteps("- pong"), "6:9", `unknown step "pong"`, "did you mean `ping`?"},
		{"two kinds in one step", withSteps("- send: x", "  expect: x"), "7:9", "one step with two kinds: send and expect", "start the second with `- `"},
		{"wrong type weight", strings.Replace(withSteps("- send: x"), "  - name: f\n", "  - name: f\n    weight: lots\n", 1), "5:13", `weight: want a number, got the string "lots"`, ""},
		{"wrong type steps", head[:len(head)-len("    steps:\n")] + "    steps: hello\n", "5:12", `steps: want a list, got the string "hello"`, "`- `"},
		{"wrong type strict", strings.Replace(withSteps("- send: x"), "  - name: f\n", "  - name: f\n    strict: 1\n", 1), "5:13", "strict: want true or false, got the number 1", ""},
		{"bad duration without unit", withSteps("- sleep: 5"), "6:16", `sleep: bad duration "5"`, "give a unit, e.g. 5s"},
		{"bad duration word", withSteps("- expect: {timeout: soon}"), "6:27", `expect.timeout: bad duration "soon"`, "such as 5s"},
		{"negative duration", withSteps("- sleep: -1s"), "6:16", "negative", ""},
		{"zero timeout", withSteps("- ping: {timeout: 0s}"), "6:25", "ping.timeout must be longer than 0", ""},
		{"undefined variable", withSteps("- send: 'token ${var.token}'"), "6:15", "undefined variable ${var.token}", "capture it in an earlier step"},
		{"variable typo", withSteps("- send: x", "- expect: {capture: {token: {json: t}}}", "- send: '${var.tokn}'"), "8:15", "undefined variable ${var.tokn}", "did you mean ${var.token}?"},
		{"variable used before capture", withSteps("- send: '${var.t}'", "- expect: {capture: {t: {json: t}}}"), "6:15", "undefined variable ${var.t}", ""},
		{"undefined env", withSteps("- send: '${env.WSLOAD_TEST_UNSET}'"), "6:15", "undefined environment variable ${env.WSLOAD_TEST_UNSET}", "export WSLOAD_TEST_UNSET"},
		{"bare placeholder typo", withSteps("- send: '${sqe}'"), "6:15", "undefined environment variable ${sqe}", "did you mean ${seq}?"},
		{"bad placeholder", withSteps("- send: '${rand.int 5}'"), "6:15", "${rand.int} needs two bounds", "${rand.int 1 100}"},
		{"unclosed placeholder", withSteps("- send: 'a ${conn'"), "6:15", "unclosed placeholder", "$$"},
		{"row without data", withSteps("- send: '${row.user}'"), "6:15", "${row.user}: no data file", "data: users.csv"},
		{"undefined mark", withSteps("- send: x", "- expect: {since: logn}"), "7:25", `undefined mark "logn"`, "add mark: logn"},
		{"mark typo", withSteps("- send: x", "  mark: login", "- expect: {since: logni}"), "8:25", `undefined mark "logni"`, "did you mean `login`?"},
		{"duplicate mark", withSteps("- send: x", "  mark: m", "- send: y", "  mark: m"), "9:15", `mark "m" is already defined`, ""},
		{"unreachable after close", withSteps("- send: x", "- close", "- send: y"), "8:9", "unreachable step: the connection is closed by the close at line 7", "add a reconnect"},
		{"unreachable after endless repeat", withSteps("- repeat: {steps: [ping]}", "- close"), "7:9", "unreachable step: the repeat at line 6 never ends", "count: or for:"},
		{"repeat body closes", withSteps("- repeat:", "    count: 3", "    steps: [{send: x}, close]"), "8:18", "the repeated steps close the connection at line 8, so the next round's send at line 8 cannot run", "reconnect"},
		{"capture without expect", withSteps("- capture: {var: t, json: a}"), "6:9", "capture has no message to read", "after an expect"},
		{"weight not positive", strings.Replace(withSteps("- send: x"), "  - name: f\n", "  - name: f\n    weight: -1\n", 1), "5:13", "weight must be positive, got -1", ""},
		{"phase without duration", strings.Replace(withSteps("- send: x"), "[{connections: 1, duration: 1s}]", "[{connections: 1}]", 1), "2:10", "phase 1 has no duration", "duration: 60s"},
		{"phase without load", strings.Replace(withSteps("- send: x"), "[{connections: 1, duration: 1s}]", "[{duration: 1s}]", 1), "2:10", "phase 1 says neither connections nor arrivals", ""},
		{"phase with both", strings.Replace(withSteps("- send: x"), "[{connections: 1, duration: 1s}]", "[{connections: 1, arrivals: 2, duration: 1s}]", 1), "2:37", "not both", ""},
		{"ramp without to", strings.Replace(withSteps("- send: x"), "connections: 1,", "connections: {from: 0},", 1), "2:24", "a ramp needs from and to", ""},
		{"bad target", "target: http://x/\n" + head[len("target: ws://127.0.0.1:1/\n"):] + "      - send: x\n", "1:9", "the scheme must be ws:// or wss://", ""},
		{"no flows", "target: ws://x/\n", "1:1", "no flows", ""},
		{"empty steps", head + "      []\n", "6:7", "flow f has no steps", "add steps"},
		{"flow without steps", "flows:\n  - name: f\n", "2:5", "flow f has no steps", ""},
		{"duplicate key", withSteps("- send: x", "  name: a", "  name: b"), "8:9", `duplicate key "name"`, ""},
		{"duplicate flow name", withSteps("- send: x") + "  - name: f\n    steps: [ping]\n", "7:11", `flow name "f" is already used at line 4`, ""},
		{"bad regex", withSteps("- expect: {regex: '('}"), "6:25", "expect.regex: error parsing regexp", "RE2"},
		{"unknown comparison", withSteps("- expect: {json: {a: {'=>': 1}}}"), "6:29", `a: unknown comparison "=>"`, "did you mean"},
		{"order on bool", withSteps("- expect: {json: {a: {'<': true}}}"), "6:34", "a: < needs a number or a string", ""},
		{"bad json path", withSteps("- expect: {json: {a..b: 1}}"), "6:25", `bad JSON path "a..b"`, ""},
		{"capture both", withSteps("- expect: {capture: {t: {json: a, regex: b}}}"), "6:48", "both json and regex", ""},
		{"capture group too big", withSteps("- expect: {capture: {t: {regex: 'a(b)', group: 2}}}"), "6:54", "capture.group: 2 is out of range 0 to 1", ""},
		{"close code reserved", withSteps("- close: 1006"), "6:16", "close code 1006 may not be sent", ""},
		{"close reason too long", withSteps("- close: {reason: '" + strings.Repeat("x", 124) + "'}"), "6:25", "close.reason is 124 bytes", ""},
		{"uniform reversed", withSteps("- sleep: {uniform: [3s, 1s]}"), "6:26", "min 3s is more than max 1s", ""},
		{"two distributions", withSteps("- sleep: {fixed: 1s, exponential: 2s}"), "6:16", "want one distribution, got 2", ""},
		{"jitter out of range", withSteps("- reconnect: {jitter: 2}"), "6:29", "reconnect.jitter must be from 0 to 1", ""},
		{"reconnect max below min", withSteps("- reconnect: {min: 2s, max: 1s}"), "6:20", "max 1s is less than min 2s", ""},
		{"repeat count zero", withSteps("- repeat: {count: 0, steps: [ping]}"), "6:25", "repeat.count: 0 is out of range", ""},
		{"repeat rate zero", withSteps("- repeat: {count: 1, rate: 0, steps: [ping]}"), "6:34", "repeat.rate must be more than 0", ""},
		{"send two payloads", withSteps("- send: {text: a, hex: '00'}"), "6:30", "send: both text and hex", ""},
		{"send bad hex", withSteps("- send: {hex: 'zz'}"), "6:21", `send.hex: "zz" is not hex`, ""},
		{"send missing file", withSteps("- send: {file: no-such-file.bin}"), "6:22", "send.file:", "relative to the scenario file"},
		{"stamp on json list", withSteps("- send: {json: [1, 2], stamp: true}"), "6:22", "a stamp goes into a JSON object", ""},
		{"json text invalid", withSteps("- send: {json: '{\"a\": }'}"), "6:22", "is not JSON", ""},
		{"json infinity", withSteps("- send: {json: {a: .inf}}"), "6:26", ".inf is not a JSON number", ""},
		{"header var", strings.Replace(withSteps("- send: x"), "flows:", "headers: {X-T: '${var.t}'}\nflows:", 1), "3:16", "${var.t} cannot be used here", ""},
		{"header reserved", strings.Replace(withSteps("- send: x"), "flows:", "headers: {Upgrade: x}\nflows:", 1), "3:11", "header Upgrade cannot be set", ""},
		{"compression other", strings.Replace(withSteps("- send: x"), "flows:", "compression: gzip\nflows:", 1), "3:14", `compression "gzip"`, ""},
		{"data missing", strings.Replace(withSteps("- send: x"), "flows:", "data: nope.csv\nflows:", 1), "3:7", "data: nope.csv: no such file", "relative to the scenario file"},
		{"replay missing", withSteps("- replay: nope.har"), "6:17", "replay.file: nope.har: no such file", "relative to the scenario file"},
		{"merge key", "base: &b {send: x}\n" + withSteps("- <<: *b"), "7:9", "merge keys (<<) are not supported", ""},
		{"yaml syntax", "target: [\n", "1:1", "YAML:", ""},
		{"tab indentation", "flows:\n\t- name: x\n", "2:1", "YAML:", "indent with spaces"},
		{"empty file", "", "", "the scenario is empty", ""},
		{"not a mapping", "- a\n- b\n", "1:1", "the scenario: want a mapping, got a list", ""},
		{"nested too deep", withSteps("- repeat: {count: 1, steps: [" + strings.Repeat("{repeat: {count: 1, steps: [", 16) + "ping" + strings.Repeat("]}}", 16) + "]}"), "6:457", "repeats nested more than 16 deep", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(c.src))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", c.src)
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is %T, want a non-empty ErrorList: %v", err, err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("errors.As(*Error) failed on %v", err)
			}
			var found *Error
			for _, e := range list {
				at := ""
				if e.Line > 0 {
					at = Pos{e.Line, e.Col}.String()
				}
				if at == c.at && strings.Contains(e.Msg, c.msg) && strings.Contains(e.Hint, c.hint) {
					found = e
				}
			}
			if found == nil {
				t.Fatalf("want an error at %s with %q (hint %q); got:\n%v", c.at, c.msg, c.hint, err)
			}
			if !strings.HasPrefix(found.Error(), "t.yaml:"+c.at) && c.at != "" {
				t.Fatalf("error prints as %q, want it to start with t.yaml:%s", found.Error(), c.at)
			}
		})
	}
}

func TestErrorsSortedAndAllReported(t *testing.T) {
	src := withSteps("- sleep: 5", "- expect: {timout: 1s}", "- send: '${var.x}'")
	src = strings.Replace(src, "duration: 1s", "duration: 1", 1)
	_, err := Parse("t.yaml", []byte(src))
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("want ErrorList, got %v", err)
	}
	want := []string{"t.yaml:2:37: ", "t.yaml:6:16: ", "t.yaml:7:18: ", "t.yaml:8:15: "}
	if len(list) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(list), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(list[i].Error(), w) {
			t.Fatalf("error %d = %q, want prefix %q (all:\n%v)", i, list[i].Error(), w, err)
		}
	}
	if got := list[1].Error(); got != `t.yaml:6:16: sleep: bad duration "5" (hint: give a unit, e.g. 5s or 5ms)` {
		t.Fatalf("formatted error = %q", got)
	}
}

func TestStepKinds(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "blob.bin"), []byte{0, 1, 2}, 0o644); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "t.jsonl"), []byte(`{"t":1,"dir":"send","data":"a"}`+"\n"+`{"t":1.5,"dir":"receive","data":"b"}`+"\n"), 0o644); err != nil {
		t.Fatalf("write: %v", err)
	}
	src := withSteps(
		"- send: 'hi ${conn}'",                                     // 6
		"  mark: start",                                            // 7
		"- send: {hex: '00 ff'}",                                   // 8
		"- send: {base64: AQI=, binary: false}",                    // 9
		"- send: {file: blob.bin}",                                 // 10
		"- send: {json: {a: '${seq}', b: 'x${seq}'}, stamp: true}", // 11
		"- expect: {contains: ok, regex: 'o(k)', json: {a.b: 1, c: {exists: false}, d: {'>=': 2}}, timeout: 3s, since: start, on_timeout: continue, capture: {v: {regex: 'o(k)'}}}", // 12
		"  name: my.step",                     // 13
		"- capture: {var: w, json: a}",        // 14
		"- sleep: {exponential: 2s, max: 5s}", // 15
		"- repeat: {count: 2, for: 1m, rate: 5, steps: [{send: '${var.v}${var.w}'}]}", // 16
		"- ping: {timeout: 2s, data: p}",                                              // 17
		"- replay: {file: t.jsonl, speed: 0.5}",                                       // 18
		"- expect: {stamped: true}",                                                   // 19
		"- close: {code: 4000, reason: done}",                                         // 20
		"- reconnect: {min: 1s, max: 4s, jitter: 0, attempts: 3}",                     // 21
		"- ping", // 22
	)
	p, err := Parse(filepath.Join(dir, "t.yaml"), []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	f := p.Flows[0]
	kinds := []StepKind{StepSend, StepSend, StepSend, StepSend, StepSend, StepExpect, StepCapture, StepSleep, StepRepeat, StepPing, StepReplay, StepExpect, StepClose, StepReconnect, StepPing}
	if len(f.Steps) != len(kinds) {
		t.Fatalf("%d steps, want %d", len(f.Steps), len(kinds))
	}
	for i, k := range kinds {
		if f.Steps[i].Kind != k {
			t.Fatalf("step %d is %v, want %v", i, f.Steps[i].Kind, k)
		}
	}
	v := &Vars{Conn: 7, Seq: 3, Now: time.Unix(0, 1700000000123456789)}
	s := f.Steps
	if got := string(s[0].Send.Append(nil, v)); got != "hi 7" || s[0].Send.Binary || s[0].Mark != "start" || s[0].MarkSlot != 0 || s[0].Name != "f.send@6" || s[0].Pos != (Pos{6, 9}) {
		t.Fatalf("text send: %q binary=%v mark=%q/%d name=%q pos=%v", got, s[0].Send.Binary, s[0].Mark, s[0].MarkSlot, s[0].Name, s[0].Pos)
	}
	if got := s[1].Send.Append(nil, v); string(got) != "\x00\xff" || !s[1].Send.Binary {
		t.Fatalf("hex send: %q binary=%v", got, s[1].Send.Binary)
	}
	if got := s[2].Send.Append(nil, v); string(got) != "\x01\x02" || s[2].Send.Binary {
		t.Fatalf("base64 send: %q binary=%v", got, s[2].Send.Binary)
	}
	if got := s[3].Send.Append(nil, v); string(got) != "\x00\x01\x02" || !s[3].Send.Binary {
		t.Fatalf("file send: %q binary=%v", got, s[3].Send.Binary)
	}
	if got := string(s[4].Send.Append(nil, v)); got != `{"wsl-stamp":"7-3-1700000000123456789","a":3,"b":"x3"}` {
		t.Fatalf("stamped json send: %s", got)
	}
	e := s[5].Expect
	if s[5].Name != "my.step" || e.Timeout != 3*time.Second || e.From != FromMark || e.SinceSlot != 0 || !e.Continue || len(e.Captures) != 1 || e.Captures[0].Slot != 0 || e.Captures[0].Group != 1 {
		t.Fatalf("expect: %+v name %q", e, s[5].Name)
	}
	if !e.Match.Match([]byte(`{"a":{"b":1},"d":2,"x":"ok"}`)) || e.Match.Match([]byte(`{"a":{"b":1},"c":0,"d":2,"x":"ok"}`)) {
		t.Fatalf("expect matcher wrong")
	}
	if c := s[6].Capture; c.Var != "w" || c.Slot != 1 || c.JSONPath != "a" {
		t.Fatalf("capture step: %+v", c)
	}
	if d := s[7].Sleep; d.Kind != DistExponential || d.Mean != 2*time.Second || d.Max != 5*time.Second {
		t.Fatalf("sleep: %+v", d)
	}
	r := s[8].Repeat
	if r.Count != 2 || r.For != time.Minute || r.Rate != 5 || len(r.Steps) != 1 {
		t.Fatalf("repeat: %+v", r)
	}
	if got := string(r.Steps[0].Send.Append(nil, &Vars{Captured: []string{"V", "W"}})); got != "VW" {
		t.Fatalf("send with captured vars = %q", got)
	}
	if pg := s[9].Ping; pg.Timeout != 2*time.Second || string(pg.Payload.Append(nil, v)) != "p" {
		t.Fatalf("ping: %+v", pg)
	}
	if rp := s[10].Replay; rp.Speed != 0.5 || len(rp.Messages) != 2 || rp.Duration() != time.Second || rp.Sends() != 1 {
		t.Fatalf("replay: %+v", rp)
	}
	if e := s[11].Expect; e.From != FromStamp || !e.Match.Stamped || e.Timeout != DefaultExpectTimeout {
		t.Fatalf("stamped expect: %+v", e)
	}
	if c := s[12].Close; c.Code != 4000 || c.Reason != "done" {
		t.Fatalf("close: %+v", c)
	}
	if rc := s[13].Reconnect; rc.Min != time.Second || rc.Max != 4*time.Second || rc.Jitter != 0 || rc.Attempts != 3 {
		t.Fatalf("reconnect: %+v", rc)
	}
	if pg := s[14].Ping; pg.Timeout != DefaultPingTimeout || pg.Payload != nil {
		t.Fatalf("bare ping: %+v", pg)
	}
	if strings.Join(f.Vars, ",") != "v,w" || strings.Join(f.Marks, ",") != "start" {
		t.Fatalf("vars %v marks %v", f.Vars, f.Marks)
	}
}

func TestDefaultStepNamesUnique(t *testing.T) {
	p := mustParse(t, withSteps("- repeat: {count: 2, steps: [{send: a}, {expect: a}, {send: b}]}"))
	var names []string
	for _, s := range p.Flows[0].Steps[0].Repeat.Steps {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, " "); got != "f.send@6 f.expect@6 f.send@6:61" {
		t.Fatalf("default names %q", got)
	}
}

func TestPlanTopLevel(t *testing.T) {
	dir := t.TempDir()
	csv := "# users\nuser,token\nann,t1\nbob,t2\n"
	if err := os.WriteFile(filepath.Join(dir, "u.csv"), []byte(csv), 0o644); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("x"), 0o644); err != nil {
		t.Fatalf("write: %v", err)
	}
	t.Setenv("WSLOAD_TEST_TOKEN", "s3cret")
	src := `target: wss://example.test/ws
headers:
  Authorization: "Bearer ${env.WSLOAD_TEST_TOKEN}"
  X-User: "${row.user}-${conn}"
subprotocols: chat
tls: {insecure: true, server_name: example.test, ca_file: ca.pem}
compression: permessage-deflate
data: {file: u.csv}
phases:
  - {name: up, connections: {from: 0, to: 100}, duration: 10s}
  - {connections: 100, duration: 1m}
  - {arrivals: 2.5, duration: 4s}
flows:
  - {name: a, weight: 3, steps: [{send: "${row.token}"}]}
  - {name: b, steps: [ping]}
`
	p, err := Parse(filepath.Join(dir, "s.yaml"), []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if p.Target != "wss://example.test/ws" || !p.Compression || !p.TLS.Insecure || p.TLS.ServerName != "example.test" || p.TLS.CAFile != filepath.Join(dir, "ca.pem") {
		t.Fatalf("plan: %+v", p)
	}
	if len(p.Subprotocols) != 1 || p.Subprotocols[0] != "chat" {
		t.Fatalf("subprotocols %v", p.Subprotocols)
	}
	v := &Vars{Conn: 5, Row: p.Data.Row(5)}
	if got := string(p.Headers[0].Value.Append(nil, v)); got != "Bearer s3cret" || p.Headers[0].Value.String() != "Bearer ${env.WSLOAD_TEST_TOKEN}" {
		t.Fatalf("header 0 = %q (source %q)", got, p.Headers[0].Value)
	}
	if got := string(p.Headers[1].Value.Append(nil, v)); got != "bob-5" {
		t.Fatalf("header 1 = %q", got)
	}
	if len(p.Data.Rows) != 2 || p.Data.Row(4)[0] != "ann" {
		t.Fatalf("data: %+v", p.Data)
	}
	want := []Phase{
		{Name: "up", Kind: PhaseConnections, Start: 0, Duration: 10 * time.Second, From: 0, To: 100, Pos: Pos{10, 5}},
		{Name: "phase2", Kind: PhaseConnections, Start: 10 * time.Second, Duration: time.Minute, From: 100, To: 100, Pos: Pos{11, 5}},
		{Name: "phase3", Kind: PhaseArrivals, Start: 70 * time.Second, Duration: 4 * time.Second, Rate: 2.5, Pos: Pos{12, 5}},
	}
	for i, w := range want {
		if p.Phases[i] != w {
			t.Fatalf("phase %d = %+v, want %+v", i, p.Phases[i], w)
		}
	}
	if p.Duration() != 74*time.Second {
		t.Fatalf("duration %v", p.Duration())
	}
	if p.Flows[0].Weight != 0.75 || p.Flows[1].Weight != 0.25 {
		t.Fatalf("weights %v %v", p.Flows[0].Weight, p.Flows[1].Weight)
	}
}

func TestJSONScenario(t *testing.T) {
	// JSON is YAML; tabs between tokens are fine.
	src := "{\n\t\"target\": \"ws://127.0.0.1:1/\",\n\t\"phases\": [{\"connections\": 2, \"duration\": \"1s\"}],\n\t\"flows\": [{\"name\": \"x\", \"steps\": [{\"send\": {\"json\": {\"n\": \"${seq}\"}}}, {\"expect\": {\"timeout\": \"1s\"}}]}]\n}\n"
	p := mustParse(t, src)
	if got := string(p.Flows[0].Steps[0].Send.Append(nil, &Vars{Seq: 9})); got != `{"n":9}` {
		t.Fatalf("json payload %q", got)
	}
	if p.Flows[0].Steps[1].Pos != (Pos{4, 74}) {
		t.Fatalf("expect at %v", p.Flows[0].Steps[1].Pos)
	}
	_, err := Parse("t.json", []byte(`{"target": "ws://x/", "flows": [{"name": "x", "steps": [{"send": "a", "tiemout": 1}]}]}`))
	if err == nil || !strings.Contains(err.Error(), "t.json:1:71: unknown key \"tiemout\" in a step") {
		t.Fatalf("JSON error: %v", err)
	}
}

func TestAliasBomb(t *testing.T) {
	// Nine levels of ten aliases each: 10^9 values once expanded, inside a
	// JSON payload the parser walks.
	var b strings.Builder
	b.WriteString("{a0: &a0 [x, x, x, x, x, x, x, x, x, x]")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, ", a%d: &a%d [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]")
	}
	b.WriteString("}")
	// Expanded, the bomb is 10^9 nodes: only a parser that stops counting early returns at
	// all (a test timeout or an out-of-memory crash otherwise), and it must say why.
	_, err := Parse("bomb.yaml", []byte(withSteps("- send: {json: "+b.String()+"}")))
	if err == nil || !strings.Contains(err.Error(), "the scenario is too large") {
		t.Fatalf("alias bomb: %v", err)
	}
}

func TestOverride(t *testing.T) {
	base := withSteps("- send: x")
	ramp := strings.Replace(base, "[{connections: 1, duration: 1s}]", "[{connections: {from: 0, to: 200}, duration: 10s}, {connections: 200, duration: 30s}, {arrivals: 5, duration: 20s}]", 1)
	cases := []struct {
		name  string
		src   string
		o     Overrides
		check func(p *Plan) string
		err   string
	}{
		{"target", base, Overrides{Target: "ws://10.0.0.1:9/x"}, func(p *Plan) string {
			if p.Target != "ws://10.0.0.1:9/x" {
				return p.Target
			}
			return ""
		}, ""},
		{"scale connections", ramp, Overrides{Connections: 50}, func(p *Plan) string {
			if p.Phases[0].To != 50 || p.Phases[1].From != 50 || p.Phases[2].Rate != 5 {
				return "phases not scaled to 50"
			}
			return ""
		}, ""},
		{"scale duration", ramp, Overrides{Duration: 2 * time.Minute}, func(p *Plan) string {
			if p.Duration() != 2*time.Minute || p.Phases[1].Start != 20*time.Second || p.Phases[1].Duration != time.Minute {
				return "durations not scaled"
			}
			return ""
		}, ""},
		{"no phases", strings.Replace(base, "phases: [{connections: 1, duration: 1s}]\n", "", 1), Overrides{Connections: 7, Duration: 3 * time.Second}, func(p *Plan) string {
			if len(p.Phases) != 1 || p.Phases[0].From != 7 || p.Phases[0].To != 7 || p.Phases[0].Duration != 3*time.Second {
				return "no hold phase"
			}
			return ""
		}, ""},
		{"no phases, no flags", strings.Replace(base, "phases: [{connections: 1, duration: 1s}]\n", "", 1), Overrides{}, nil, "no phases"},
		{"no target", strings.Replace(base, "target: ws://127.0.0.1:1/\n", "", 1), Overrides{}, nil, "no target"},
		{"bad override target", base, Overrides{Target: "http://x/"}, nil, "ws:// or wss://"},
		{"-c with arrivals only", strings.Replace(base, "connections: 1", "arrivals: 1", 1), Overrides{Connections: 3}, nil, "no connections phase"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustParse(t, c.src)
			err := p.Override(c.o)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("Override error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Override: %v", err)
			}
			if msg := c.check(p); msg != "" {
				t.Fatalf("%s: %+v", msg, p.Phases)
			}
		})
	}
}

func TestPhaseShapes(t *testing.T) {
	ramp := Phase{Kind: PhaseConnections, From: 0, To: 1000, Duration: 10 * time.Second}
	for _, c := range []struct {
		at   time.Duration
		want int
	}{{-time.Second, 0}, {0, 0}, {time.Second, 100}, {5 * time.Second, 500}, {10 * time.Second, 1000}, {time.Hour, 1000}} {
		if got := ramp.ConnectionsAt(c.at); got != c.want {
			t.Fatalf("ramp at %v = %d, want %d", c.at, got, c.want)
		}
	}
	down := Phase{Kind: PhaseConnections, From: 10, To: 0, Duration: 10 * time.Second}
	if got := down.ConnectionsAt(3 * time.Second); got != 7 {
		t.Fatalf("ramp down at 3s = %d", got)
	}
	arr := Phase{Kind: PhaseArrivals, Rate: 2, Duration: 3 * time.Second}
	for _, c := range []struct {
		at   time.Duration
		want int64
	}{{-1, 0}, {0, 1}, {499 * time.Millisecond, 1}, {500 * time.Millisecond, 2}, {2900 * time.Millisecond, 6}, {time.Hour, 6}} {
		if got := arr.ArrivalsBy(c.at); got != c.want {
			t.Fatalf("arrivals by %v = %d, want %d", c.at, got, c.want)
		}
	}
	p := &Plan{Phases: []Phase{{Start: 0, Duration: time.Second}, {Start: time.Second, Duration: time.Second, Name: "two"}}}
	if ph, ok := p.PhaseAt(1500 * time.Millisecond); !ok || ph.Name != "two" {
		t.Fatalf("PhaseAt 1.5s = %v, %v", ph, ok)
	}
	if _, ok := p.PhaseAt(2 * time.Second); ok {
		t.Fatalf("PhaseAt after the end found a phase")
	}
}

func TestFlowIndexSpread(t *testing.T) {
	p := &Plan{Flows: []Flow{{Weight: 0.95}, {Weight: 0.05}}}
	for _, n := range []int{20, 100, 1000, 100000} {
		count := 0
		for c := 0; c < n; c++ {
			if p.FlowIndex(uint64(c)) == 1 {
				count++
			}
		}
		want := float64(n) * 0.05
		if d := float64(count) - want; d > 1.5 || d < -1.5 {
			t.Fatalf("%d connections: %d publishers, want %.0f±1", n, count, want)
		}
	}
	if (&Plan{Flows: []Flow{{Weight: 1}}}).FlowIndex(12345) != 0 {
		t.Fatalf("single flow not picked")
	}
}

func TestDistributionSample(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		d       Distribution
		lo, hi  time.Duration
		mean    time.Duration
		meanTol float64
	}{
		{Distribution{Kind: DistFixed, Fixed: time.Second}, time.Second, time.Second, time.Second, 0},
		{Distribution{Kind: DistUniform, Min: time.Second, Max: 3 * time.Second}, time.Second, 3 * time.Second, 2 * time.Second, 0.03},
		{Distribution{Kind: DistExponential, Mean: time.Second}, 0, 1 << 62, time.Second, 0.05},
		{Distribution{Kind: DistExponential, Mean: time.Second, Max: 1500 * time.Millisecond}, 0, 1500 * time.Millisecond, 0, 0},
	}
	for _, c := range cases {
		var sum float64
		const n = 20000
		for i := 0; i < n; i++ {
			v := c.d.Sample(rng)
			if v < c.lo || v > c.hi {
				t.Fatalf("%v: sample %v outside [%v, %v]", c.d.String(), v, c.lo, c.hi)
			}
			sum += float64(v)
		}
		if c.mean > 0 {
			got := sum / n
			if rel := (got - float64(c.mean)) / float64(c.mean); rel > c.meanTol+1e-9 || rel < -c.meanTol-1e-9 {
				t.Fatalf("%v: mean %v, want %v", c.d.String(), time.Duration(got), c.mean)
			}
		}
	}
}

func TestReconnectBackoff(t *testing.T) {
	r := &Reconnect{Min: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := r.Backoff(i, nil); got != w*time.Millisecond {
			t.Fatalf("attempt %d: %v, want %v", i, got, w*time.Millisecond)
		}
	}
	r.Jitter = 0.5
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 1000; i++ {
		if got := r.Backoff(1, rng); got < 100*time.Millisecond || got > 200*time.Millisecond {
			t.Fatalf("jittered backoff %v outside [100ms, 200ms]", got)
		}
	}
}

func TestEstimate(t *testing.T) {
	cases := []struct {
		name string
		src  string
		peak int
		rate string
	}{
		{"paced repeat", strings.Replace(withSteps("- repeat: {rate: 4, steps: [{send: x}, {expect: x}]}"), "connections: 1", "connections: 10", 1), 10, "40.0 msg/s"},
		{"think time", withSteps("- repeat: {steps: [{send: x}, {sleep: {uniform: [1s, 3s]}}]}"), 1, "~0.5 msg/s"},
		{"server paced", withSteps("- repeat: {steps: [{send: x}, {expect: x}]}"), 1, "unknown (paced by the server's replies)"},
		{"tight loop", withSteps("- repeat: {steps: [{send: x}]}"), 1, "unbounded (no rate or sleep paces it)"},
		{"listener", withSteps("- repeat: {steps: [{expect: x}]}"), 1, "0 msg/s"},
		{"arrivals", strings.Replace(withSteps("- send: x", "- sleep: 4s", "- send: y"), "connections: 1, duration: 1s", "arrivals: 10, duration: 1m", 1), 40, "20.0 msg/s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := mustParse(t, c.src).Estimate()
			if e.PeakConnections != c.peak || e.MessageRate.String() != c.rate {
				t.Fatalf("estimate: peak %d rate %q, want %d %q", e.PeakConnections, e.MessageRate, c.peak, c.rate)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	t.Setenv("API_KEY", "the-secret")
	p, err := Load("../scripts/scenarios/login.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	var b strings.Builder
	if err := p.Describe(&b); err != nil {
		t.Fatalf("Describe: %v", err)
	}
	out := b.String()
	for _, want := range []string{
		"header        X-Api-Key: ${env.API_KEY}",
		"8 rows, columns user, password",
		"20 new connections/s",
		"[login.welcome]  login.yaml:34:9",
		"capture token ← json session.token",
		"latency since mark login",
		"expected message rate      ~40.0 msg/s sent",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("Describe output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "the-secret") {
		t.Fatalf("Describe printed a secret from the environment:\n%s", out)
	}
}
