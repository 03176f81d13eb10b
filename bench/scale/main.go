// Command scale is wsload's scale proof: one `wsload run` invocation, spread
// over worker processes (--procs auto) and four source addresses, opens and
// holds 50,000 WebSocket connections to targets on loopback, sends messages
// on every one of them, and reports the established count, the connect rate,
// wsload's own memory per connection and the round-trip percentiles as JSON.
//
//	go run ./bench/scale                      # 50,000 connections, about 2 minutes
//	go run ./bench/scale -c 10000 -d 30s      # a quicker look
//
// The target side is spread too: the server package has no SO_REUSEPORT, so
// the benchmark starts -targets `wsload serve` processes on their own ports
// (each under the 20,000 open files one process may hold here) and gives
// `wsload run` all their URLs; each worker dials one target, so --procs auto
// is rounded up to a multiple of the targets. Connections per (source
// address, target) pair stay well inside the ephemeral port range.
//
// wsload's RSS is sampled from /proc every 500 ms for the parent and all its
// workers (the targets are not counted); the peak of the sum divided by the
// connections established is the memory per connection. Linux only.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wsload/wsload/stats"
)

// Figures is what the benchmark prints.
type Figures struct {
	Command          string   `json:"command"`
	Connections      int      `json:"connections_requested"`
	Established      int64    `json:"connections_established"`
	PeakOpen         int64    `json:"peak_open"`
	Failed           int64    `json:"connections_failed"`
	Procs            int      `json:"worker_processes"`
	Targets          int      `json:"target_processes"`
	RampS            float64  `json:"ramp_s"`
	ConnectRatePerS  float64  `json:"connect_rate_per_s"`
	Sent             int64    `json:"messages_sent"`
	Received         int64    `json:"messages_received"`
	PeakRSSBytes     int64    `json:"wsload_peak_rss_bytes"` // parent + workers, summed per sample
	RSSPerConnBytes  float64  `json:"wsload_rss_per_connection_bytes"`
	RTTP50US         int64    `json:"rtt_p50_us"`
	RTTP90US         int64    `json:"rtt_p90_us"`
	RTTP99US         int64    `json:"rtt_p99_us"`
	RTTP999US        int64    `json:"rtt_p999_us"`
	RTTMaxUS         int64    `json:"rtt_max_us"`
	HandshakeP99US   int64    `json:"handshake_p99_us"`
	GeneratorCPUS    float64  `json:"wsload_cpu_s"`
	ExitCode         int      `json:"wsload_exit_code"`
	GeneratorWarning []string `json:"warnings,omitempty"`
}

func main() {
	conns := flag.Int("c", 50000, "connections to open and hold")
	targets := flag.Int("targets", 4, "`wsload serve` processes, one port each")
	dur := flag.Duration("d", 90*time.Second, "length of the run (ramp included)")
	rate := flag.Float64("r", 0.05, "messages per second per connection")
	sources := flag.String("source-ips", "127.0.0.2-127.0.0.5", "source addresses for --source-ips")
	keep := flag.String("o", "", "also keep wsload's JSON result here")
	flag.Parse()
	if err := run(*conns, *targets, *dur, *rate, *sources, *keep); err != nil {
		fmt.Fprintf(os.Stderr, "scale: %v\n", err)
		os.Exit(1)
	}
}

