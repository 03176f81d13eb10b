package atomicfile

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// entries lists dir's names, so a test can see that no temporary file was left behind.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("ReadDir: %v", err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestRegularFileReplacedAtomicallyKeepsMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "r.json")
	if err := WriteFile(p, []byte("new file\n")); err != nil {
		t.Fatalf("WriteFile new: %v", err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != DefaultPerm {
		t.Fatalf("new file: %v, mode %v; want %v", err, fi.Mode(), DefaultPerm)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	old, _ := os.Stat(p)
	if err := WriteFile(p, []byte("second\n")); err != nil {
		t.Fatalf("WriteFile replace: %v", err)
	}
	fi, _ = os.Stat(p)
	if b, _ := os.ReadFile(p); string(b) != "second\n" {
		t.Fatalf("content %q", b)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("replaced file has mode %v, want the old 0600", fi.Mode().Perm())
	}
	if os.SameFile(old, fi) {
		t.Fatalf("the file was rewritten in place, not replaced by a rename")
	}
	if got := entries(t, dir); len(got) != 1 {
		t.Fatalf("directory holds %q, want only r.json", got)
	}
}

func TestSymlinkFollowedAndKept(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.json")
	link := filepath.Join(dir, "link.json")
	if err := os.WriteFile(real, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real.json", link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(link, []byte("through the link")); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("link.json is no longer a symlink (%v, %v)", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(real); string(b) != "through the link" {
		t.Fatalf("real.json = %q", b)
	}

	// A dangling link creates the file it names.
	dangling := filepath.Join(dir, "dangling.json")
	if err := os.Symlink("made.json", dangling); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(dangling, []byte("made")); err != nil {
		t.Fatalf("WriteFile dangling: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "made.json")); string(b) != "made" {
		t.Fatalf("made.json = %q", b)
	}
	if fi, _ := os.Lstat(dangling); fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("dangling.json was replaced, want it kept as a link")
	}
}

func TestFIFOWrittenThrough(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	if err := Check(p); err != nil {
		t.Fatalf("Check(fifo): %v", err)
	}
	got := make(chan []byte, 1)
	go func() {
		f, err := os.Open(p) // blocks until the writer opens
		if err != nil {
			got <- []byte(err.Error())
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		got <- b
	}()
	if err := WriteFile(p, []byte("streamed")); err != nil {
		t.Fatalf("WriteFile(fifo): %v", err)
	}
	select {
	case b := <-got:
		if string(b) != "streamed" {
			t.Fatalf("reader got %q", b)
		}
	case <-time.After(time.Minute):
		t.Fatalf("the FIFO's reader got nothing within a minute")
	}
	if fi, err := os.Lstat(p); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Fatalf("the FIFO was replaced: %v %v", fi.Mode(), err)
	}
}

// TestDeviceWrittenThrough uses a private null device (made with mknod when running as root,
// as CI does) so that a bug here could never replace the machine's /dev/null.
func TestDeviceWrittenThrough(t *testing.T) {
	dev := "/dev/null"
	if os.Geteuid() == 0 {
		dev = filepath.Join(t.TempDir(), "null")
		if err := syscall.Mknod(dev, syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
			t.Fatalf("mknod: %v", err)
		}
	}
	before, err := os.Stat(dev)
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(dev); err != nil {
		t.Fatalf("Check(%s): %v", dev, err)
	}
	if err := WriteFile(dev, []byte("discarded")); err != nil {
		t.Fatalf("WriteFile(%s): %v", dev, err)
	}
	after, err := os.Stat(dev)
	if err != nil || after.Mode()&fs.ModeCharDevice == 0 || !os.SameFile(before, after) {
		t.Fatalf("%s is no longer the same character device: %v %v", dev, after.Mode(), err)
	}
}

func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ path, want string }{
		{dir, "is a directory"},
		{filepath.Join(dir, "no", "such", "dir", "r.json"), "no such file or directory"},
		{"", "no file name"},
	} {
		if err := Check(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(%q) = %v, want an error with %q", tc.path, err, tc.want)
		}
		if err := WriteFile(tc.path, []byte("x")); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("WriteFile(%q) = %v, want an error with %q", tc.path, err, tc.want)
		}
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Fatalf("refusals left %q behind", got)
	}
}

func TestCheckLeavesNoTrace(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "r.json")
	if err := Check(p); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Fatalf("Check left %q behind", got)
	}
}

func TestAbortAndStreaming(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "log.hlog")
	if err := os.WriteFile(p, []byte("previous run"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Create(p)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	_, _ = f.Write([]byte("half"))
	if b, _ := os.ReadFile(p); string(b) != "previous run" {
		t.Fatalf("the path changed before Commit: %q", b)
	}
	f.Abort()
	if b, _ := os.ReadFile(p); string(b) != "previous run" {
		t.Fatalf("Abort changed the path: %q", b)
	}
	if got := entries(t, dir); len(got) != 1 {
		t.Fatalf("Abort left %q", got)
	}

	f, err = Create(p)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	defer f.Abort() // a no-op after Commit
	var want bytes.Buffer
	for i := 0; i < 100; i++ {
		line := []byte(strings.Repeat("x", i) + "\n")
		want.Write(line)
		if _, err := f.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := f.Commit(); err == nil {
		t.Fatalf("a second Commit succeeded")
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("committed %d bytes, want %d", len(b), want.Len())
	}
}

func TestSame(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.json")
	if err := os.WriteFile(a, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "l.json")
	if err := os.Symlink(a, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{a, a, true},
		{a, link, true},
		{a, filepath.Join(dir, ".", "a.json"), true},
		{filepath.Join(dir, "new"), filepath.Join(dir, "x", "..", "new"), true},
		{a, filepath.Join(dir, "b.json"), false},
		{"-", "-", true},
		{"-", a, false},
		{"", "", false},
	} {
		if got := Same(tc.a, tc.b); got != tc.want {
			t.Errorf("Same(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
