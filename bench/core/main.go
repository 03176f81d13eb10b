// Command core measures wsload itself on this machine and prints JSON: how
// fast it opens connections, how much memory an idle connection costs, how
// many echoed messages per second it drives with every RTT recorded, and its
// CPU per message. Every figure comes from a real `wsload run` process
// against a real target process on loopback (npm ws, and `wsload serve`).
//
//	go run ./bench/core                      # all measurements, both targets
//	go run ./bench/core -target node -only echo
//
// CPU is the wsload process's own user+system time (getrusage of the child),
// not wall time: the machines are shared. Memory is the child's resident set
// read from /proc while it holds its connections.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wsload/wsload/stats"
)

func main() {
	target := flag.String("target", "node,serve", "targets to measure against: node (npm ws echo), serve (wsload serve), comma-separated")
	only := flag.String("only", "connect,memory,echo", "measurements: connect, memory, echo")
	repeat := flag.Int("repeat", 3, "runs per figure; the median is reported")
	echoRate := flag.Float64("echo-rate", 1000, "messages per second per connection in the echo test (100 connections)")
	flag.Parse()

	root, err := repoRoot()
	check(err)
	tmp, err := os.MkdirTemp("", "wsload-bench-")
	check(err)
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "wsload")
	build := exec.Command("go", "build", "-o", bin, "./cmd/wsload")
	build.Dir, build.Stderr = root, os.Stderr
	check(build.Run())

	out := map[string]any{"machine": machine(), "date": time.Now().UTC().Format(time.RFC3339)}
	for _, t := range strings.Split(*target, ",") {
		url, stop, err := startTarget(t, root, bin)
		check(err)
		res := map[string]any{"target_url": url}
		for _, m := range strings.Split(*only, ",") {
			switch m {
			case "connect":
				res["connect"] = measureConnect(bin, url, *repeat)
			case "memory":
				res["memory"] = measureMemory(bin, url)
			case "echo":
				res["echo"] = measureEcho(bin, url, *echoRate, *repeat)
			default:
				check(fmt.Errorf("unknown measurement %q", m))
			}
		}
		stop()
		out[t] = res
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	check(enc.Encode(out))
}

// run is one `wsload run` child: its result, CPU and peak sampled RSS.
type run struct {
	res      *stats.Result
	cpu      time.Duration // user + system
	rssHold  int64         // resident bytes while holding (median of the samples in the hold)
	wall     time.Duration
	cmdline  string
	exitCode int
}