func run(conns, ntargets int, dur time.Duration, rate float64, sources, keep string) error {
	dir, err := os.MkdirTemp("", "wsload-scale")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	exe := filepath.Join(dir, "wsload")
	build := exec.Command("go", "build", "-o", exe, "./cmd/wsload")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build wsload (run from the repository root): %w", err)
	}

	var urls []string
	for i := range ntargets {
		port, err := freePort()
		if err != nil {
			return err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		srv := exec.Command(exe, "serve", "--addr", addr, "--pollers", "1")
		srv.Stderr = os.Stderr
		if err := srv.Start(); err != nil {
			return fmt.Errorf("start target %d: %w", i+1, err)
		}
		defer func() {
			_ = srv.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { _ = srv.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				_ = srv.Process.Kill()
				<-done
			}
		}()
		if err := waitListen(addr, 10*time.Second); err != nil {
			return err
		}
		urls = append(urls, "ws://"+addr+"/")
	}

	out := filepath.Join(dir, "result.json")
	args := append(append([]string{"run"}, urls...),
		"-c", strconv.Itoa(conns), "--procs", "auto", "--source-ips", sources,
		"-r", strconv.FormatFloat(rate, 'g', -1, 64), "-d", dur.String(), "--reply-timeout", "30s",
		"-o", out, "--format", "json")
	cmd := exec.Command(exe, args...)
	cmd.Stdout = nil // the JSON result is read from -o
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start wsload run: %w", err)
	}
	procs := 0
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // pass the progress through; note the worker count
		defer wg.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(os.Stderr, line)
			if n, ok := strings.CutPrefix(line, "wsload: --procs auto: "); ok {
				procs, _ = strconv.Atoi(strings.Fields(n)[0])
			}
		}
	}()
	ctx, stopSampling := context.WithCancel(context.Background())
	peak := make(chan int64, 1)
	go func() { peak <- sampleRSS(ctx, cmd.Process.Pid) }()
	waitErr := cmd.Wait()
	stopSampling()
	wg.Wait()
	peakRSS := <-peak

	res, err := stats.ReadResultFile(out)
	if err != nil {
		return fmt.Errorf("wsload run (%v) left no result: %w", waitErr, err)
	}
	if keep != "" {
		if err := stats.WriteJSONFile(keep, res); err != nil {
			return err
		}
	}
	f := Figures{
		Command:          "go run ./bench/scale " + strings.Join(os.Args[1:], " "),
		Connections:      conns,
		Established:      res.Connections.Established,
		PeakOpen:         res.Connections.PeakOpen,
		Failed:           res.Connections.Failed,
		Procs:            procs,
		Targets:          ntargets,
		RampS:            res.Connections.RampS,
		Sent:             res.Messages.Sent,
		Received:         res.Messages.Received,
		PeakRSSBytes:     peakRSS,
		RTTP50US:         res.Latency.RTT.P50US,
		RTTP90US:         res.Latency.RTT.P90US,
		RTTP99US:         res.Latency.RTT.P99US,
		RTTP999US:        res.Latency.RTT.P999US,
		RTTMaxUS:         res.Latency.RTT.MaxUS,
		HandshakeP99US:   res.Latency.Handshake.P99US,
		GeneratorCPUS:    res.Generator.CPUUserS + res.Generator.CPUSysS,
		ExitCode:         cmd.ProcessState.ExitCode(),
		GeneratorWarning: res.Generator.Warnings,
	}
	if f.RampS > 0 {
		f.ConnectRatePerS = float64(f.Established) / f.RampS
	}
	if f.PeakOpen > 0 {
		f.RSSPerConnBytes = float64(peakRSS) / float64(f.PeakOpen)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		return err
	}
	if f.PeakOpen < int64(conns) {
		return fmt.Errorf("held at most %d of %d connections", f.PeakOpen, conns)
	}
	return nil
}

// sampleRSS sums the RSS of pid and its children every 500 ms until ctx is
// done and returns the highest sum.
func sampleRSS(ctx context.Context, pid int) int64 {
	var peak int64
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		sum := rss(pid)
		for _, c := range children(pid) {
			sum += rss(c)
		}
		peak = max(peak, sum)
		select {
		case <-ctx.Done():
			return peak
		case <-t.C:
		}
	}
}

// rss reads VmRSS from /proc/PID/status; 0 when the process is gone.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// children lists pid's child processes from /proc/PID/task/*/children.
func children(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitListen(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return errors.Join(fmt.Errorf("target %s did not listen within %v", addr, within), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
