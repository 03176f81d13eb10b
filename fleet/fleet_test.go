package fleet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lesismal/nbio/logging"

	"github.com/wsload/wsload/engine"
	"github.com/wsload/wsload/internal/nbiolog"
	"github.com/wsload/wsload/internal/testenv"
	"github.com/wsload/wsload/partition"
	"github.com/wsload/wsload/server"
	"github.com/wsload/wsload/stats"
)

// workerEnv makes the test binary act as a worker: Run starts copies of it
// with the test's Args and "--worker i/N", and TestMain runs workerMain
// instead of the tests. serveEnv makes it the target (serveMain).
const (
	workerEnv = "WSLOAD_FLEET_TEST_WORKER"
	serveEnv  = "WSLOAD_FLEET_TEST_SERVE"
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(workerEnv) == "1":
		os.Exit(workerMain(os.Args[1:]))
	case os.Getenv(serveEnv) == "1":
		os.Exit(serveMain())
	}
	nbiolog.Quiet() // nbio's errors only, on stderr
	os.Exit(m.Run())
}

// serveMain runs server.Start in its own process, so the test process holds
// no target (nbio's accept path trips the race detector under a burst of
// connections; that is the server's concern, not the fleet's). It prints the
// URL, serves until stdin closes, then prints the server's Stats as JSON.
func serveMain() int {
	logging.SetLevel(logging.LevelNone)
	srv, err := server.Start(server.Config{Addr: "127.0.0.1:0", Pollers: 1})
	if err != nil {
		fmt.Fprintf(os.Stderr, "serve: %v\n", err)
		return 1
	}
	fmt.Println(srv.URL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = srv.Shutdown(context.Background())
	b, _ := json.Marshal(srv.Stats())
	fmt.Println(string(b))
	return 0
}

// target is a server.Start target running in a child process.
type target struct {
	url  string
	stop func() server.Stats
}

func startServer(t *testing.T) *target {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("os.Executable: %v", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), serveEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("stdin pipe: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("stdout pipe: %v", err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start target: %v", err)
	}
	br := bufio.NewReader(stdout)
	url, err := br.ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("target did not print its URL: %v", err)
	}
	var once sync.Once
	var st server.Stats
	stop := func() server.Stats {
		once.Do(func() {
			stdin.Close()
			line, _ := br.ReadString('\n')
			if err := json.Unmarshal([]byte(line), &st); err != nil {
				t.Errorf("target stats %q: %v", line, err)
			}
			_ = cmd.Wait()
		})
		return st
	}
	t.Cleanup(func() { stop() })
	return &target{url: strings.TrimSpace(url), stop: stop}
}

