package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestOutputsCheckedBeforeDialing: an output that cannot be written, or two outputs naming one
// file, exit 2 before anything is dialed. The target is a closed port: had wsload dialed, it
// would have exited 1 (nothing established) instead.
func TestOutputsCheckedBeforeDialing(t *testing.T) {
	dir := t.TempDir()
	closed := "ws://127.0.0.1:1/"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing directory", []string{"run", closed, "-o", filepath.Join(dir, "nope", "r.json")}, "--out: cannot write"},
		{"directory as file", []string{"run", closed, "-o", dir}, "is a directory"},
		{"hlog in missing directory", []string{"run", closed, "--hlog", filepath.Join(dir, "nope", "r.hlog")}, "--hlog: cannot write"},
		{"same file twice", []string{"run", closed, "-o", filepath.Join(dir, "x"), "--hlog", filepath.Join(dir, ".", "x")}, "--out and --hlog both name"},
		{"capacity directory", []string{"capacity", closed, "--slo", "rtt.p99<1s", "-c", "1:2:1", "-o", dir}, "is a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := dispatch(tc.args, &out, &errb)
			if code != exitUsage || !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("wsload %s: exit %d, stderr %q; want exit %d with %q", strings.Join(tc.args, " "), code, errb.String(), exitUsage, tc.want)
			}
			if strings.Contains(errb.String(), "refused") {
				t.Fatalf("the target was dialed before the outputs were checked: %s", errb.String())
			}
		})
	}
	if es, _ := os.ReadDir(dir); len(es) != 0 {
		t.Fatalf("the checks left files behind: %v", es)
	}
}

// TestOutputsNeverReplaceSpecialFiles runs a short embedded run with -o on a device node, a
// symlink and a FIFO's neighbour: the device stays a device, the link stays a link with the
// result in its target.
func TestOutputsNeverReplaceSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	dev := "/dev/null"
	if os.Geteuid() == 0 { // a private null device: a bug here must never hit the machine's /dev/null
		dev = filepath.Join(dir, "null")
		if err := syscall.Mknod(dev, syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
			t.Fatalf("mknod: %v", err)
		}
	}
	real := filepath.Join(dir, "real.json")
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink("real.json", link); err != nil {
		t.Fatal(err)
	}
	devBefore, _ := os.Stat(dev)
	for _, target := range []string{dev, link} {
		var out, errb bytes.Buffer
		args := []string{"run", "-c", "2", "-r", "1", "-d", "1s", "-q", "-o", target}
		if code := dispatch(args, &out, &errb); code != exitOK {
			t.Fatalf("wsload %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
		}
	}
	devAfter, err := os.Stat(dev)
	if err != nil || devAfter.Mode()&fs.ModeCharDevice == 0 || !os.SameFile(devBefore, devAfter) {
		t.Fatalf("%s was replaced: %v %v", dev, devAfter.Mode(), err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("link.json was replaced by a file: %v %v", fi.Mode(), err)
	}
	b, err := os.ReadFile(real)
	if err != nil {
		t.Fatalf("the result did not reach the link's target: %v", err)
	}
	var res map[string]any
	if err := json.Unmarshal(b, &res); err != nil || res["schema"] != "wsload.result/v1" {
		t.Fatalf("real.json is not a result (%v): %.200s", err, b)
	}
}
