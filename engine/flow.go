package engine

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/wsload/wsload/engine/wsproto"
	"github.com/wsload/wsload/scenario"
)

// The step interpreter of scenario flows. Each scenario connection has a
// flowState: a program counter with a stack of frames for nested repeats. It
// is event-driven, with no goroutine per connection: the flow advances when
// the connection opens (poller or dialer), when a message or pong arrives
// (poller), when its timer fires (sender) and when the socket ends, always
// under the connection's mutex, and runs steps until one has to wait.
//
// Time. Every step has an intended start, the cursor: the connection's
// open time, the schedule of a paced repeat (iteration k of a repeat at
// rate R is intended at start + offset + k/R, whether or not iteration k-1
// is done: an open model per connection), the end of a sleep (cursor +
// think time), or the arrival of the message an expect waited for. A send
// goes out at once and records its lateness (actual - cursor) as send lag.
// An expect's latency is measured twice: corrected, from the intended time
// of what it measures from (the latest send's cursor, a mark, or the stamp's
// send time for fan-out), and uncorrected, from the actual send. When replies
// are late, the next iteration starts late, the lateness is in the corrected
// figure and not in the uncorrected one: wrk2's correction for coordinated
// omission, applied to closed-loop send→expect flows.
//
// What a message does: it completes the waiting expect if it matches; else,
// after a replay step, it counts as one of the replay's replies (up to the
// number the capture had); else it is unmatched (an error
// "unexpected_message" in a strict flow). An expect waits only for messages
// that arrive after it starts.
//
// Losing the connection in the middle of the flow (the server closes it, a
// reset) goes on at the next reconnect step of the current steps or of an
// enclosing repeat, if there is one; otherwise the flow ends.
type flowState struct {
	c    *conn
	flow *scenario.Flow
	snd  *sender // owner of this flow's timer entry
	vars scenario.Vars
	rng  *rand.Rand

	stack  []frame
	marks  []span // by Flow.Marks slot
	cursor int64  // intended start of the current step (ns since Engine.base)
	last   span   // latest send on this socket; actual 0: none yet
	seq    uint64 // messages sent by this flow
	// sentSinceMatch: a send happened since the latest matched expect, so a
	// waiting expect that measures from it waits for a reply (drain).
	sentSinceMatch bool

	wait    waitKind
	step    *scenario.Step // the step being waited on (expect, ping)
	began   span           // when that step began
	matched []byte         // the message the latest expect matched (capture steps)
	keep    bool           // the flow has capture steps: keep matched
	running bool           // run is on the stack: events only update state

	rp *replayState // the latest replay step; its replies are still counted

	reconn     *scenario.Step // the reconnect step in progress
	reconnAt   int64          // its intended start
	reconnWait bool           // closing before the reconnect's backoff
	attempt    int            // failed attempts of this reconnect

	live bool // counted in Engine.active: a running connection of a level (not an arrival)
	done bool // the flow ended or was stopped: nothing more runs

	timerAt     int64 // under the mutex: when to call timer; 0 none (flowtimer.go)
	timerQueued bool  // under the mutex: a retime request is queued
	hat         int64 // sender goroutine: time of this flow's heap entry
	hidx        int   // sender goroutine: index in the heap; -1 none
}

// span is one moment twice: as intended and as it happened.
type span struct{ sched, actual int64 }

// frame is one level of the step stack: the flow's steps or a repeat's.
type frame struct {
	steps []scenario.Step
	pc    int
	rep   *scenario.Repeat // nil at the flow's top level
	iter  int              // iterations started
	start int64            // paced: intended start of iteration 0
	until int64            // For: no iteration starts at or after this; 0 none
}

type replayState struct {
	step     *scenario.Step
	r        *scenario.Replay
	next     int   // next message to send
	start    int64 // intended start
	expected int   // server messages in the capture
	got      int   // replies counted
	last     span  // latest replayed send
}

type waitKind uint8

const (
	waitNone    waitKind = iota
	waitStart            // the first dial: not established yet
	waitExpect           // a matching message, or the expect's timeout
	waitPing             // the pong, or the ping's timeout
	waitTimer            // a sleep, the next paced iteration or a yield
	waitReplay           // the next replayed message is due
	waitClose            // our close frame is out: the socket's end, or the close timeout
	waitBackoff          // a reconnect's backoff
	waitDial             // a reconnect's dial and handshake
)