// workerMain is a minimal `wsload run --worker i/N`: args are URL,
// connections, rate per connection, duration, die-after (a worker index that
// SIGKILLs itself 0.3 s after the first interval by which all its connections
// are established and it has sent a message, 0 for none; negative: worker
// -die-after SIGSTOPs itself instead, a wedged worker), then "--worker", "i/N".
func workerMain(args []string) int {
	logging.SetLevel(logging.LevelNone)
	if len(args) != 7 || args[5] != "--worker" {
		fmt.Fprintf(os.Stderr, "worker: bad args %q\n", args)
		return 2
	}
	total, _ := strconv.Atoi(args[1])
	rate, _ := strconv.ParseFloat(args[2], 64)
	dur, _ := time.ParseDuration(args[3])
	dieIdx, _ := strconv.Atoi(args[4])
	seg, err := stats.ParseSegment(args[6])
	if err != nil {
		fmt.Fprintf(os.Stderr, "worker: %v\n", err)
		return 2
	}
	part := partition.Partition{Slot: seg.Index - 1, Slots: seg.Count}
	count := int(part.Share(int64(total)))
	rep := NewReporter(os.Stdout)
	var die sync.Once
	var established, sent int64 // so far, for the dying worker
	cfg := engine.Config{
		URL: args[0], Connections: count, Partition: part, TotalConnections: total,
		Rate: rate, Duration: dur, Pollers: 1, HandshakeTimeout: time.Minute,
	}
	sig := syscall.SIGKILL
	if dieIdx < 0 {
		dieIdx, sig = -dieIdx, syscall.SIGSTOP
	}
	sink := func(iv *stats.Interval) {
		_ = rep.Interval(iv)
		if seg.Index != dieIdx {
			return
		}
		// Mid-run, once the intervals streamed hold all its connections and some
		// messages (however long a loaded machine took to get there): SIGKILL, no goodbye.
		established += iv.Established
		sent += iv.Sent
		if established < int64(count) || sent == 0 {
			return
		}
		die.Do(func() {
			time.AfterFunc(300*time.Millisecond, func() {
				fmt.Fprintln(os.Stderr, "about to be "+map[syscall.Signal]string{syscall.SIGKILL: "killed", syscall.SIGSTOP: "stopped"}[sig])
				_ = syscall.Kill(os.Getpid(), sig)
			})
		})
	}
	eng, err := engine.New(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "worker: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := eng.Run(ctx, sink)
	if err != nil {
		fmt.Fprintf(os.Stderr, "worker: %v\n", err)
		return 1
	}
	if err := rep.Done(res.Connections.RampS, res.ErrorSamples); err != nil {
		return 1
	}
	if ctx.Err() != nil {
		return 130
	}
	return 0
}

type collector struct {
	mu    sync.Mutex
	ivs   []*stats.Interval
	total *stats.Interval
}

func (c *collector) add(iv *stats.Interval) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ivs = append(c.ivs, iv)
	if c.total == nil {
		c.total = stats.NewInterval(time.Time{}, time.Time{})
	}
	c.total.Merge(iv)
}

func runWorkers(t *testing.T, procs int, args ...string) (*Report, *collector, string) {
	t.Helper()
	t.Setenv(workerEnv, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("os.Executable: %v", err)
	}
	var c collector
	var stderr testenv.SyncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Options{Procs: procs, Exe: exe, Args: args, OnInterval: c.add, Stderr: &stderr, Grace: time.Minute})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if c.total == nil {
		var ends []string
		for _, w := range rep.Workers {
			ends = append(ends, fmt.Sprintf("%s: %s, %d intervals, stream error %v", w.Name(), w.Exit, w.Intervals, w.StreamErr))
		}
		t.Fatalf("no interval reached OnInterval; workers:\n%s\nstderr:\n%s", strings.Join(ends, "\n"), stderr.String())
	}
	return rep, &c, stderr.String()
}

