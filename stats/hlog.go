package stats

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/wsload/wsload/internal/atomicfile"
)

// The HdrHistogram interval log (.hlog) is the format HdrHistogram's own
// tools (HistogramLogProcessor, HdrHistogram plotters, hdrhistogram-go's
// HistogramLogReader) read: one line per interval and tag,
//
//	#[Histogram log format version 1.3]
//	#[StartTime: 1735787045.600 (seconds since epoch), 2025-01-02T03:04:05.6Z]
//	"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//	Tag=rtt,0.000,1.000,1.210,HISTFAAAA…
//
// Timestamps are seconds relative to StartTime (readers take a timestamp
// more than a year before StartTime as relative). Histogram values are
// wsload's microseconds; Interval_Max is in milliseconds (max/1000), the
// convention of HdrHistogram's tools, which print maxima in ms.
//
// hdrhistogram-go's HistogramLogWriter is not used: it divides the max by
// 1e6 (it assumes nanoseconds) with no way to change the ratio (the options
// type has no exported setter), takes times and tags from mutable fields of
// the histogram, and its tag check misses a comma at either end of the tag.

// Hlog tags WriteInterval writes, one line each per non-empty interval.
const (
	HlogTagRTT            = "rtt"
	HlogTagRTTUncorrected = "rtt_uncorrected"
	HlogTagHandshake      = "handshake"
)

const hlogVersion = "1.3"

// hlogLegend is the column header line of the format.
const hlogLegend = `"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"`

// HlogWriter writes an HdrHistogram interval log. It is safe for concurrent
// use. The first write error sticks: later writes return it without writing,
// and Close returns it, so a hook can ignore WriteInterval's error and check
// Close once.
type HlogWriter struct {
	mu    sync.Mutex
	w     io.Writer
	out   *atomicfile.File // the file CreateHlog opened: published by Close
	start time.Time
	buf   []byte
	err   error
}

// NewHlogWriter writes the log header to w and returns a writer whose
// interval timestamps are relative to start (the run's start).
func NewHlogWriter(w io.Writer, start time.Time) (*HlogWriter, error) {
	if start.Before(time.Unix(0, 0)) {
		// The format's timestamps are unsigned seconds since the epoch.
		return nil, fmt.Errorf("stats: hlog: start %s is before 1970", start.UTC().Format(time.RFC3339))
	}
	hw := &HlogWriter{w: w, start: start}
	ms := start.UnixMilli()
	// StartTime is written with three decimals, as HdrHistogram's Java
	// writer does.
	hw.buf = fmt.Appendf(hw.buf, "#[Histogram log format version %s]\n#[StartTime: %d.%03d (seconds since epoch), %s]\n"+
		"# wsload: values in microseconds; Interval_Max in milliseconds; tags %s, %s, %s\n%s\n",
		hlogVersion, ms/1000, ms%1000, start.UTC().Format(time.RFC3339Nano),
		HlogTagRTT, HlogTagRTTUncorrected, HlogTagHandshake, hlogLegend)
	if err := hw.flush(); err != nil {
		return nil, err
	}
	return hw, nil
}

// CreateHlog starts the log for path and writes its header. The log appears at path, replacing
// what was there, when Close succeeds (atomically for a regular file; a device or FIFO is
// written through as the run goes): a failed run never leaves half a log over an old one.
func CreateHlog(path string, start time.Time) (*HlogWriter, error) {
	f, err := atomicfile.Create(path)
	if err != nil {
		return nil, fmt.Errorf("stats: hlog: %w", err)
	}
	hw, err := NewHlogWriter(f, start)
	if err != nil {
		f.Abort()
		return nil, err
	}
	hw.out = f
	return hw, nil
}

