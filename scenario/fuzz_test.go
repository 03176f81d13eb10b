package scenario

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzParse: no input makes Parse panic, and what it accepts is a plan the
// engine can walk (every step has its kind's field).
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../scripts/scenarios/*.yaml")
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(withSteps("- send: {json: {a: '${seq}'}, stamp: true}", "- expect: {json: {a: {'>': 1}}, capture: {x: {regex: '(a)'}}}", "- send: '${var.x}'", "- close", "- reconnect")))
	f.Add([]byte(`{"flows":[{"steps":["ping",{"sleep":{"uniform":["1s","2s"]}}]}]}`))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("flows: [{steps: [{repeat: {steps: [{repeat: {count: 1, steps: [close]}}]}}]}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Name the file inside an empty directory so relative paths find nothing.
		p, err := Parse(filepath.Join(t.TempDir(), "fuzz.yaml"), data)
		if err != nil {
			if len(err.Error()) == 0 {
				t.Fatalf("empty error")
			}
			return
		}
		for i := range p.Flows {
			checkSteps(t, p.Flows[i].Steps)
		}
		_ = p.Estimate()
		_ = p.Describe(discard{})
	})
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

func checkSteps(t *testing.T, steps []Step) {
	v := &Vars{Now: time.Unix(1, 0)}
	for i := range steps {
		s := &steps[i]
		set := map[StepKind]bool{StepSend: s.Send != nil, StepExpect: s.Expect != nil, StepCapture: s.Capture != nil, StepSleep: s.Sleep != nil,
			StepRepeat: s.Repeat != nil, StepPing: s.Ping != nil, StepClose: s.Close != nil, StepReconnect: s.Reconnect != nil, StepReplay: s.Replay != nil}
		for k, isSet := range set {
			if isSet != (k == s.Kind) {
				t.Fatalf("step %s at %v: field for %s set=%v", s.Kind, s.Pos, k, isSet)
			}
		}
		switch s.Kind {
		case StepSend:
			s.Send.Append(nil, v)
		case StepSleep:
			s.Sleep.Sample(nil)
		case StepRepeat:
			checkSteps(t, s.Repeat.Steps)
		}
	}
}

// FuzzTemplate: compiling never panics, and a compiled template expands
// without panicking, whatever the Vars hold.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"${conn}-${seq}", "${rand.int -3 3}${rand.str 5}", "${uuid} ${now.rfc3339} ${now.ms}", "$$ ${row.a} ${var.b}", "${", "${rand.int 0 9223372036854775807}"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, src string, json bool) {
		scope := TemplateScope{Columns: []string{"a"}, Vars: []string{"b"}, LookupEnv: func(string) (string, bool) { return "E", true }}
		tm, msg, _ := compileTemplate(src, &scope, json)
		if msg != "" {
			return
		}
		tm.Append(nil, &Vars{Conn: 1, Seq: 2, Now: time.Unix(3, 4)})                                  // Row and Captured missing
		tm.Append(nil, &Vars{Row: []string{"\"x\n"}, Captured: []string{"\\"}, Now: time.Unix(0, 0)}) // present
	})
}

// FuzzParseReplay: the capture readers never panic.
func FuzzParseReplay(f *testing.F) {
	if data, err := os.ReadFile("../scripts/scenarios/sample.har"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`{"t":1,"dir":"send","data":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseHAR(data, "")
		ParseTranscript(data)
		ParseStampID(data)
	})
}