func TestRunThreeWorkersMergedEqualsSum(t *testing.T) {
	srv := startServer(t)
	const conns = 30
	rep, c, stderr := runWorkers(t, 3, srv.url, strconv.Itoa(conns), "20", "2500ms", "0")
	if w := rep.Warnings(); len(w) > 0 {
		t.Fatalf("warnings: %q\nstderr:\n%s", w, stderr)
	}
	sum := rep.DoneTotal()
	got := c.total
	for _, f := range []struct {
		name      string
		got, want int64
	}{
		{"attempted", got.Attempted, sum.Attempted},
		{"established", got.Established, sum.Established},
		{"closed", got.Closed, sum.Closed},
		{"sent", got.Sent, sum.Sent},
		{"received", got.Received, sum.Received},
		{"bytes sent", got.BytesSent, sum.BytesSent},
		{"rtt samples", got.RTT.TotalCount(), sum.RTT.TotalCount()},
		{"handshake samples", got.Handshake.TotalCount(), sum.Handshake.TotalCount()},
	} {
		if f.got != f.want {
			t.Fatalf("merged %s = %d, workers' own totals add up to %d", f.name, f.got, f.want)
		}
	}
	if !got.RTT.Equals(sum.RTT) {
		t.Fatalf("merged RTT histogram differs from the sum of the workers' (p99 %d vs %d)", stats.Quantile(got.RTT, 99), stats.Quantile(sum.RTT, 99))
	}
	if got.Established != conns {
		t.Fatalf("established %d connections over 3 workers, want %d", got.Established, conns)
	}
	// The load really was run, and at no more than the schedule: each connection sends at
	// most ceil(20/s × 2.5 s) = 50 messages, and every message was echoed. (How many of
	// those 50 a loaded machine manages is not this test's business; the exact counts are.)
	if got.Sent < conns || got.Sent > conns*50 || got.Received != got.Sent {
		t.Fatalf("sent %d received %d, want %d..%d sent, all echoed", got.Sent, got.Received, conns, conns*50)
	}
	if st := srv.stop(); st.MessagesIn != uint64(got.Sent) || st.Upgrades != uint64(conns) {
		t.Fatalf("server saw %d messages and %d upgrades, the merge says %d and %d", st.MessagesIn, st.Upgrades, got.Sent, conns)
	}
	// Seconds from different workers were merged, not appended: a worker adds at most one
	// interval to a merged one, so there are at least as many as the longest worker
	// streamed, and fewer than all of theirs together (the workers ran at the same time).
	// And they come in time order.
	most, all := 0, 0
	for _, w := range rep.Workers {
		most, all = max(most, w.Intervals), all+w.Intervals
	}
	if len(c.ivs) < most || len(c.ivs) >= all {
		t.Fatalf("%d merged intervals from workers that streamed %d in all, at most %d each: seconds were not aligned", len(c.ivs), all, most)
	}
	for i := 1; i < len(c.ivs); i++ {
		if c.ivs[i].End.Before(c.ivs[i-1].End) {
			t.Fatalf("interval %d ends before interval %d", i, i-1)
		}
	}
	for _, w := range rep.Workers {
		if w.Done == nil || w.Done.Total.Established != 10 || w.ExitCode != 0 || w.PID == 0 {
			t.Fatalf("%s: done %v, exit %q: want 10 connections and exit 0", w.Name(), w.Done != nil, w.Exit)
		}
		if w.CPUUserS+w.CPUSysS <= 0 || w.MaxRSSBytes <= 0 {
			t.Fatalf("%s: no resource use recorded (cpu %v+%v s, rss %d)", w.Name(), w.CPUUserS, w.CPUSysS, w.MaxRSSBytes)
		}
	}
	if ramp, ok := rep.Ramp(); !ok || ramp <= 0 {
		t.Fatalf("Ramp() = %v, %v: every worker established all its connections", ramp, ok)
	}
}

func TestRunKilledWorkerIsReportedAndItsDataKept(t *testing.T) {
	srv := startServer(t)
	// 6 s: worker 2 dies once its connections are up and sending, the others run on.
	rep, c, stderr := runWorkers(t, 3, srv.url, "30", "20", "6s", "2")
	dead := rep.Workers[1]
	if !dead.Died() || dead.ExitCode != -1 || !strings.Contains(dead.Exit, "killed") {
		t.Fatalf("worker 2: died %v, exit %q (%d): want killed", dead.Died(), dead.Exit, dead.ExitCode)
	}
	if dead.Intervals == 0 {
		t.Fatalf("worker 2 sent no interval before it was killed")
	}
	w := rep.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], "worker 2/3") || !strings.Contains(w[0], "died") ||
		!strings.Contains(w[0], "is kept") || !strings.Contains(w[0], "about to be killed") {
		t.Fatalf("warnings %q: want one naming worker 2/3, its death, the kept data and its last stderr", w)
	}
	if !strings.Contains(stderr, "worker 2/3: about to be killed") {
		t.Fatalf("worker stderr was not forwarded with its name:\n%s", stderr)
	}
	for _, i := range []int{0, 2} {
		if rep.Workers[i].Died() || rep.Workers[i].ExitCode != 0 {
			t.Fatalf("%s: %s, want a normal end", rep.Workers[i].Name(), rep.Workers[i].Exit)
		}
	}
	// The survivors' totals plus what worker 2 streamed before dying.
	survivors := rep.DoneTotal()
	if c.total.Established != 30 {
		t.Fatalf("merged established %d, want 30 (worker 2's connections were established before it died)", c.total.Established)
	}
	if c.total.Sent <= survivors.Sent || c.total.RTT.TotalCount() <= survivors.RTT.TotalCount() {
		t.Fatalf("merged sent %d rtt %d, survivors alone %d %d: worker 2's data was not kept",
			c.total.Sent, c.total.RTT.TotalCount(), survivors.Sent, survivors.RTT.TotalCount())
	}
}