// maxStepsPerRun bounds the steps one event runs without waiting (a
// back-to-back repeat of sends): then the flow yields to its sender, so one
// connection cannot hold an event loop.
const maxStepsPerRun = 256

func newFlowState(c *conn, p *scenario.Plan) *flowState {
	e := c.e
	id := uint64(c.id)
	fl := &p.Flows[p.FlowIndex(id)]
	f := &flowState{
		c: c, flow: fl, snd: e.senders[e.local(c.id)%len(e.senders)],
		rng:  rand.New(rand.NewPCG(id, e.seed)),
		wait: waitStart, hidx: -1,
		keep: hasCapture(fl.Steps),
	}
	f.vars = scenario.Vars{Conn: id, Rand: f.rng, Row: p.Data.Row(id)}
	if len(fl.Vars) > 0 {
		f.vars.Captured = make([]string, len(fl.Vars))
	}
	if len(fl.Marks) > 0 {
		f.marks = make([]span, len(fl.Marks))
	}
	f.stack = append(make([]frame, 0, 2), frame{steps: fl.Steps})
	return f
}

func hasCapture(steps []scenario.Step) bool {
	for i := range steps {
		switch steps[i].Kind {
		case scenario.StepCapture:
			return true
		case scenario.StepRepeat:
			if hasCapture(steps[i].Repeat.Steps) {
				return true
			}
		}
	}
	return false
}

// header is the upgrade request's header for this connection: the run's
// static headers and the plan's, expanded for this connection.
func (f *flowState) header(static http.Header, hs []scenario.Header) http.Header {
	h := static.Clone()
	if h == nil {
		h = http.Header{}
	}
	seq := f.vars.Seq
	f.vars.Seq, f.vars.Now = 0, time.Now()
	for _, ph := range hs {
		h.Add(ph.Name, string(ph.Value.Append(nil, &f.vars)))
	}
	f.vars.Seq = seq
	return h
}

// leave takes the logical connection out of the controller's count once.
func (f *flowState) leave() {
	if f.live {
		f.live = false
		f.c.e.active.Add(-1)
	}
}

// awaitingReply reports whether the flow waits for the answer to something
// it sent, which the end-of-run drain waits for.
func (f *flowState) awaitingReply() bool {
	switch f.wait {
	case waitPing:
		return true
	case waitExpect:
		return f.sentSinceMatch && f.step.Expect.From != scenario.FromStamp
	}
	return false
}

// ---- events (all with c.mu held) ----

// opened runs when the socket is established: the first time, or at the end
// of a reconnect.
func (f *flowState) opened(now int64) {
	c := f.c
	if f.done {
		c.startCloseLocked(1000) // retired while handshaking
		return
	}
	switch f.wait {
	case waitStart:
	case waitDial:
		// The reconnect's figure: corrected from the step's intended start
		// (close, backoff and failed attempts included), uncorrected from
		// the successful attempt's dial.
		c.sh.Step(f.reconn.Name, time.Duration(now-f.reconnAt), time.Duration(now-c.hsStart))
		f.reconn, f.attempt = nil, 0
	default:
		return
	}
	f.wait = waitNone
	f.cursor = now
	f.last = span{}
	f.sentSinceMatch = false
	f.resume(now)
}

// message handles a data message (its payload is valid during the call only).
func (f *flowState) message(payload []byte, now int64) {
	c := f.c
	if f.wait == waitExpect && f.step.Expect.Match.Match(payload) {
		f.matchedExpect(payload, now)
		return
	}
	if rp := f.rp; rp != nil && rp.got < rp.expected {
		rp.got++
		c.sh.Step(rp.step.Name, time.Duration(max(now-rp.last.sched, 0)), time.Duration(max(now-rp.last.actual, 0)))
		return
	}
	if f.flow.Strict && !f.done {
		c.recError("unexpected_message")
		if _, seen := c.e.samples.Load("unexpected_message"); !seen {
			c.e.sample("unexpected_message", fmt.Errorf("flow %s (strict): %q", f.flow.Name, truncateMsg(payload, 80)))
		}
		return
	}
	c.sh.Unmatched()
}

