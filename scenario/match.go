package scenario

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
)

// Matcher decides whether an incoming message is the one an expect step
// waits for. All of its set conditions must hold; a zero Matcher matches any
// message.
type Matcher struct {
	Contains []byte         // the message contains these bytes; nil: no condition
	Regex    *regexp.Regexp // the message matches; nil: no condition
	JSON     []Condition    // the message is JSON and every condition holds
	Stamped  bool           // the message carries a fan-out stamp (see ParseStamp)
}

// Match reports whether msg satisfies every condition. It reads msg only and
// does not keep it. JSON conditions walk the raw bytes without decoding the
// whole document, so matching does not allocate for ordinary messages.
func (m *Matcher) Match(msg []byte) bool {
	if m.Contains != nil && !bytes.Contains(msg, m.Contains) {
		return false
	}
	if m.Stamped {
		if _, ok := ParseStamp(msg); !ok {
			return false
		}
	}
	for i := range m.JSON {
		if !m.JSON[i].Holds(msg) {
			return false
		}
	}
	if m.Regex != nil && !m.Regex.Match(msg) {
		return false
	}
	return true
}

// Op is a comparison in a JSON condition.
type Op uint8

// The comparisons. Ordering comparisons apply to two numbers or two strings
// (byte order); a value of another type never satisfies them.
const (
	OpEq     Op = iota + 1 // equal value and type
	OpNe                   // not OpEq (also true when the path is absent)
	OpLt                   // <
	OpLe                   // <=
	OpGt                   // >
	OpGe                   // >=
	OpExists               // the path is present (a null value counts as present)
	OpAbsent               // the path is not present
)

var opNames = map[Op]string{OpEq: "==", OpNe: "!=", OpLt: "<", OpLe: "<=", OpGt: ">", OpGe: ">=", OpExists: "exists", OpAbsent: "absent"}

func (o Op) String() string { return opNames[o] }

// Condition is one test on a JSON message: the value at a dotted Path
// ("data.room.id", "items.0.id": a number indexes an array) compared with
// Value.
type Condition struct {
	Path  string
	Op    Op
	Value any // string, float64, bool or nil (JSON null); unused by OpExists and OpAbsent

	path []string
}

// NewCondition builds a condition; Path is split on dots.
func NewCondition(path string, op Op, value any) Condition {
	return Condition{Path: path, Op: op, Value: value, path: splitPath(path)}
}

func splitPath(p string) []string {
	if p == "" {
		return nil
	}
	return strings.Split(p, ".")
}

func (c *Condition) String() string {
	switch c.Op {
	case OpExists, OpAbsent:
		return c.Path + " " + c.Op.String()
	}
	v, _ := json.Marshal(c.Value)
	return c.Path + " " + c.Op.String() + " " + string(v)
}

// Holds reports whether the condition is true of the JSON document msg. A
// message that is not JSON holds no condition but OpNe and OpAbsent.
func (c *Condition) Holds(msg []byte) bool {
	path := c.path
	if path == nil && c.Path != "" {
		path = splitPath(c.Path) // a Condition built without NewCondition
	}
	raw, found := jsonLookup(msg, path)
	switch c.Op {
	case OpExists:
		return found
	case OpAbsent:
		return !found
	case OpNe:
		return !found || !jsonEqual(raw, c.Value)
	case OpEq:
		return found && jsonEqual(raw, c.Value)
	}
	if !found {
		return false
	}
	cmp, ok := jsonCompare(raw, c.Value)
	if !ok {
		return false
	}
	switch c.Op {
	case OpLt:
		return cmp < 0
	case OpLe:
		return cmp <= 0
	case OpGt:
		return cmp > 0
	case OpGe:
		return cmp >= 0
	}
	return false
}

func jsonEqual(raw []byte, want any) bool {
	switch w := want.(type) {
	case nil:
		return string(raw) == "null"
	case bool:
		if w {
			return string(raw) == "true"
		}
		return string(raw) == "false"
	case string:
		return raw[0] == '"' && jsonStringEqual(raw, w)
	case float64:
		f, ok := jsonNumber(raw)
		return ok && f == w
	}
	return false
}

// jsonCompare orders raw against want: numbers numerically, strings by bytes.
func jsonCompare(raw []byte, want any) (int, bool) {
	switch w := want.(type) {
	case float64:
		f, ok := jsonNumber(raw)
		if !ok {
			return 0, false
		}
		switch {
		case f < w:
			return -1, true
		case f > w:
			return 1, true
		}
		return 0, true
	case string:
		if raw[0] != '"' {
			return 0, false
		}
		s, ok := jsonStringValue(raw)
		if !ok {
			return 0, false
		}
		return strings.Compare(s, w), true
	}
	return 0, false
}

func jsonNumber(raw []byte) (float64, bool) {
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	return f, err == nil
}