func TestRunCancelStopsWorkers(t *testing.T) {
	srv := startServer(t)
	t.Setenv(workerEnv, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("os.Executable: %v", err)
	}
	// The workers would run for an hour: Run returns within the test's wait only if the
	// cancel stopped them. The cancel comes once every connection is up (a condition, not
	// a guess at how long that takes), and the grace before SIGKILL is generous, so a
	// slow clean stop is not mistaken for a hung one.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var c collector
	add := func(iv *stats.Interval) {
		c.add(iv)
		c.mu.Lock()
		up := c.total.Established == 10
		c.mu.Unlock()
		if up {
			cancel()
		}
	}
	type result struct {
		rep *Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := Run(ctx, Options{Procs: 2, Exe: exe, Args: []string{srv.url, "10", "10", "1h", "0"}, OnInterval: add, Grace: time.Minute})
		done <- result{rep, err}
	}()
	var rep *Report
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("Run: %v", r.err)
		}
		rep = r.rep
	case <-time.After(3 * time.Minute):
		cancel()
		t.Fatalf("Run still going 3 minutes in (workers run an hour unless stopped); cancelled: %v", ctx.Err() != nil)
	}
	if !rep.Interrupted {
		t.Fatalf("Report.Interrupted is false after cancel")
	}
	// The workers stop on SIGINT like wsload does: close their connections,
	// send their totals, exit 130. That is not worth a warning.
	for _, w := range rep.Workers {
		if w.Died() || w.ExitCode != 130 {
			t.Fatalf("%s: exit %q, died %v: want a clean stop with 130", w.Name(), w.Exit, w.Died())
		}
	}
	if w := rep.Warnings(); len(w) != 0 {
		t.Fatalf("warnings after an interrupt: %q", w)
	}
	if c.total == nil || c.total.Established != 10 || c.total.Closed != 10 || c.total.CloseCodes[1001] != 10 {
		t.Fatalf("merged data after the interrupt: %+v; want 10 connections established and closed with 1001", c.total)
	}
}

func TestRunStartFailure(t *testing.T) {
	_, err := Run(context.Background(), Options{Procs: 2, Exe: "/nonexistent/wsload", Args: []string{"run"}})
	if err == nil || !strings.Contains(err.Error(), "start worker 1/2") {
		t.Fatalf("Run with a missing executable: %v", err)
	}
	if _, err := Run(context.Background(), Options{Procs: 0, Exe: "x"}); err == nil {
		t.Fatalf("Run accepted 0 processes")
	}
}

