// Package atomicfile writes wsload's output files without ever harming what the path names.
//
// A regular file (or a path that does not exist yet) is replaced atomically: the data goes to a
// temporary file in the same directory, is synced, and is renamed over the path, so a reader or
// a crash never sees half a result. A symlink is followed: the file it points to is replaced and
// the link stays a link. A device, FIFO or socket (/dev/stdout, /dev/null, a named pipe) is
// written through, never replaced: renaming a JSON file over /dev/null as root would break the
// whole machine. A directory is refused. "-" is standard output.
//
//	if err := atomicfile.Check(out); err != nil { ... } // before the run: exit 2 with the reason
//	...
//	err := atomicfile.WriteFile(out, data)               // after it
//
// For output that grows while a run goes (an interval log), Create returns a File to Write to;
// Commit publishes it, Abort throws it away.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DefaultPerm is the mode of a file this package creates. Results are not secrets (headers are
// redacted before they reach a file).
const DefaultPerm fs.FileMode = 0o644

// target is where the bytes for path go once links are followed.
type target struct {
	path    string      // the file to replace or write through (symlinks resolved)
	exists  bool        // path names something now
	regular bool        // ...and it is a regular file (or absent): replace atomically
	perm    fs.FileMode // the mode the replacement gets
}

// resolve follows path's symlinks and says how it is to be written.
func resolve(path string) (target, error) {
	if path == "" {
		return target{}, errors.New("no file name given")
	}
	t := target{path: path, perm: DefaultPerm, regular: true}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		real, err := filepath.EvalSymlinks(path)
		switch {
		case err == nil:
			t.path = real
		case errors.Is(err, fs.ErrNotExist):
			// A dangling link: create the file it points to, as the shell's > would.
			dest, rerr := os.Readlink(path)
			if rerr != nil {
				return target{}, rerr
			}
			if !filepath.IsAbs(dest) {
				dest = filepath.Join(filepath.Dir(path), dest)
			}
			t.path = dest
		default:
			return target{}, err
		}
	}
	fi, err := os.Stat(t.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return t, nil
	case err != nil:
		return target{}, err
	}
	t.exists = true
	switch {
	case fi.IsDir():
		return target{}, fmt.Errorf("%s is a directory (hint: give a file name inside it)", path)
	case fi.Mode().IsRegular():
		t.perm = fi.Mode().Perm() // a replaced file keeps its mode
	default:
		t.regular = false // device, FIFO, socket: write through
	}
	return t, nil
}

// Stdout is the path that names standard output.
const Stdout = "-"

// Check tells before a run whether path can be written, so a run never measures for minutes
// and then loses its result: the directory must exist and take a new file, or the device, FIFO
// or file must open for writing. It leaves no trace (a FIFO is not opened: that would block
// until a reader comes).
func Check(path string) error {
	if path == Stdout {
		return nil
	}
	t, err := resolve(path)
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if !t.regular {
		fi, err := os.Stat(t.path)
		if err == nil && fi.Mode()&fs.ModeNamedPipe != 0 {
			return nil
		}
		f, err := os.OpenFile(t.path, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("cannot write %s: %w", path, err)
		}
		return f.Close()
	}
	dir := filepath.Dir(t.path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(t.path)+".check*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		hint := ""
		if errors.Is(err, fs.ErrNotExist) {
			hint = " (hint: create the directory first, or give a path in one that exists)"
		}
		return fmt.Errorf("cannot write %s: directory %s: %w%s", path, dir, err, hint)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// File is an output being written. For a regular file it is a temporary file that Commit renames
// over the destination; for a device or FIFO it is the destination itself.
type File struct {
	f       *os.File
	path    string // what the caller named, for messages
	dest    string // the resolved destination
	tmp     bool   // f is a temporary file to rename over dest
	stdout  bool   // f is os.Stdout: flushed by the OS, never closed here
	perm    fs.FileMode
	settled bool // Commit or Abort ran
}

// Create opens path for writing as described in the package comment. Nothing is visible at path
// until Commit.
func Create(path string) (*File, error) {
	if path == Stdout {
		return &File{f: os.Stdout, path: "standard output", stdout: true}, nil
	}
	t, err := resolve(path)
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	if !t.regular {
		f, err := os.OpenFile(t.path, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("writing %s: %w", path, err)
		}
		return &File{f: f, path: path, dest: t.path}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(t.path), "."+filepath.Base(t.path)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return &File{f: f, path: path, dest: t.path, tmp: true, perm: t.perm}, nil
}

// Write writes to the file.
func (f *File) Write(p []byte) (int, error) { return f.f.Write(p) }

// Commit makes what was written visible at the path: sync, set the mode, rename, and sync the
// directory (best effort: not every filesystem can). For a device or FIFO it only closes.
// On error nothing at the path changed and the temporary file is gone.
func (f *File) Commit() (err error) {
	if f.settled {
		return errors.New("atomicfile: Commit after Commit or Abort")
	}
	f.settled = true
	if f.stdout {
		return nil
	}
	if !f.tmp {
		if err := f.f.Close(); err != nil {
			return fmt.Errorf("writing %s: %w", f.path, err)
		}
		return nil
	}
	tmp := f.f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err = f.f.Chmod(f.perm); err == nil {
		err = f.f.Sync()
	}
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, f.dest)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", f.path, err)
	}
	if d, derr := os.Open(filepath.Dir(f.dest)); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Abort throws away what was written (a temporary file is removed; a device was written
// through and keeps what it got). It is a no-op after Commit, so `defer f.Abort()` is safe.
func (f *File) Abort() {
	if f.settled {
		return
	}
	f.settled = true
	if f.stdout {
		return
	}
	f.f.Close()
	if f.tmp {
		os.Remove(f.f.Name())
	}
}

// WriteFile writes data to path as described in the package comment.
func WriteFile(path string, data []byte) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Commit()
}

// Same reports whether paths a and b name the same output (after following links), so a
// command can refuse `-o x --hlog x` before the run instead of one output overwriting the
// other. Paths that do not exist yet are compared by their cleaned absolute form.
func Same(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	if a == Stdout || b == Stdout {
		return a == b
	}
	ta, erra := resolve(a)
	tb, errb := resolve(b)
	if erra != nil || errb != nil {
		return false
	}
	if ta.exists && tb.exists {
		fa, err1 := os.Stat(ta.path)
		fb, err2 := os.Stat(tb.path)
		return err1 == nil && err2 == nil && os.SameFile(fa, fb)
	}
	absA, err1 := filepath.Abs(ta.path)
	absB, err2 := filepath.Abs(tb.path)
	return err1 == nil && err2 == nil && absA == absB
}
