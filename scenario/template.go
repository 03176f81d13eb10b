package scenario

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"
)

// Vars is what a template reads when it is expanded: the per-connection and
// per-message state the engine keeps. The engine owns one Vars per
// connection and updates its fields in place, so expanding a template does
// not allocate.
type Vars struct {
	Conn     uint64     // connection number, unique in the run
	Seq      uint64     // sequence number of the message being sent on this connection
	Now      time.Time  // the send time (for a paced send: its scheduled time)
	Rand     *rand.Rand // per connection or per event loop; nil uses the global source
	Row      []string   // this connection's CSV row (Data.Row), nil without a data file
	Captured []string   // captured values, indexed like Flow.Vars; "" until captured
}

func (v *Vars) uint64() uint64 {
	if v.Rand != nil {
		return v.Rand.Uint64()
	}
	return rand.Uint64()
}

func (v *Vars) uint64n(n uint64) uint64 {
	if v.Rand != nil {
		return v.Rand.Uint64N(n)
	}
	return rand.Uint64N(n)
}

// Template is a payload or header value compiled once into literal parts and
// placeholders (see the package comment for the syntax). Environment
// variables are resolved at compile time; everything else at Append.
type Template struct {
	src   string
	parts []part
}

type partKind uint8

const (
	partLit partKind = iota
	partConn
	partSeq
	partNowMS
	partNowNS
	partNowRFC3339
	partRandInt
	partRandStr
	partUUID
	partRow
	partVar
)

type part struct {
	kind partKind
	json bool   // escape the expanded value for a JSON string
	lit  []byte // partLit
	a, b int64  // rand.int bounds; rand.str length; row column or var slot in a
}

// numeric reports whether the part always expands to a JSON number.
func (p part) numeric() bool {
	switch p.kind {
	case partConn, partSeq, partNowMS, partNowNS, partRandInt:
		return true
	}
	return false
}

// String returns the template's source text, with environment variables
// unresolved, so printing a plan does not reveal secrets.
func (t *Template) String() string { return t.src }

// Static returns the expansion of a template that has no placeholders.
func (t *Template) Static() ([]byte, bool) {
	switch {
	case len(t.parts) == 0:
		return []byte{}, true
	case len(t.parts) == 1 && t.parts[0].kind == partLit:
		return t.parts[0].lit, true
	}
	return nil, false
}

// Append appends the template's expansion for v to dst. It does not allocate
// when dst has room; v.Row and v.Captured entries out of range expand to "".
func (t *Template) Append(dst []byte, v *Vars) []byte {
	for i := range t.parts {
		p := &t.parts[i]
		switch p.kind {
		case partLit:
			dst = append(dst, p.lit...)
		case partConn:
			dst = strconv.AppendUint(dst, v.Conn, 10)
		case partSeq:
			dst = strconv.AppendUint(dst, v.Seq, 10)
		case partNowMS:
			dst = strconv.AppendInt(dst, v.Now.UnixMilli(), 10)
		case partNowNS:
			dst = strconv.AppendInt(dst, v.Now.UnixNano(), 10)
		case partNowRFC3339:
			dst = v.Now.UTC().AppendFormat(dst, rfc3339Milli)
		case partRandInt:
			dst = strconv.AppendInt(dst, p.a+int64(v.uint64n(uint64(p.b-p.a)+1)), 10)
		case partRandStr:
			for n := p.a; n > 0; {
				r := v.uint64()
				// 10 characters from one 64-bit draw (62^10 < 2^60).
				for k := 0; k < 10 && n > 0; k, n = k+1, n-1 {
					dst = append(dst, alnum[r%62])
					r /= 62
				}
			}
		case partUUID:
			dst = appendUUID(dst, v.uint64(), v.uint64())
		case partRow:
			if int(p.a) < len(v.Row) {
				dst = appendMaybeJSON(dst, v.Row[p.a], p.json)
			}
		case partVar:
			if int(p.a) < len(v.Captured) {
				dst = appendMaybeJSON(dst, v.Captured[p.a], p.json)
			}
		}
	}
	return dst
}

const (
	alnum        = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	rfc3339Milli = "2006-01-02T15:04:05.000Z07:00"
	maxRandStr   = 1 << 20
)