func truncateMsg(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

func (f *flowState) matchedExpect(payload []byte, now int64) {
	c, ex := f.c, f.step.Expect
	var corr, unc int64
	switch ex.From {
	case scenario.FromStamp:
		if ns, ok := scenario.ParseStamp(payload); ok {
			// The publisher's clock against ours: exact on one host, as good
			// as clock synchronisation across hosts.
			corr = c.e.base.Add(time.Duration(now)).UnixNano() - ns
			unc = corr
		}
	case scenario.FromMark:
		m := f.marks[ex.SinceSlot]
		if m.actual == 0 {
			m = f.began
		}
		corr, unc = now-m.sched, now-m.actual
	default:
		from := f.last
		if from.actual == 0 {
			from = f.began
		}
		corr, unc = now-from.sched, now-from.actual
	}
	c.sh.Step(f.step.Name, time.Duration(max(corr, 0)), time.Duration(max(unc, 0)))
	for i := range ex.Captures {
		f.capture(&ex.Captures[i], payload)
	}
	if f.keep {
		f.matched = append(f.matched[:0], payload...)
	}
	f.setTimer(0)
	f.wait = waitNone
	f.sentSinceMatch = false
	f.cursor = now
	f.resume(now)
}

// pong completes a ping step.
func (f *flowState) pong(now int64) {
	if f.wait != waitPing {
		return
	}
	f.c.sh.Step(f.step.Name, time.Duration(now-f.began.sched), time.Duration(now-f.began.actual))
	f.setTimer(0)
	f.wait = waitNone
	f.cursor = now
	f.resume(now)
}

// timer runs when the flow's timer fires (sender goroutine).
func (f *flowState) timer(now int64) {
	c := f.c
	if f.done {
		return
	}
	switch f.wait {
	case waitExpect:
		st := f.step
		c.recError("expect_timeout")
		c.sh.TimedOutFor(c.bk)
		c.sh.StepTimedOut(st.Name)
		if _, seen := c.e.samples.Load("expect_timeout"); !seen {
			c.e.sample("expect_timeout", fmt.Errorf("step %s (line %v): no matching message within %v", st.Name, st.Pos, st.Expect.Timeout))
		}
		f.wait = waitNone
		if !st.Expect.Continue {
			f.end()
			return
		}
		f.cursor = now
		f.resume(now)
	case waitPing:
		c.recError("ping_timeout")
		c.sh.TimedOutFor(c.bk)
		c.sh.StepTimedOut(f.step.Name)
		if _, seen := c.e.samples.Load("ping_timeout"); !seen {
			c.e.sample("ping_timeout", fmt.Errorf("step %s (line %v): no pong within %v", f.step.Name, f.step.Pos, f.step.Ping.Timeout))
		}
		f.wait = waitNone
		f.end()
	case waitTimer:
		f.wait = waitNone
		f.resume(now)
	case waitReplay:
		f.wait = waitNone
		f.replay(now)
		f.resume(now)
	case waitClose:
		// The server did not answer our close frame in time: drop the socket.
		c.endLocked(c.code)
	case waitBackoff:
		f.redial()
	}
}

// closed runs when the socket has ended, for any reason (state stClosed).
func (f *flowState) closed(now int64) {
	e := f.c.e
	if f.done || e.stopping.Load() {
		f.done = true
		f.setTimer(0)
		f.leave()
		return
	}
	switch f.wait {
	case waitStart: // the first dial failed: the logical connection never started
		if f.live {
			e.newFails.Add(1)
		}
		f.done = true
		f.leave()
		return
	case waitDial:
		f.attempt++
		if r := f.reconn.Reconnect; r.Attempts > 0 && f.attempt >= r.Attempts {
			e.dialSh.Error("reconnect_gave_up")
			f.done = true
			f.leave()
			return
		}
		f.backoff(now)
		return
	case waitBackoff:
		return
	case waitClose:
		f.setTimer(0)
		f.wait = waitNone
		if f.reconnWait {
			f.reconnWait = false
			f.backoff(now)
			return
		}
		f.resume(now)
		return
	}
	// Lost in the middle of the flow.
	f.setTimer(0)
	f.wait = waitNone
	f.cursor = max(f.cursor, now)
	if f.skipToReconnect() {
		f.resume(now)
		return
	}
	f.end()
}

// retire stops the flow and closes the connection normally (a ramp down).
func (f *flowState) retire() {
	f.done = true
	f.setTimer(0)
	f.leave()
	if f.c.state == stOpen {
		f.c.startCloseLocked(1000)
	}
}

// end finishes the flow: its replay's missing replies count as timed out,
// and an open connection closes normally.
func (f *flowState) end() {
	c := f.c
	f.finishReplay()
	f.done = true
	f.setTimer(0)
	switch c.state {
	case stOpen:
		c.startCloseLocked(1000) // its end calls closed, which leaves
	case stClosing:
	default:
		f.leave()
	}
}

// ---- the interpreter ----

// expectNext reports whether the next step is an expect waiting for the reply to a message
// already sent. Once the run is ending no new step starts but that one: the message is out, so
// its reply is waited for (the drain) and counted, measured or timed out, like any other;
// otherwise it would arrive as unmatched and its send would have no outcome.
func (f *flowState) expectNext() bool {
	fr := &f.stack[len(f.stack)-1]
	return f.sentSinceMatch && fr.pc < len(fr.steps) && fr.steps[fr.pc].Expect != nil
}

// resume runs the flow unless an enclosing run is already doing so (an event
// raised by a step, e.g. a failed write closing the socket).
func (f *flowState) resume(now int64) {
	if !f.running {
		f.run(now)
	}
}

func (f *flowState) run(now int64) {
	f.running = true
	defer func() { f.running = false }()
	e := f.c.e
	for budget := maxStepsPerRun; !f.done && f.wait == waitNone; budget-- {
		if e.stopping.Load() && !f.expectNext() {
			return
		}
		if budget == 0 {
			f.wait = waitTimer // yield to the sender, which resumes the flow
			f.setTimer(max(now, 1))
			return
		}
		fr := &f.stack[len(f.stack)-1]
		if fr.pc == len(fr.steps) {
			if fr.rep == nil {
				f.end()
				return
			}
			f.nextIteration(fr, now)
			continue
		}
		st := &fr.steps[fr.pc]
		fr.pc++
		f.exec(st, now)
	}
}

// needsSocket reports whether a step kind needs the connection open.
func needsSocket(k scenario.StepKind) bool {
	switch k {
	case scenario.StepSend, scenario.StepExpect, scenario.StepPing, scenario.StepReplay:
		return true
	}
	return false
}

func (f *flowState) exec(st *scenario.Step, now int64) {
	c := f.c
	if needsSocket(st.Kind) && c.state != stOpen {
		// The socket went away under the flow: go on at a reconnect, or end.
		if c.state == stClosed && f.skipToReconnect() {
			return
		}
		f.end()
		return
	}
	if st.MarkSlot >= 0 && st.MarkSlot < len(f.marks) {
		f.marks[st.MarkSlot] = span{f.cursor, now}
	}
	switch st.Kind {
	case scenario.StepSend:
		f.send(st, now)
	case scenario.StepExpect:
		f.wait, f.step = waitExpect, st
		f.began = span{f.cursor, now}
		f.setTimer(now + int64(st.Expect.Timeout))
	case scenario.StepCapture:
		f.capture(st.Capture, f.matched)
	case scenario.StepSleep:
		f.cursor += int64(st.Sleep.Sample(f.rng))
		if f.cursor > now {
			f.wait = waitTimer
			f.setTimer(f.cursor)
		}
	case scenario.StepRepeat:
		f.enterRepeat(st.Repeat, now)
	case scenario.StepPing:
		f.ping(st, now)
	case scenario.StepClose:
		f.closeSocket(st.Close.Code, st.Close.Reason, now)
	case scenario.StepReconnect:
		// The intended start is the flow's cursor, unless that lies ahead
		// (the socket was lost while waiting for a paced iteration): then
		// the reconnect starts now, so corrected ≥ uncorrected.
		f.reconn, f.reconnAt, f.attempt = st, min(f.cursor, now), 0
		if c.state == stOpen {
			f.reconnWait = true
			f.closeSocket(1000, "", now)
			return
		}
		f.backoff(now)
	case scenario.StepReplay:
		f.startReplay(st, now)
	}
}

// phaseOffset spreads paced repeats of different connections over one
// period so that they are never in lock-step. It is a hash of the id rather
// than a golden-ratio sequence: flows are picked by a golden-ratio sequence
// of the id (Plan.FlowIndex), and the same sequence would bunch one flow's
// connections into one part of the period.
func phaseOffset(id uint32) float64 {
	x := uint64(id) + 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}

func (f *flowState) enterRepeat(r *scenario.Repeat, now int64) {
	fr := frame{steps: r.Steps, pc: len(r.Steps), rep: r, start: f.cursor}
	if r.Rate > 0 {
		fr.start += int64(phaseOffset(f.c.id) * float64(time.Second) / r.Rate)
	}
	if r.For > 0 {
		fr.until = f.cursor + int64(r.For)
	}
	f.stack = append(f.stack, fr) // run sees pc at the end: iteration 0 starts
}

// nextIteration starts fr's next iteration, or pops fr when it is over. A
// paced iteration that is due later waits for it; a late one starts at once
// with its intended time as the cursor.
func (f *flowState) nextIteration(fr *frame, now int64) {
	r := fr.rep
	at := max(now, f.cursor)
	if r.Rate > 0 {
		at = fr.start + int64(float64(fr.iter)*float64(time.Second)/r.Rate)
	}
	if r.Count > 0 && fr.iter >= r.Count || fr.until > 0 && at >= fr.until {
		f.stack = f.stack[:len(f.stack)-1]
		f.cursor = max(f.cursor, now)
		return
	}
	fr.iter++
	fr.pc = 0
	f.cursor = at
	if at > now {
		f.wait = waitTimer
		f.setTimer(at)
	}
}

// skipToReconnect moves the program counter to the next reconnect step of
// the current steps or an enclosing repeat; false when there is none.
func (f *flowState) skipToReconnect() bool {
	for k := len(f.stack) - 1; k >= 0; k-- {
		fr := &f.stack[k]
		for i := fr.pc; i < len(fr.steps); i++ {
			if fr.steps[i].Kind == scenario.StepReconnect {
				f.stack = f.stack[:k+1]
				fr.pc = i
				return true
			}
		}
		if fr.rep != nil && hasReconnect(fr.steps) {
			// The repeated steps reconnect before they need the socket:
			// go on with the next iteration.
			f.stack = f.stack[:k+1]
			fr.pc = len(fr.steps)
			return true
		}
	}
	return false
}

func hasReconnect(steps []scenario.Step) bool {
	for i := range steps {
		if steps[i].Kind == scenario.StepReconnect {
			return true
		}
	}
	return false
}

// scratch is a send's buffers; pooled because sends run on pollers and
// senders alike.
type scratch struct {
	payload, frame []byte
	comp           *wsproto.Compressor
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// write sends one data message, compressed when negotiated; false when the
// socket failed (nbio closes it and the close is handled as usual).
func (f *flowState) write(b *scratch, op wsproto.Opcode, payload []byte) bool {
	c := f.c
	if c.deflt {
		var err error
		if b.comp == nil {
			b.comp, err = wsproto.NewCompressor(wsproto.DefaultCompressionLevel)
		}
		if err == nil {
			b.frame, err = b.comp.AppendMessage(b.frame[:0], op, payload, c.mask())
		}
		if err != nil {
			c.recError("compress")
			return false
		}
	} else {
		b.frame = wsproto.AppendFrame(b.frame[:0], op, true, payload, c.mask())
	}
	return c.write(b.frame) == nil
}

// send sends step st's templated message intended at the cursor.
func (f *flowState) send(st *scenario.Step, now int64) {
	c, s := f.c, st.Send
	sched := f.cursor
	f.vars.Seq = f.seq
	f.seq++
	f.vars.Now = c.e.base.Add(time.Duration(sched))
	b := scratchPool.Get().(*scratch)
	b.payload = s.Append(b.payload[:0], &f.vars)
	op := wsproto.OpText
	if s.Binary {
		op = wsproto.OpBinary
	}
	f.sent(b, op, sched, st.Name)
	scratchPool.Put(b)
}

// sent writes b.payload intended at sched and records it, in the run's
// counters and in those of the step named step.
func (f *flowState) sent(b *scratch, op wsproto.Opcode, sched int64, step string) {
	c := f.c
	bk := c.sendBackend()
	// The actual send time is read before the write (and its compression),
	// as the echo flow does (sender.fire): uncorrected latency includes the
	// write, and send lag is the wait before it.
	actual := c.e.now()
	if c.e.slowWrite != nil {
		c.e.slowWrite()
	}
	if !f.write(b, op, b.payload) {
		c.sh.StepError(step)
		return
	}
	lag := time.Duration(max(actual-sched, 0))
	c.sh.SentFor(bk, len(b.payload), lag)
	c.sh.StepSent(step, lag)
	f.last = span{sched, actual}
	f.sentSinceMatch = true
}

func (f *flowState) ping(st *scenario.Step, now int64) {
	c := f.c
	b := scratchPool.Get().(*scratch)
	b.payload = b.payload[:0]
	if p := st.Ping.Payload; p != nil {
		b.payload = p.Append(b.payload, &f.vars)
	}
	if len(b.payload) > wsproto.MaxControlPayload {
		b.payload = b.payload[:wsproto.MaxControlPayload]
	}
	b.frame = wsproto.AppendFrame(b.frame[:0], wsproto.OpPing, true, b.payload, c.mask())
	err := c.write(b.frame)
	scratchPool.Put(b)
	if err != nil {
		c.sh.StepError(st.Name)
		return
	}
	f.wait, f.step = waitPing, st
	f.began = span{f.cursor, c.e.now()}
	f.sentSinceMatch = true
	f.setTimer(now + int64(st.Ping.Timeout))
}

// closeSocket starts the closing handshake and waits for the socket's end.
func (f *flowState) closeSocket(code int, reason string, now int64) {
	c := f.c
	if c.state != stOpen {
		return
	}
	c.state = stClosing
	c.code = code
	f.wait = waitClose
	f.setTimer(now + int64(c.e.cfg.CloseTimeout))
	if err := c.write(wsproto.AppendClose(nil, code, reason, c.mask())); err != nil {
		c.endLocked(code)
	}
}

func (f *flowState) backoff(now int64) {
	d := f.reconn.Reconnect.Backoff(f.attempt, f.rng)
	f.wait = waitBackoff
	f.setTimer(now + max(int64(d), 1))
}

// redial hands the connection back to the dialers for the reconnect.
func (f *flowState) redial() {
	c := f.c
	c.resetForDial()
	f.wait = waitDial
	if !c.e.dq.push(c) { // the run's dialing is over: counted as not started
		c.state = stClosed
		f.done = true
		f.leave()
	}
}

func (f *flowState) capture(cp *scenario.Capture, msg []byte) {
	v, ok := cp.Extract(msg)
	if !ok {
		f.c.recError("capture_missing")
		if _, seen := f.c.e.samples.Load("capture_missing"); !seen {
			f.c.e.sample("capture_missing", fmt.Errorf("capture %s (line %v): %s not found in %q", cp.Var, cp.Pos, captureWhat(cp), truncateMsg(msg, 80)))
		}
		return
	}
	if cp.Slot >= 0 && cp.Slot < len(f.vars.Captured) {
		f.vars.Captured[cp.Slot] = v
	}
}

func captureWhat(cp *scenario.Capture) string {
	if cp.Regex != nil {
		return "regex " + strconv.Quote(cp.Regex.String())
	}
	return "json " + cp.JSONPath
}

// ---- replay ----

func (f *flowState) startReplay(st *scenario.Step, now int64) {
	f.finishReplay()
	rp := &replayState{step: st, r: st.Replay, start: f.cursor, last: span{f.cursor, now}}
	for _, m := range st.Replay.Messages {
		if m.Dir == scenario.DirReceive {
			rp.expected++
		}
	}
	f.rp = rp
	f.replay(now)
}

// replay sends the replay's messages that are due and waits for the next.
func (f *flowState) replay(now int64) {
	rp := f.rp
	if rp == nil {
		return
	}
	if f.c.state != stOpen {
		return // closed meanwhile: closed() decides what comes next
	}
	msgs := rp.r.Messages
	for rp.next < len(msgs) {
		m := &msgs[rp.next]
		at := rp.start + int64(float64(m.Offset)/rp.r.Speed)
		if at > now {
			f.cursor = at
			f.wait = waitReplay
			f.setTimer(at)
			return
		}
		rp.next++
		if m.Dir != scenario.DirSend {
			continue
		}
		op := wsproto.OpText
		if m.Opcode == byte(wsproto.OpBinary) {
			op = wsproto.OpBinary
		}
		b := scratchPool.Get().(*scratch)
		b.payload = append(b.payload[:0], m.Data...)
		f.sent(b, op, at, rp.step.Name)
		scratchPool.Put(b)
		rp.last = f.last
	}
	f.cursor = max(f.cursor, now)
}

// finishReplay counts the replies the latest replay did not get as timed
// out.
func (f *flowState) finishReplay() {
	rp := f.rp
	if rp == nil {
		return
	}
	f.rp = nil
	for i := rp.got; i < rp.expected; i++ {
		f.c.sh.TimedOutFor(f.c.bk)
		f.c.sh.StepTimedOut(rp.step.Name)
	}
}
