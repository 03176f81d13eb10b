// Package bench holds benchmarks of wsload itself, with the commands that
// reproduce every figure quoted in the docs.
//
// The scenario send path (templates compiled once, expanded per message):
//
//	go test ./bench -run '^$' -bench 'Scenario' -benchmem
//
// Each benchmark reports allocs/op; the send path's promise is 0.
package bench

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/wsload/wsload/scenario"
)

// chatFlow is a publisher's step as a scenario file writes it.
const chatFlow = `target: ws://127.0.0.1:1/
phases: [{connections: 1, duration: 1s}]
flows:
  - name: pub
    steps:
      - expect: {capture: {token: {json: session.token}}}
      - send:
          stamp: true
          json:
            type: message
            id: "${conn}-${seq}"
            at: "${now.rfc3339}"
            ms: "${now.ms}"
            token: "${var.token}"
            nonce: "${rand.str 16}"
            trace: "${uuid}"
            n: "${rand.int 1 1000}"
      - expect:
          json: {type: message, n: {">": 0}, trace: {exists: true}}
`

func plan(b *testing.B) *scenario.Plan {
	p, err := scenario.Parse("bench.yaml", []byte(chatFlow))
	if err != nil {
		b.Fatalf("Parse: %v", err)
	}
	return p
}

func vars() *scenario.Vars {
	return &scenario.Vars{Conn: 17, Now: time.Now(), Rand: rand.New(rand.NewPCG(1, 2)), Captured: []string{"eyJhbGciOiJIUzI1NiJ9.e30.sig"}}
}

// BenchmarkScenarioTemplateAppend expands the publisher's JSON payload.
func BenchmarkScenarioTemplateAppend(b *testing.B) {
	send := plan(b).Flows[0].Steps[1].Send
	v := vars()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		v.Seq++
		buf = send.Payload.Append(buf[:0], v)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkScenarioSendStamped is the same with the fan-out stamp embedded.
func BenchmarkScenarioSendStamped(b *testing.B) {
	send := plan(b).Flows[0].Steps[1].Send
	v := vars()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		v.Seq++
		buf = send.Append(buf[:0], v)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkScenarioMatchJSON is the receive side: three JSON conditions on
// the message the publisher sends, walked without decoding.
func BenchmarkScenarioMatchJSON(b *testing.B) {
	p := plan(b)
	msg := p.Flows[0].Steps[1].Send.Append(nil, vars())
	m := &p.Flows[0].Steps[2].Expect.Match
	if !m.Match(msg) {
		b.Fatalf("the matcher refuses %s", msg)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		m.Match(msg)
	}
}

// BenchmarkScenarioParseStamp finds the stamp in a delivered message.
func BenchmarkScenarioParseStamp(b *testing.B) {
	msg := plan(b).Flows[0].Steps[1].Send.Append(nil, vars())
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := scenario.ParseStamp(msg); !ok {
			b.Fatalf("no stamp")
		}
	}
}
