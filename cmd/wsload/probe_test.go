package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/wsload/wsload/internal/testenv"
	"github.com/wsload/wsload/probe"
	"github.com/wsload/wsload/server"
)

func TestProbeCmdExitCodes(t *testing.T) {
	target := startTarget(t, server.Config{BackendID: "probe-b1"})
	closed := fmt.Sprintf("ws://127.0.0.1:%d/", testenv.FreePort(t))
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
	}{
		{"works", []string{target}, exitOK, []string{"X-Backend: probe-b1", `received text "hello server"`, "OK: the endpoint speaks WebSocket"}},
		{"own message", []string{target, "--message", "ping 42"}, exitOK, []string{`received text "ping 42" (7 bytes), an echo`}},
		{"refused", []string{closed, "--timeout", "2s"}, exitProbeRefused, []string{"diagnosis: nothing listens on 127.0.0.1:", "hint: "}},
		{"502", []string{target + "status/502"}, exitProbeHTTP, []string{"could not reach a backend that speaks WebSocket"}},
		{"426", []string{target + "status/426"}, exitProbeHTTP, []string{"426 Upgrade Required"}},
		{"wss at ws", []string{"wss" + strings.TrimPrefix(target, "ws"), "--timeout", "1s"}, exitProbeTLS, []string{"diagnosis: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCommand(probeCmd, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			for _, want := range tt.stdout {
				if !strings.Contains(out, want) {
					t.Fatalf("stdout lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestProbeCmdJSON(t *testing.T) {
	target := startTarget(t, server.Config{})
	code, out, errOut := runCommand(probeCmd, target+"status/404", "--format", "json")
	if code != exitProbeHTTP {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitProbeHTTP, errOut)
	}
	var rep probe.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("stdout is not a JSON report: %v\n%s", err, out)
	}
	if rep.Schema != probe.Schema || rep.OK || rep.Upgrade == nil || rep.Upgrade.Status != 404 {
		t.Fatalf("report %+v", rep)
	}
	if d := rep.Diagnosis(); d == nil || d.Fault != probe.FaultHTTPStatus {
		t.Fatalf("diagnoses %+v", rep.Diagnoses)
	}
	if !strings.Contains(errOut, "diagnosis: no WebSocket endpoint at path") {
		t.Fatalf("stderr does not repeat the diagnosis:\n%s", errOut)
	}
}

func TestProbeCmdUsage(t *testing.T) {
	// Help asked for is the command's output: stdout, exit 0.
	if code, out, errOut := runCommand(probeCmd, "--help"); code != exitOK || !strings.Contains(out, "wsload probe ws://127.0.0.1:8080/") || errOut != "" {
		t.Fatalf("--help: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no URL", nil, exitUsage, "give the URL to probe"},
		{"two URLs", []string{"ws://a/", "ws://b/"}, exitUsage, "one URL at a time"},
		{"format", []string{"ws://127.0.0.1/", "--format", "xml"}, exitUsage, `--format must be text or json, got "xml"`},
		{"header", []string{"ws://127.0.0.1/", "-H", "NoColon"}, exitUsage, `-H "NoColon"`},
		{"ping without idle", []string{"ws://127.0.0.1/", "--ping-every", "10s"}, exitUsage, "--ping-every 10s needs --idle"},
		{"timeout", []string{"ws://127.0.0.1/", "--timeout", "0s"}, exitUsage, "--timeout must be positive"},
		{"http URL", []string{"http://127.0.0.1:8080/"}, exitUsage, "WebSocket URLs start with ws://"},
		{"unknown flag", []string{"ws://127.0.0.1/", "--nope"}, exitUsage, "unknown flag: --nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCommand(probeCmd, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit %d and %q", code, errOut, tt.code, tt.want)
			}
			if out != "" {
				t.Fatalf("stdout %q, want nothing on a usage error", out)
			}
			if tt.code == exitUsage && !strings.Contains(errOut, "hint:") {
				t.Fatalf("usage error without a hint:\n%s", errOut)
			}
		})
	}
}

func TestProbeExitCodesCoverFaults(t *testing.T) {
	common := map[int]bool{exitOK: true, exitRunFailed: true, exitUsage: true, exitLimits: true, exitSLO: true, exitOutput: true, exitInterrupted: true}
	for _, f := range probe.Faults() {
		code, ok := probeExitCodes[f]
		if !ok {
			t.Fatalf("fault %s has no exit code", f)
		}
		if common[code] {
			t.Fatalf("fault %s exits with %d, which the other commands use", f, code)
		}
		if !strings.Contains(probeExitText, fmt.Sprint(code)) {
			t.Fatalf("exit code %d (%s) is not documented in the usage text", code, f)
		}
	}
	if len(probeExitCodes) != len(probe.Faults()) {
		t.Fatalf("%d exit codes for %d faults", len(probeExitCodes), len(probe.Faults()))
	}
}
