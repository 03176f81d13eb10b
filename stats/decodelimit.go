package stats

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// DefaultMaxInput is the largest result or log file ReadResultFileMax (and
// `wsload merge`, unless --max-input-size says otherwise) reads: a real
// result is a few MB (a timeline point is ~200 bytes, a histogram a few KB),
// so 256 MiB is generous, and still bounds what one input can cost.
const DefaultMaxInput = 256 << 20

// ErrTooLarge is wrapped by the errors of ReadResultFileMax and
// OpenInputMax for an input above their limit.
var ErrTooLarge = errors.New("input larger than the limit")

// OpenInputMax opens path for reading at most max bytes. A regular file
// larger than max is refused before anything is read; any other file (a
// FIFO, /dev/stdin) is read through a reader that fails past max bytes. The
// caller closes the file.
func OpenInputMax(path string, max int64) (*os.File, io.Reader, error) {
	if max <= 0 {
		return nil, nil, fmt.Errorf("stats: %s: the input limit must be more than 0 bytes, got %d", path, max)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("stats: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("stats: %w", err)
	}
	if fi.Mode().IsRegular() && fi.Size() > max {
		f.Close()
		return nil, nil, fmt.Errorf("stats: %s is %d bytes: %w of %d bytes", path, fi.Size(), ErrTooLarge, max)
	}
	return f, &limitReader{r: f, left: max, path: path, max: max}, nil
}

// limitReader is io.LimitReader that fails, rather than ending quietly,
// when the input goes on past max bytes.
type limitReader struct {
	r         io.Reader
	left, max int64
	path      string
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One byte more tells a file of exactly max bytes from a longer one.
		var b [1]byte
		if n, err := l.r.Read(b[:]); n == 0 && err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("%s goes on past %d bytes: %w", l.path, l.max, ErrTooLarge)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// ReadResultFileMax reads the Result at path as ReadResultFile does, but
// refuses a file above max bytes before reading it, and decodes the JSON
// as it reads instead of reading the whole file first.
func ReadResultFileMax(path string, max int64) (*Result, error) {
	f, r, err := OpenInputMax(path, max)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res, err := decodeResultStream(r)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return res, nil
}

// decodeResultStream is DecodeResult without its fixed size limit (r
// bounds the input) and without reading all of r before decoding.
func decodeResultStream(r io.Reader) (*Result, error) {
	res := new(Result)
	dec := json.NewDecoder(r)
	err := dec.Decode(res)
	switch {
	case errors.Is(err, ErrTooLarge):
		return nil, fmt.Errorf("stats: reading result: %w", err)
	case res.Schema != "" && res.Schema != Schema:
		return nil, fmt.Errorf("stats: unsupported result schema %q (this wsload reads %q)", res.Schema, Schema)
	case err != nil:
		return nil, fmt.Errorf("stats: decoding result: %w", err)
	case res.Schema == "":
		return nil, errors.New("stats: not a wsload result: no \"schema\" field")
	}
	if _, err := dec.Token(); err != io.EOF {
		if errors.Is(err, ErrTooLarge) {
			return nil, fmt.Errorf("stats: reading result: %w", err)
		}
		return nil, errors.New("stats: decoding result: more than one JSON value")
	}
	if err := res.validateSparse(); err != nil {
		return nil, fmt.Errorf("stats: invalid result: %w", err)
	}
	return res, nil
}