// appendUUID appends a random (version 4, RFC 9562) UUID in its text form.
func appendUUID(dst []byte, hi, lo uint64) []byte {
	hi = hi&^(0xf<<12) | 4<<12   // version 4
	lo = lo&^(0x3<<62) | 0x2<<62 // variant 10
	for i := 60; i >= 0; i -= 4 {
		if i == 28 || i == 12 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[(hi>>uint(i))&0xf])
	}
	for i := 60; i >= 0; i -= 4 {
		if i == 44 {
			dst = append(dst, '-')
		}
		if i == 60 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[(lo>>uint(i))&0xf])
	}
	return dst
}

func appendMaybeJSON(dst []byte, s string, escape bool) []byte {
	if !escape {
		return append(dst, s...)
	}
	return appendJSONEscaped(dst, s)
}

// appendJSONEscaped appends s escaped for the inside of a JSON string.
func appendJSONEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// TemplateScope is what a template may refer to besides the built-ins.
type TemplateScope struct {
	Columns   []string                    // CSV columns, for ${row.NAME}
	Vars      []string                    // captured variables defined so far, for ${var.NAME}; the slot is the index
	LookupEnv func(string) (string, bool) // nil means os.LookupEnv
	NoVars    string                      // when set, ${var.…} is refused with this reason (e.g. in headers)
}

// CompileTemplate compiles src once, for many Appends. Errors say which
// placeholder is wrong and how to fix it.
func CompileTemplate(src string, scope TemplateScope) (*Template, error) {
	t, msg, hint := compileTemplate(src, &scope, false)
	if msg != "" {
		e := "scenario: template " + strconv.Quote(src) + ": " + msg
		if hint != "" {
			e += " (hint: " + hint + ")"
		}
		return nil, fmt.Errorf("%s", e)
	}
	return t, nil
}

// compileTemplate returns the template or a message and a hint. With json
// set, expanded values of row and var placeholders, and the literal text,
// are escaped for the inside of a JSON string.
func compileTemplate(src string, scope *TemplateScope, json bool) (*Template, string, string) {
	t := &Template{src: src}
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			t.parts = append(t.parts, part{kind: partLit, lit: lit})
			lit = nil
		}
	}
	addLit := func(s string) {
		if json {
			lit = appendJSONEscaped(lit, s)
		} else {
			lit = append(lit, s...)
		}
	}
	for i := 0; i < len(src); {
		j := strings.IndexByte(src[i:], '$')
		if j < 0 {
			addLit(src[i:])
			break
		}
		addLit(src[i : i+j])
		i += j
		switch {
		case strings.HasPrefix(src[i:], "$$"):
			addLit("$")
			i += 2
			continue
		case !strings.HasPrefix(src[i:], "${"):
			addLit("$")
			i++
			continue
		}
		end := strings.IndexByte(src[i:], '}')
		if end < 0 {
			return nil, fmt.Sprintf("unclosed placeholder %q", truncate(src[i:], 30)), "close it with }, or write $$ for a literal $"
		}
		body := src[i+2 : i+end]
		p, msg, hint := compilePlaceholder(body, scope)
		if msg != "" {
			return nil, msg, hint
		}
		if p.kind == partLit {
			addLit(string(p.lit))
		} else {
			flush()
			p.json = json
			t.parts = append(t.parts, p)
		}
		i += end + 1
	}
	flush()
	return t, "", ""
}

var builtinPlaceholders = []string{"conn", "seq", "now.ms", "now.ns", "now.rfc3339", "rand.int", "rand.str", "uuid", "env.", "row.", "var."}