func TestStreamDropsPartialLastLine(t *testing.T) {
	var buf bytes.Buffer
	rep := NewReporter(&buf)
	t0 := time.Unix(1700000000, 0)
	for i := range 3 {
		iv := stats.NewInterval(t0.Add(time.Duration(i)*time.Second), t0.Add(time.Duration(i+1)*time.Second))
		iv.Sent = int64(i + 1)
		iv.Open = int64(10 + i)
		iv.PeakOpen = 20
		if err := rep.Interval(iv); err != nil {
			t.Fatalf("Interval: %v", err)
		}
	}
	if err := rep.Done(1.5, map[string]string{"refused": "connection refused"}); err != nil {
		t.Fatalf("Done: %v", err)
	}
	full := buf.Bytes()
	for _, tc := range []struct {
		name      string
		data      []byte
		ivs       int
		done      bool
		wantError bool
	}{
		{"whole", full, 3, true, false},
		{"killed mid-line", full[:len(full)-7], 3, false, false},
		{"killed mid-interval", full[:bytes.IndexByte(full, '\n')+10], 1, false, false},
		{"text among the lines", append([]byte("2026/01/01 [INF] a library log line\n"), full...), 3, true, false},
		{"not the protocol", []byte("{\"hello\": 1}\n"), 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ivs []*stats.Interval
			var done *Done
			err := readStream(bytes.NewReader(tc.data), func(iv *stats.Interval) { ivs = append(ivs, iv) }, func(d *Done) { done = d }, func(string) {})
			if (err != nil) != tc.wantError {
				t.Fatalf("readStream error %v, want error %v", err, tc.wantError)
			}
			if len(ivs) != tc.ivs || (done != nil) != tc.done {
				t.Fatalf("got %d intervals, done %v; want %d, %v", len(ivs), done != nil, tc.ivs, tc.done)
			}
			if done != nil {
				if done.Total.Sent != 6 || done.Total.Open != 12 || done.Total.PeakOpen != 20 || done.RampS != 1.5 || done.Samples["refused"] == "" {
					t.Fatalf("done line: total sent %d open %d peak %d, ramp %v, samples %v",
						done.Total.Sent, done.Total.Open, done.Total.PeakOpen, done.RampS, done.Samples)
				}
			}
		})
	}
}

// A worker that stops responding (SIGSTOP: it neither exits nor writes) is stopped once the run
// is over by every bound (Options.End), SIGKILLed Grace later, and reported; Run returns, and
// the data that worker streamed until it stopped is kept.
func TestWedgedWorkerIsStoppedAtTheEnd(t *testing.T) {
	srv := startServer(t)
	t.Setenv(workerEnv, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("os.Executable: %v", err)
	}
	var c collector
	var stderr testenv.SyncBuffer
	// The workers run 2 s; worker 2 stops itself once all its connections are up and it has
	// sent. The end bound is generous for a loaded machine; without it Run never returns.
	const bound = 40 * time.Second
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Options{Procs: 2, Exe: exe, Args: []string{srv.url, "10", "20", "2s", "-2"},
		OnInterval: c.add, Stderr: &stderr, Grace: 2 * time.Second, End: start.Add(bound)})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("Run returned only when the test's own deadline cancelled it; stderr:\n%s", stderr.String())
	}
	if took := time.Since(start); took < bound {
		t.Fatalf("Run returned after %v, before the end bound %v: it did not wait for the stopped worker", took, bound)
	}
	w1, w2 := rep.Workers[0], rep.Workers[1]
	if w1.Overran || w1.Died() || w1.ExitCode != 0 {
		t.Fatalf("worker 1 ran normally, got overran %v, exit %q; stderr:\n%s", w1.Overran, w1.Exit, stderr.String())
	}
	if !w2.Overran || w2.Intervals == 0 || w2.ExitCode != -1 {
		t.Fatalf("worker 2: overran %v, %d intervals, exit %q; want overran, some intervals kept, killed by a signal", w2.Overran, w2.Intervals, w2.Exit)
	}
	warnings := rep.Warnings()
	if len(warnings) != 1 || !strings.Contains(warnings[0], "worker 2/2") || !strings.Contains(warnings[0], "after the run should have ended") || !strings.Contains(warnings[0], "is kept") {
		t.Fatalf("warnings %q", warnings)
	}
	if c.total == nil || c.total.Established < 10 {
		t.Fatalf("merged data lost: %+v", c.total)
	}
}