// jsonStringEqual compares the JSON string literal raw (quotes included)
// with s; without escapes in raw it does not allocate.
func jsonStringEqual(raw []byte, s string) bool {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner) == s
	}
	v, ok := jsonStringValue(raw)
	return ok && v == s
}

func jsonStringValue(raw []byte) (string, bool) {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// Capture takes a value out of a message into a flow variable: the first
// match of Regex (its group Group), or the value at JSONPath.
type Capture struct {
	Var      string // variable name, used as ${var.NAME}
	Slot     int    // index into Vars.Captured (and Flow.Vars)
	Regex    *regexp.Regexp
	Group    int
	JSONPath string
	Pos      Pos

	path []string
}

// Extract returns the captured value. A JSON string gives its unescaped
// text; a number, boolean or null its literal; an object or array its JSON
// text. ok is false when the message does not contain the value.
func (c *Capture) Extract(msg []byte) (string, bool) {
	if c.Regex != nil {
		m := c.Regex.FindSubmatchIndex(msg)
		if m == nil || 2*c.Group+1 >= len(m) || m[2*c.Group] < 0 {
			return "", false
		}
		return string(msg[m[2*c.Group]:m[2*c.Group+1]]), true
	}
	path := c.path
	if path == nil && c.JSONPath != "" {
		path = splitPath(c.JSONPath) // a Capture built by hand
	}
	raw, ok := jsonLookup(msg, path)
	if !ok {
		return "", false
	}
	if raw[0] == '"' {
		return jsonStringValue(raw)
	}
	return string(raw), true
}

// jsonLookup returns the raw JSON value at path in doc (whitespace trimmed).
// A path element indexes an object by key (the last of duplicate keys wins,
// as in encoding/json) or an array by a decimal index. It scans without
// allocating and does not check the parts of doc it skips, so it is only as
// strict as finding the value requires.
func jsonLookup(doc []byte, path []string) ([]byte, bool) {
	i := skipWS(doc, 0)
	for _, elem := range path {
		if i >= len(doc) {
			return nil, false
		}
		switch doc[i] {
		case '{':
			found := -1
			i = skipWS(doc, i+1)
			if i < len(doc) && doc[i] == '}' {
				return nil, false
			}
			for {
				if i >= len(doc) || doc[i] != '"' {
					return nil, false
				}
				kend, ok := skipString(doc, i)
				if !ok {
					return nil, false
				}
				key := doc[i:kend]
				i = skipWS(doc, kend)
				if i >= len(doc) || doc[i] != ':' {
					return nil, false
				}
				i = skipWS(doc, i+1)
				if jsonStringEqual(key, elem) {
					found = i
				}
				vend, ok := skipValue(doc, i)
				if !ok {
					return nil, false
				}
				i = skipWS(doc, vend)
				if i < len(doc) && doc[i] == ',' {
					i = skipWS(doc, i+1)
					continue
				}
				if i < len(doc) && doc[i] == '}' {
					break
				}
				return nil, false
			}
			if found < 0 {
				return nil, false
			}
			i = found
		case '[':
			idx, err := strconv.Atoi(elem)
			if err != nil || idx < 0 || elem[0] == '+' {
				return nil, false
			}
			i = skipWS(doc, i+1)
			if i < len(doc) && doc[i] == ']' {
				return nil, false
			}
			for n := 0; ; n++ {
				if n == idx {
					break
				}
				vend, ok := skipValue(doc, i)
				if !ok {
					return nil, false
				}
				i = skipWS(doc, vend)
				if i >= len(doc) || doc[i] != ',' {
					return nil, false
				}
				i = skipWS(doc, i+1)
			}
		default:
			return nil, false
		}
	}
	end, ok := skipValue(doc, i)
	if !ok {
		return nil, false
	}
	if len(path) == 0 && skipWS(doc, end) != len(doc) {
		return nil, false
	}
	return doc[i:end], true
}

func skipWS(doc []byte, i int) int {
	for i < len(doc) && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\n' || doc[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the JSON string starting at doc[i].
func skipString(doc []byte, i int) (int, bool) {
	for j := i + 1; j < len(doc); j++ {
		switch doc[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}

// skipValue returns the index after the JSON value starting at doc[i].
// Objects and arrays are skipped by counting brackets outside strings, so
// deep nesting costs no stack.
func skipValue(doc []byte, i int) (int, bool) {
	if i >= len(doc) {
		return 0, false
	}
	switch c := doc[i]; {
	case c == '"':
		return skipString(doc, i)
	case c == '{' || c == '[':
		depth := 0
		for j := i; j < len(doc); j++ {
			switch doc[j] {
			case '"':
				end, ok := skipString(doc, j)
				if !ok {
					return 0, false
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	case c == '-' || c >= '0' && c <= '9':
		j := i + 1
		for j < len(doc) && strings.IndexByte("0123456789.eE+-", doc[j]) >= 0 {
			j++
		}
		return j, true
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if bytes.HasPrefix(doc[i:], []byte(lit)) {
				return i + len(lit), true
			}
		}
	}
	return 0, false
}