func wsloadRun(bin string, args ...string) run {
	dir, err := os.MkdirTemp("", "wsload-run-")
	check(err)
	defer os.RemoveAll(dir)
	outFile := filepath.Join(dir, "r.json")
	args = append([]string{"run"}, append(args, "-q", "-o", outFile, "--format", "json")...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout = io.Discard
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	check(cmd.Start())
	// Sample the resident set every 100 ms; the figure is the median of the
	// samples taken while holding (between 50% and 90% of the run), after the
	// ramp and before the closing handshakes.
	type sample struct {
		at  time.Duration
		rss int64
	}
	var samples []sample
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				samples = append(samples, sample{time.Since(start), rss(cmd.Process.Pid)})
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	<-sampled
	total := time.Since(start)
	var hold []float64
	for _, s := range samples {
		if s.rss > 0 && s.at >= total/2 && s.at <= total*9/10 {
			hold = append(hold, float64(s.rss))
		}
	}
	peak := int64(median(hold))
	r := run{wall: time.Since(start), rssHold: peak, cmdline: "wsload " + strings.Join(args[:len(args)-5], " ")}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	r.exitCode = cmd.ProcessState.ExitCode()
	if err != nil && r.exitCode != 0 {
		fmt.Fprintf(os.Stderr, "bench: %s: %v\n%s", r.cmdline, err, stderr.String())
	}
	r.res, err = stats.ReadResultFile(outFile)
	check(err)
	return r
}

func measureConnect(bin, url string, repeat int) map[string]any {
	var rates, ramps []float64
	var cmdline string
	for i := 0; i < repeat; i++ {
		r := wsloadRun(bin, url, "-c", "5000", "-r", "0", "-d", "4s")
		cmdline = r.cmdline
		if r.res.Connections.Established != 5000 || r.res.Connections.RampS == 0 {
			fmt.Fprintf(os.Stderr, "bench: connect: %+v %v\n", r.res.Connections, r.res.Errors)
			continue
		}
		ramps = append(ramps, r.res.Connections.RampS)
		rates = append(rates, 5000/r.res.Connections.RampS)
	}
	return map[string]any{
		"command": cmdline, "connections": 5000, "runs": len(ramps),
		"ramp_s_median": median(ramps), "ramp_s_all": ramps,
		"connections_per_s_median": median(rates),
	}
}

// measureMemory holds idle connections and reads wsload's resident memory:
// total per connection, and the increment over a 100-connection baseline.
func measureMemory(bin, url string) map[string]any {
	base := wsloadRun(bin, url, "-c", "100", "-r", "0", "-d", "6s")
	out := map[string]any{"baseline_100_rss_bytes": base.rssHold, "command_baseline": base.cmdline}
	for _, n := range []int{10000, 15000} {
		r := wsloadRun(bin, url, "-c", strconv.Itoa(n), "-r", "0", "-d", "8s")
		est := r.res.Connections.Established
		key := strconv.Itoa(n)
		out[key] = map[string]any{
			"command":                r.cmdline,
			"established":            est,
			"rss_bytes":              r.rssHold,
			"rss_per_conn_bytes":     ratio(r.rssHold, est),
			"rss_per_conn_over_base": ratio(r.rssHold-base.rssHold, est-100),
			"errors":                 r.res.Errors,
		}
	}
	return out
}

// measureEcho drives 100 connections at rate messages/s each and reports
// what came back, the RTTs (every one recorded) and wsload's CPU per echo.
func measureEcho(bin, url string, rate float64, repeat int) map[string]any {
	var runs []map[string]any
	var recv, cpuPer []float64
	for i := 0; i < repeat; i++ {
		r := wsloadRun(bin, url, "-c", "100", "-r", strconv.FormatFloat(rate, 'f', -1, 64), "-d", "10s")
		m := r.res.Messages
		per := 0.0
		if m.Received > 0 {
			per = float64(r.cpu.Microseconds()) / float64(m.Received)
		}
		recv = append(recv, m.ReceivedPerS)
		cpuPer = append(cpuPer, per)
		runs = append(runs, map[string]any{
			"command":           r.cmdline,
			"offered_per_s":     rate * 100,
			"sent_per_s":        m.SentPerS,
			"received_per_s":    m.ReceivedPerS,
			"timed_out":         m.TimedOut,
			"rtt_recorded":      r.res.Latency.RTT.Count,
			"rtt_p50_us":        r.res.Latency.RTT.P50US,
			"rtt_p99_us":        r.res.Latency.RTT.P99US,
			"rtt_p999_us":       r.res.Latency.RTT.P999US,
			"rtt_unc_p99_us":    r.res.Latency.RTTUncorrected.P99US,
			"send_lag_p99_us":   r.res.Latency.SendLag.P99US,
			"cpu_s":             r.cpu.Seconds(),
			"cpu_per_echo_us":   per,
			"cpu_per_million_s": per,
			"warnings":          r.res.Generator.Warnings,
		})
	}
	return map[string]any{
		"received_per_s_median":  median(recv),
		"cpu_per_echo_us_median": median(cpuPer),
		"runs":                   runs,
	}
}

// startTarget starts the target as its own process and returns its URL.
func startTarget(kind, root, bin string) (string, func(), error) {
	var cmd *exec.Cmd
	var re *regexp.Regexp
	switch kind {
	case "node":
		cmd = exec.Command("node", filepath.Join(root, "testdata/node/ws-server.js"), "--mode", "echo", "--port", "0")
		re = regexp.MustCompile(`listening (\d+)`)
	case "serve":
		cmd = exec.Command(bin, "serve", "--addr", "127.0.0.1:0")
		re = regexp.MustCompile(`ws://127\.0\.0\.1:(\d+)`)
	default:
		return "", nil, fmt.Errorf("unknown target %q", kind)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		pw.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case port <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case p := <-port:
		return "ws://127.0.0.1:" + p + "/", stop, nil
	case <-ctx.Done():
		stop()
		return "", nil, fmt.Errorf("target %s did not start", kind)
	}
}

func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

func machine() map[string]any {
	b, _ := os.ReadFile("/proc/cpuinfo")
	model := ""
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			model = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
			break
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	return map[string]any{"cpu": model, "loadavg": strings.TrimSpace(string(load))}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func ratio(a, b int64) int64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("bench: no go.mod above the working directory")
		}
		dir = parent
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