// WriteInterval writes iv's corrected RTT, uncorrected RTT and handshake
// histograms, tagged HlogTag*, skipping empty ones, so the log can serve as
// the engine's interval sink. A nil writer writes nothing, which lets a
// caller call it unconditionally.
func (w *HlogWriter) WriteInterval(iv *Interval) error {
	if w == nil || iv == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	for _, t := range []struct {
		tag string
		h   *hdrhistogram.Histogram
	}{
		{HlogTagRTT, iv.RTT},
		{HlogTagRTTUncorrected, iv.RTTUncorrected},
		{HlogTagHandshake, iv.Handshake},
	} {
		if count(t.h) == 0 {
			continue
		}
		payload, err := t.h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
		if err != nil {
			w.err = fmt.Errorf("stats: hlog: encoding %s histogram: %w", t.tag, err)
			return w.err
		}
		w.appendLine(t.tag, iv.Start, iv.Len(), float64(t.h.Max())/1000, payload)
	}
	return w.flush()
}

// WriteHlogInterval writes one interval read by ReadHlog or made by
// MergeHlogs. Its Start is placed relative to the writer's start.
func (w *HlogWriter) WriteHlogInterval(iv *HlogInterval) error {
	if w == nil || iv == nil {
		return nil
	}
	if err := checkTag(iv.Tag); err != nil {
		return err
	}
	payload, err := iv.Hist.Encode()
	if err != nil {
		return fmt.Errorf("stats: hlog: encoding %s histogram: %w", iv.Tag, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.appendLine(iv.Tag, iv.Start, secondsToDuration(iv.LengthS), iv.MaxMS, payload)
	return w.flush()
}

// Close returns the first write error, if any, and closes the file
// CreateHlog opened. A nil writer returns nil.
func (w *HlogWriter) Close() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.err
	if w.out != nil {
		if err != nil {
			w.out.Abort()
		} else if cerr := w.out.Commit(); cerr != nil {
			err = fmt.Errorf("stats: hlog: %w", cerr)
		}
		w.out = nil
	}
	if err == nil {
		w.err = errors.New("stats: hlog: writer is closed")
	}
	return err
}

func (w *HlogWriter) appendLine(tag string, start time.Time, length time.Duration, maxMS float64, payload []byte) {
	off := max(start.Sub(w.start), 0) // the reader's number syntax has no sign
	if tag != "" {
		w.buf = append(w.buf, "Tag="...)
		w.buf = append(w.buf, tag...)
		w.buf = append(w.buf, ',')
	}
	w.buf = strconv.AppendFloat(w.buf, off.Seconds(), 'f', 3, 64)
	w.buf = append(w.buf, ',')
	w.buf = strconv.AppendFloat(w.buf, max(length, 0).Seconds(), 'f', 3, 64)
	w.buf = append(w.buf, ',')
	w.buf = strconv.AppendFloat(w.buf, max(maxMS, 0), 'f', 3, 64)
	w.buf = append(w.buf, ',')
	w.buf = append(w.buf, payload...)
	w.buf = append(w.buf, '\n')
}

// flush writes the buffered lines in one Write, so a reader never sees half
// an interval; w.mu is held or w is not shared yet.
func (w *HlogWriter) flush() error {
	_, err := w.w.Write(w.buf)
	w.buf = w.buf[:0]
	if err != nil {
		w.err = fmt.Errorf("stats: hlog: writing: %w", err)
	}
	return w.err
}

func checkTag(tag string) error {
	if strings.ContainsAny(tag, ", \t\r\n") {
		return fmt.Errorf("stats: hlog: tag %q: a tag cannot contain commas, spaces or line breaks", tag)
	}
	return nil
}

// Hlog is an interval log as ReadHlog parsed it.
type Hlog struct {
	// Start is the log's StartTime, or the first interval's start when the
	// log has none.
	Start     time.Time
	Intervals []HlogInterval
}

// HlogInterval is one line of an interval log.
type HlogInterval struct {
	Tag     string    // "" when the line has none
	Start   time.Time // absolute start of the interval
	LengthS float64   // Interval_Length, seconds
	MaxMS   float64   // Interval_Max as written (ms by convention)
	// Hist holds the counts sparsely: its memory grows with the populated
	// buckets only, whatever range the writer declared.
	Hist *hdrhistogram.PackedHistogram
}

// Histogram returns the interval's histogram with wsload's geometry, values
// taken as microseconds, and how many samples lay above HighestUS and were
// recorded at it. Logs of other tools are commonly in nanoseconds: their
// values come out 1000 times too large.
func (iv *HlogInterval) Histogram() (h *hdrhistogram.Histogram, clamped int64) {
	h = NewHistogram()
	return h, mergePacked(h, iv.Hist)
}

// mergePacked adds p into dst, recording values beyond dst's range at its
// highest value (see mergeHist), and returns how many were.
func mergePacked(dst *hdrhistogram.Histogram, p *hdrhistogram.PackedHistogram) (clamped int64) {
	if p == nil || p.MergeInto(dst) == 0 {
		return 0
	}
	for v, c := range p.ForEachBucket {
		if dst.RecordValues(v, 0) == nil {
			continue
		}
		if dst.RecordValues(dst.HighestTrackableValue(), c) == nil {
			clamped += c
		}
	}
	return clamped
}

// maxHlogLine bounds one line: a wsload histogram encodes to a few KB, a
// dense foreign one to well under a MB.
const maxHlogLine = 4 << 20

// ReadHlog parses an HdrHistogram interval log, as HdrHistogram's tools and
// HlogWriter write it: comments (#), the StartTime and BaseTime headers, the
// legend, and interval lines with an optional Tag=. Timestamps follow the
// format's rule: relative to BaseTime when given, else relative to StartTime
// when more than a year before it, else absolute. Errors name the line. It
// never panics on bad input.
func ReadHlog(r io.Reader) (*Hlog, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxHlogLine)
	var (
		startSec, baseSec float64
		haveStart         bool
		haveBase          bool
		out               = &Hlog{}
		line              int
	)
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		bad := func(format string, a ...any) error {
			return fmt.Errorf("stats: hlog line %d: %s", line, fmt.Sprintf(format, a...))
		}
		switch {
		case strings.TrimSpace(text) == "", strings.HasPrefix(text, `"StartTimestamp"`):
			continue
		case strings.HasPrefix(text, "#[StartTime:"):
			v, err := headerSeconds(text, "#[StartTime:")
			if err != nil {
				return nil, bad("StartTime: %v", err)
			}
			startSec, haveStart = v, true
			continue
		case strings.HasPrefix(text, "#[BaseTime:"):
			v, err := headerSeconds(text, "#[BaseTime:")
			if err != nil {
				return nil, bad("BaseTime: %v", err)
			}
			baseSec, haveBase = v, true
			continue
		case strings.HasPrefix(text, "#"):
			continue
		}
		var iv HlogInterval
		if rest, ok := strings.CutPrefix(text, "Tag="); ok {
			tag, rest, ok := strings.Cut(rest, ",")
			if !ok {
				return nil, bad("Tag= without the interval after it")
			}
			iv.Tag, text = tag, rest
		}
		f := strings.SplitN(text, ",", 4)
		if len(f) != 4 {
			return nil, bad("want StartTimestamp,Interval_Length,Interval_Max,Interval_Compressed_Histogram, got %d fields", len(f))
		}
		var nums [3]float64
		for i, name := range []string{"StartTimestamp", "Interval_Length", "Interval_Max"} {
			v, err := strconv.ParseFloat(strings.TrimSpace(f[i]), 64)
			if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) || v > 1e12 {
				return nil, bad("%s %q is not a non-negative number of seconds", name, f[i])
			}
			nums[i] = v
		}
		ts := nums[0]
		iv.LengthS, iv.MaxMS = nums[1], nums[2]
		p, err := hdrhistogram.DecodePacked([]byte(strings.TrimSpace(f[3])))
		if err != nil {
			return nil, bad("histogram: %v", err)
		}
		iv.Hist = p
		if !haveStart {
			startSec, haveStart = ts, true
		}
		if !haveBase {
			// The format's rule: a timestamp more than a year before
			// StartTime is relative to it.
			if ts < startSec-365*24*3600 {
				baseSec = startSec
			}
			haveBase = true
		}
		iv.Start = unixSeconds(baseSec + ts)
		out.Intervals = append(out.Intervals, iv)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("stats: hlog line %d: %w", line+1, err)
	}
	if haveStart {
		out.Start = unixSeconds(startSec)
	}
	return out, nil
}

