package fleet

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/wsload/wsload/stats"
)

// Done is a worker's last line: its own totals and what the Intervals do not
// carry. The parent checks its merged counts against the sum of the Totals.
type Done struct {
	// Total is the merge of every Interval the worker sent.
	Total *stats.Interval
	// RampS is how long the worker took to establish all its connections;
	// 0 when not all were.
	RampS float64
	// Samples holds one error text per failure reason.
	Samples map[string]string
}

type wireDone struct {
	V       int               `json:"wsload_worker_done"`
	Total   json.RawMessage   `json:"total"`
	RampS   float64           `json:"ramp_s,omitempty"`
	Samples map[string]string `json:"samples,omitempty"`
}

var noTime time.Time

// Reporter is the worker's side of the stream: one line per Interval on the
// worker's stdout (stats.EncodeInterval), then one Done line. Each line is
// flushed at once, so the parent sees every second as it ends and keeps a
// killed worker's data up to its last full line. It is safe for concurrent
// use.
type Reporter struct {
	mu    sync.Mutex
	w     *bufio.Writer
	total *stats.Interval
}

// NewReporter returns a Reporter writing to w.
func NewReporter(w io.Writer) *Reporter {
	return &Reporter{w: bufio.NewWriterSize(w, 64<<10), total: stats.NewInterval(noTime, noTime)}
}

// Interval sends iv and adds it to the worker's total.
func (r *Reporter) Interval(iv *stats.Interval) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	peak := r.total.PeakOpen
	r.total.Merge(iv)
	// Merge adds the gauges; over time the total's open gauge is the latest
	// level and the peak the highest, as stats.Aggregate keeps them.
	r.total.Open = iv.Open
	r.total.PeakOpen = max(peak, iv.PeakOpen, iv.Open)
	if err := stats.EncodeInterval(r.w, iv); err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	if err := r.w.Flush(); err != nil {
		return fmt.Errorf("fleet: sending interval: %w", err)
	}
	return nil
}

// Done sends the worker's last line: its totals (the merge of every Interval
// sent), ramp time and error samples.
func (r *Reporter) Done(rampS float64, samples map[string]string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var buf bytes.Buffer
	if err := stats.EncodeInterval(&buf, r.total); err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	b, err := json.Marshal(wireDone{V: 1, Total: bytes.TrimSpace(buf.Bytes()), RampS: rampS, Samples: samples})
	if err != nil {
		return fmt.Errorf("fleet: encoding done: %w", err)
	}
	if _, err := r.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("fleet: sending done: %w", err)
	}
	if err := r.w.Flush(); err != nil {
		return fmt.Errorf("fleet: sending done: %w", err)
	}
	return nil
}

// decodeLine parses one stream line: an Interval or the Done line.
func decodeLine(line []byte) (*stats.Interval, *Done, error) {
	var probe struct {
		Done *int `json:"wsload_worker_done"`
	}
	if err := json.Unmarshal(line, &probe); err != nil {
		return nil, nil, fmt.Errorf("fleet: stream line: %w", err)
	}
	if probe.Done == nil {
		iv, err := stats.DecodeInterval(line)
		if err != nil {
			return nil, nil, fmt.Errorf("fleet: %w", err)
		}
		return iv, nil, nil
	}
	var wd wireDone
	if err := json.Unmarshal(line, &wd); err != nil {
		return nil, nil, fmt.Errorf("fleet: done line: %w", err)
	}
	if wd.V != 1 {
		return nil, nil, fmt.Errorf("fleet: done line version %d, want 1", wd.V)
	}
	total, err := stats.DecodeInterval(wd.Total)
	if err != nil {
		return nil, nil, fmt.Errorf("fleet: done line: %w", err)
	}
	return nil, &Done{Total: total, RampS: wd.RampS, Samples: wd.Samples}, nil
}

// readStream reads a worker's stdout until EOF, handing each Interval and the
// Done line to the callbacks. A line that is not a JSON object is something
// else printing on stdout (a library's log line, a panic): it goes to onText
// and the stream goes on. A JSON line that does not decode ends the stream
// with an error: the worker is not speaking this protocol.
func readStream(r io.Reader, onInterval func(*stats.Interval), onDone func(*Done), onText func(string)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := readLine(br)
		if len(line) > 0 && line[0] != '{' {
			onText(string(line))
			line = nil
		}
		if len(line) > 0 {
			iv, d, derr := decodeLine(line)
			switch {
			case derr != nil:
				return derr
			case iv != nil:
				onInterval(iv)
			default:
				onDone(d)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

var errLineTooLong = errors.New("fleet: stream line longer than stats.MaxWireLine")

// readLine returns the next line without its newline. A last line without
// newline is a worker killed mid-write: it is dropped, since only whole
// lines are data.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > stats.MaxWireLine+1 {
			return nil, errLineTooLong
		}
		switch {
		case err == nil:
			return bytes.TrimSpace(line), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			return nil, io.EOF // a partial last line is not data
		default:
			return nil, fmt.Errorf("fleet: reading worker stream: %w", err)
		}
	}
}
