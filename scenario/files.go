package scenario

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Options tunes LoadWith and ParseWith.
type Options struct {
	// AllowOutsideFiles lets the scenario read payload, data and capture
	// files outside its own directory (an absolute path, a ../ path, a
	// symlink pointing out). Off, those are errors: a scenario from
	// someone else must not be able to send any file of this machine to
	// its target. `wsload run` and `check` set it with --allow-outside-files.
	AllowOutsideFiles bool
}

// MaxPayloadFile bounds a send.file payload: 16 MiB, the largest message
// wsload's own WebSocket reader takes (wsproto.DefaultMaxMessageSize), so
// a payload an echo could not bring back is refused before the run.
const MaxPayloadFile = 16 << 20

// FileRef is one file a scenario reads, for `wsload check` to show.
type FileRef struct {
	Kind    string // send.file, data, replay.file, tls.ca_file
	Path    string // as opened: relative paths joined to the scenario's directory
	Pos     Pos    // where the scenario names it
	Size    int64
	Outside bool // outside the scenario's directory, symlinks resolved
}

// outsideHint is the hint of the error for a file outside the directory.
const outsideHint = "a scenario reads files in its own directory (and below) only, so that a scenario from elsewhere cannot send this machine's files to its target; if you trust this one, add --allow-outside-files"

// readFile reads a file the scenario names: confined to its directory
// (see Options.AllowOutsideFiles), a regular file of at most limit bytes.
// Problems are reported at n; ok is false after one. A file inside the
// directory is opened through an os.Root, so a symlink swapped in between
// the check and the read cannot lead out either.
func (d *decoder) readFile(n *yaml.Node, kind, name string, limit int64, confine bool) (path string, data []byte, ok bool) {
	path = d.path(name)
	ref := FileRef{Kind: kind, Path: path, Pos: pos(n)}
	rel, outside := d.outside(path)
	ref.Outside = outside
	defer func() {
		ref.Size = int64(len(data))
		d.files = append(d.files, ref)
	}()
	if outside && confine && !d.opts.AllowOutsideFiles {
		d.errorf(n, outsideHint, "%s %q is outside the scenario's directory %s", kind, name, d.absDir())
		return path, nil, false
	}
	var err error
	if outside {
		data, err = readLimited(path, limit)
	} else {
		data, err = d.readInside(rel, path, limit)
	}
	if err != nil {
		d.errorf(n, "paths are relative to the scenario file", "%s: %v", kind, err)
		return path, nil, false
	}
	return path, data, true
}

// absDir is the scenario's directory as an absolute path, for messages.
func (d *decoder) absDir() string {
	if abs, err := filepath.Abs(d.dir); err == nil {
		return abs
	}
	return d.dir
}

// outside reports whether path lies outside the scenario's directory,
// lexically or once symlinks are resolved, and else its path relative to
// the directory. A path that does not exist is judged lexically (reading
// it fails anyway).
func (d *decoder) outside(path string) (rel string, outside bool) {
	escapes := func(base, p string) (string, bool) {
		r, err := filepath.Rel(base, p)
		return r, err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) || filepath.IsAbs(r)
	}
	absDir, err1 := filepath.Abs(d.dir)
	absPath, err2 := filepath.Abs(path)
	if err1 != nil || err2 != nil {
		return "", true
	}
	rel, out := escapes(absDir, absPath)
	if out {
		return "", true
	}
	realDir, err1 := filepath.EvalSymlinks(absDir)
	realPath, err2 := filepath.EvalSymlinks(absPath)
	if err1 != nil || err2 != nil {
		return rel, false
	}
	if _, out := escapes(realDir, realPath); out {
		return "", true
	}
	return rel, false
}

// readInside reads rel under the scenario's directory through an os.Root.
func (d *decoder) readInside(rel, path string, limit int64) ([]byte, error) {
	if d.root == nil && d.rootErr == nil {
		d.root, d.rootErr = os.OpenRoot(d.dir)
	}
	if d.rootErr != nil {
		return nil, d.rootErr
	}
	f, err := d.root.Open(rel)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	return readOpen(f, path, limit)
}

// unwrapPath drops the *os.PathError around err, whose path is the one
// relative to the root; the caller names the file.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// readLimited reads a regular file of at most limit bytes, so that a
// scenario naming /dev/zero or a FIFO fails instead of hanging.
func readLimited(path string, limit int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readOpen(f, path, limit)
}

func readOpen(f *os.File, path string, limit int64) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > limit {
		return nil, tooLarge(path, fi.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit { // it grew while read
		return nil, tooLarge(path, int64(len(data)), limit)
	}
	return data, nil
}

func tooLarge(path string, size, limit int64) error {
	if limit >= 1<<20 {
		return fmt.Errorf("%s is %d bytes, more than the %d MiB a scenario may read here", path, size, limit>>20)
	}
	return fmt.Errorf("%s is %d bytes, more than the %d bytes a scenario may read here", path, size, limit)
}
