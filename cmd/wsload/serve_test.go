package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsload/wsload/server"
)

// serveLog is an io.Writer safe to read while serveUntil writes to it.
type serveLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *serveLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *serveLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func TestServeUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--bogus"}, "unknown flag: --bogus"},
		{"stall without FOR", []string{"--stall", "2s"}, "want EVERY/FOR"},
		{"stall with a bad duration", []string{"--stall", "2s/soon"}, "FOR:"},
		{"stall longer than its period", []string{"--stall", "1s/2s"}, "must be shorter than Every"},
		{"cert without key", []string{"--tls-cert", "c.pem"}, "both a certificate and a key"},
		{"missing certificate file", []string{"--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem", "--addr", "127.0.0.1:0"}, "no such file"},
		{"positional argument", []string{"127.0.0.1:8080"}, "the address is --addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr serveLog
			code := serveUntil(context.Background(), func() {}, tt.args, io.Discard, &stderr)
			if code != exitUsage || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q; want %d mentioning %q", code, stderr.String(), exitUsage, tt.want)
			}
		})
	}
}

func TestServeAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	var stderr serveLog
	code := serveUntil(context.Background(), func() {}, []string{"--addr", ln.Addr().String()}, io.Discard, &stderr)
	if code != exitRunFailed || !strings.Contains(stderr.String(), "address in use") || !strings.Contains(stderr.String(), "--addr 127.0.0.1:0") {
		t.Fatalf("exit %d, stderr %q; want %d with the address-in-use hint", code, stderr.String(), exitRunFailed)
	}
}

func TestServeRunsUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr serveLog
	done := make(chan int, 1)
	go func() {
		done <- serveUntil(ctx, cancel, []string{"--addr", "127.0.0.1:0", "--backend-id", "cli-1"}, io.Discard, &stderr)
	}()
	listening := regexp.MustCompile(`wsload serve: listening on ws://(127\.0\.0\.1:\d+)/`)
	var addr string
	deadline := time.Now().Add(time.Minute) // generous: a loaded machine under -race
	for addr == "" {
		if m := listening.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited early with %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listening line after a minute: %q", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("GET /: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != server.IndexText || resp.Header.Get("X-Backend") != "cli-1" {
		t.Fatalf("GET / = %q with X-Backend %q", body, resp.Header.Get("X-Backend"))
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK || !strings.Contains(stderr.String(), "wsload serve: stopped") {
			t.Fatalf("exit %d after cancel, stderr %q; want 0 and a stop summary", code, stderr.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("serve did not stop within 2 minutes of cancel")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatalf("still accepting on %s after stop", addr)
	}
}

func TestStallFlag(t *testing.T) {
	tests := []struct {
		in      string
		want    server.Stall
		wantErr bool
	}{
		{"2s/500ms", server.Stall{Every: 2 * time.Second, For: 500 * time.Millisecond}, false},
		{"1m/1s", server.Stall{Every: time.Minute, For: time.Second}, false},
		{"2s", server.Stall{}, true},
		{"x/1s", server.Stall{}, true},
		{"2s/", server.Stall{}, true},
	}
	for _, tt := range tests {
		var st server.Stall
		err := stallFlag{&st}.Set(tt.in)
		if (err != nil) != tt.wantErr || st != tt.want {
			t.Fatalf("Set(%q) = %+v, %v; want %+v, error %v", tt.in, st, err, tt.want, tt.wantErr)
		}
		if !tt.wantErr && (stallFlag{&st}).String() != tt.want.Every.String()+"/"+tt.want.For.String() {
			t.Fatalf("String() after Set(%q) = %q", tt.in, stallFlag{&st}.String())
		}
	}
}