// headerSeconds parses the seconds after prefix in "#[StartTime: 123.456 …".
func headerSeconds(line, prefix string) (float64, error) {
	rest := strings.TrimSpace(strings.TrimPrefix(line, prefix))
	end := strings.IndexFunc(rest, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end >= 0 {
		rest = rest[:end]
	}
	v, err := strconv.ParseFloat(rest, 64)
	if err != nil || v > 1e12 {
		return 0, fmt.Errorf("want seconds since the epoch, got %q", rest)
	}
	return v, nil
}

// unixSeconds converts seconds since the epoch to a time, to the µs: the
// format's three decimals are ms, and a float64 of ~1.7e9 s holds µs exactly
// enough.
func unixSeconds(s float64) time.Time {
	return time.UnixMicro(int64(math.Round(s * 1e6))).UTC()
}

// MergeHlogs merges interval logs of processes that made one load together
// (the .hlog files of `wsload run --hlog` for each segment): intervals of the
// same tag are added together when they ended in the same wall-clock second,
// the alignment Merge uses for timelines. Counts add up exactly, so each
// merged second's percentiles are exact. A merged interval starts at the
// earliest of its parts and is as long as the longest part (a log
// contributing two partial intervals to a second counts their sum); its
// Interval_Max is the highest of the parts'. Values beyond wsload's range are
// recorded at its bounds and counted in clamped. The merged log starts at
// the earliest log's start; intervals are ordered by start, then tag.
func MergeHlogs(logs ...*Hlog) (merged *Hlog, clamped int64) {
	type key struct {
		tag string
		sec int64
	}
	type acc struct {
		iv   HlogInterval
		lens map[int]float64 // by log
	}
	buckets := map[key]*acc{}
	merged = &Hlog{}
	for li, l := range logs {
		if l == nil {
			continue
		}
		if merged.Start.IsZero() || (!l.Start.IsZero() && l.Start.Before(merged.Start)) {
			merged.Start = l.Start
		}
		for _, iv := range l.Intervals {
			end := iv.Start.Add(time.Duration(math.Round(iv.LengthS*1e3)) * time.Millisecond)
			k := key{iv.Tag, end.Unix()}
			a := buckets[k]
			if a == nil {
				a = &acc{iv: HlogInterval{Tag: iv.Tag, Start: iv.Start, Hist: hdrhistogram.NewPacked(LowestUS, HighestUS, SigFigs)}, lens: map[int]float64{}}
				buckets[k] = a
			}
			if iv.Start.Before(a.iv.Start) {
				a.iv.Start = iv.Start
			}
			a.iv.MaxMS = max(a.iv.MaxMS, iv.MaxMS)
			a.lens[li] += iv.LengthS
			if iv.Hist == nil {
				continue
			}
			for v, c := range iv.Hist.ForEachBucket {
				if a.iv.Hist.RecordValues(v, c) != nil && a.iv.Hist.RecordValues(HighestUS, c) == nil {
					clamped += c
				}
			}
		}
	}
	for _, a := range buckets {
		for _, l := range a.lens {
			a.iv.LengthS = max(a.iv.LengthS, l)
		}
		merged.Intervals = append(merged.Intervals, a.iv)
	}
	slices.SortFunc(merged.Intervals, func(a, b HlogInterval) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.Tag, b.Tag)
	})
	return merged, clamped
}

// WriteHlog writes l as a complete interval log to w.
func WriteHlog(w io.Writer, l *Hlog) error {
	start := l.Start
	if start.IsZero() && len(l.Intervals) > 0 {
		start = l.Intervals[0].Start
	}
	if start.IsZero() {
		start = time.Unix(0, 0) // an empty log that said nothing of its start
	}
	var b bytes.Buffer
	hw, err := NewHlogWriter(&b, start)
	if err != nil {
		return err
	}
	for i := range l.Intervals {
		if err := hw.WriteHlogInterval(&l.Intervals[i]); err != nil {
			return err
		}
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("stats: hlog: writing: %w", err)
	}
	return nil
}