func compilePlaceholder(body string, scope *TemplateScope) (part, string, string) {
	fields := strings.Fields(body)
	if len(fields) == 0 {
		return part{}, "empty placeholder ${}", "use e.g. ${conn}, ${seq}, ${now.ms}, ${uuid}, ${env.NAME}, ${row.COLUMN} or ${var.NAME}"
	}
	name, args := fields[0], fields[1:]
	noArgs := func(k partKind) (part, string, string) {
		if len(args) > 0 {
			return part{}, fmt.Sprintf("${%s} takes no arguments, got %q", name, strings.Join(args, " ")), ""
		}
		return part{kind: k}, "", ""
	}
	switch name {
	case "conn":
		return noArgs(partConn)
	case "seq":
		return noArgs(partSeq)
	case "now.ms":
		return noArgs(partNowMS)
	case "now.ns":
		return noArgs(partNowNS)
	case "now.rfc3339":
		return noArgs(partNowRFC3339)
	case "uuid":
		return noArgs(partUUID)
	case "rand.int":
		if len(args) != 2 {
			return part{}, fmt.Sprintf("${rand.int} needs two bounds, got %q", body), "write ${rand.int 1 100} for a number from 1 to 100"
		}
		a, err1 := strconv.ParseInt(args[0], 10, 64)
		b, err2 := strconv.ParseInt(args[1], 10, 64)
		if err1 != nil || err2 != nil {
			return part{}, fmt.Sprintf("${rand.int}: bounds must be integers, got %q", body), "write ${rand.int 1 100}"
		}
		if a > b || b-a < 0 || b-a == 1<<63-1 {
			return part{}, fmt.Sprintf("${rand.int %d %d}: the range is empty or too wide", a, b), "the first bound must not exceed the second"
		}
		return part{kind: partRandInt, a: a, b: b}, "", ""
	case "rand.str":
		if len(args) != 1 {
			return part{}, fmt.Sprintf("${rand.str} needs a length, got %q", body), "write ${rand.str 16}"
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 || n > maxRandStr {
			return part{}, fmt.Sprintf("${rand.str}: length must be 1 to %d, got %q", maxRandStr, args[0]), "write ${rand.str 16}"
		}
		return part{kind: partRandStr, a: int64(n)}, "", ""
	}
	if len(args) > 0 {
		return part{}, fmt.Sprintf("unknown placeholder ${%s}", body), placeholderHint(name)
	}
	switch {
	case strings.HasPrefix(name, "row."):
		col := name[len("row."):]
		if len(scope.Columns) == 0 {
			return part{}, fmt.Sprintf("${%s}: no data file", name), "add `data: users.csv` (a CSV file with a header row) to the scenario"
		}
		for i, c := range scope.Columns {
			if c == col {
				return part{kind: partRow, a: int64(i)}, "", ""
			}
		}
		hint := "the data file's columns are " + strings.Join(scope.Columns, ", ")
		if s := suggest(col, scope.Columns); s != "" {
			hint = "did you mean ${row." + s + "}?"
		}
		return part{}, fmt.Sprintf("${%s}: the data file has no column %q", name, col), hint
	case strings.HasPrefix(name, "var."):
		v := name[len("var."):]
		if scope.NoVars != "" {
			return part{}, fmt.Sprintf("${%s} cannot be used here: %s", name, scope.NoVars), ""
		}
		for i, c := range scope.Vars {
			if c == v {
				return part{kind: partVar, a: int64(i)}, "", ""
			}
		}
		hint := "capture it in an earlier step of the same flow: capture: {" + v + ": {json: PATH}}"
		if s := suggest(v, scope.Vars); s != "" {
			hint = "did you mean ${var." + s + "}?"
		}
		return part{}, fmt.Sprintf("undefined variable ${%s}", name), hint
	}
	env := strings.TrimPrefix(name, "env.")
	if !validName(env) {
		return part{}, fmt.Sprintf("unknown placeholder ${%s}", name), placeholderHint(name)
	}
	lookup := scope.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	val, ok := lookup(env)
	if !ok {
		hint := "export " + env + "=… before running wsload"
		if name == env {
			if s := suggest(name, builtinPlaceholders); s != "" && !strings.HasSuffix(s, ".") {
				hint = "did you mean ${" + s + "}? Or export " + env + "=… before running wsload"
			}
		}
		return part{}, fmt.Sprintf("undefined environment variable ${%s}", name), hint
	}
	return part{kind: partLit, lit: []byte(val)}, "", ""
}

func placeholderHint(name string) string {
	if s := suggest(name, builtinPlaceholders); s != "" && !strings.HasSuffix(s, ".") {
		return "did you mean ${" + s + "}?"
	}
	return "known placeholders: ${conn} ${seq} ${now.ms} ${now.ns} ${now.rfc3339} ${rand.int A B} ${rand.str N} ${uuid} ${env.NAME} ${row.COLUMN} ${var.NAME}"
}

// validName reports whether s is an identifier: a letter or _, then letters,
// digits or _.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
