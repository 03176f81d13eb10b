package stats

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Segment is the Index-th of Count equal shares of a load that several
// processes or machines generate together (Index counts from 1). Merge
// refuses two results of the same segment, so a share cannot be counted
// twice. The zero Segment means "not segmented".
type Segment struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// IsZero reports whether s is the zero Segment (the run was not segmented).
func (s Segment) IsZero() bool { return s == Segment{} }

// String is "2/4", or "" for the zero Segment.
func (s Segment) String() string {
	if s.IsZero() {
		return ""
	}
	return strconv.Itoa(s.Index) + "/" + strconv.Itoa(s.Count)
}

// Validate checks 1 <= Index <= Count. The zero Segment is valid.
func (s Segment) Validate() error {
	if s.IsZero() {
		return nil
	}
	if s.Count < 1 || s.Index < 1 || s.Index > s.Count {
		return fmt.Errorf("stats: segment %d/%d: want INDEX/COUNT with 1 <= INDEX <= COUNT", s.Index, s.Count)
	}
	return nil
}

// ParseSegment parses "INDEX/COUNT", e.g. "2/4". An empty string is the zero
// Segment.
func ParseSegment(s string) (Segment, error) {
	if s == "" {
		return Segment{}, nil
	}
	is, cs, ok := strings.Cut(s, "/")
	i, ierr := strconv.Atoi(strings.TrimSpace(is))
	c, cerr := strconv.Atoi(strings.TrimSpace(cs))
	if !ok || ierr != nil || cerr != nil {
		return Segment{}, fmt.Errorf("stats: segment %q: want INDEX/COUNT, e.g. 2/4", s)
	}
	seg := Segment{Index: i, Count: c}
	if err := seg.Validate(); err != nil || seg.IsZero() {
		return Segment{}, fmt.Errorf("stats: segment %q: want INDEX/COUNT with 1 <= INDEX <= COUNT, e.g. 2/4", s)
	}
	return seg, nil
}

// Source names one result that went into a merged Result.
type Source struct {
	// Name is what the merge was told to call the input (its file name for
	// `wsload merge`), or "input N".
	Name    string    `json:"name,omitempty"`
	Host    string    `json:"host,omitempty"`
	PID     int       `json:"pid,omitempty"`
	Segment string    `json:"segment,omitempty"` // Segment.String(); "" when not segmented
	Target  string    `json:"target"`
	Start   time.Time `json:"start"`
	// DurationS is the input's own measured duration.
	DurationS float64 `json:"duration_s"`
}
