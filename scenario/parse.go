package scenario

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults for values a scenario may leave out.
const (
	DefaultExpectTimeout   = 10 * time.Second
	DefaultPingTimeout     = 10 * time.Second
	DefaultCloseCode       = 1000
	DefaultReconnectMin    = 100 * time.Millisecond
	DefaultReconnectMax    = 10 * time.Second
	DefaultReconnectJitter = 0.5
)

// Limits that keep a hostile or broken file from exhausting the parser.
const (
	maxNodes       = 1 << 20 // YAML nodes visited, aliases expanded
	maxSteps       = 10000
	maxRepeatDepth = 16
	maxConnections = 1<<31 - 1
	maxPhase       = 366 * 24 * time.Hour // so that phase offsets cannot overflow
)

// Load reads and compiles a scenario file. Files it names (data, payload
// files, captures, ca_file) are relative to its directory, and payloads,
// data and captures must lie inside it (LoadWith can allow others).
func Load(path string) (*Plan, error) {
	return LoadWith(path, Options{})
}

// LoadWith is Load with options.
func LoadWith(path string, o Options) (*Plan, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	return ParseWith(path, data, o)
}

// Parse compiles a scenario (YAML, or JSON, which is YAML) named name; files
// it names are relative to name's directory, and payloads, data and
// captures must lie inside it (see Options.AllowOutsideFiles). The error,
// when not nil, is an ErrorList with every problem found, sorted by
// position. Parse never panics, whatever data holds.
func Parse(name string, data []byte) (*Plan, error) {
	return ParseWith(name, data, Options{})
}

// ParseWith is Parse with options.
func ParseWith(name string, data []byte, o Options) (*Plan, error) {
	d := &decoder{file: name, dir: filepath.Dir(name), opts: o}
	p := d.parse(data)
	if d.root != nil {
		d.root.Close()
	}
	if p != nil {
		p.Files = d.files
	}
	if len(d.errs) > 0 {
		d.errs.sort()
		return nil, d.errs
	}
	return p, nil
}

type decoder struct {
	file, dir string
	opts      Options
	root      *os.Root  // the scenario's directory, opened on the first file read
	rootErr   error     // why it could not be opened
	files     []FileRef // every file read, for Plan.Files
	errs      ErrorList
	nodes     int
	steps     int
	columns   []string

	defaultNames map[string]bool // step names made up so far, to keep them unique

	// Per flow, while its steps are decoded.
	flow       *Flow
	expectSeen bool
	open       bool // the connection is open at this point of the flow
	closedBy   Pos  // the close step that closed it
	endless    Pos  // a repeat without end before this point
}

func (d *decoder) errorf(n *yaml.Node, hint, format string, args ...any) {
	e := &Error{File: d.file, Msg: fmt.Sprintf(format, args...), Hint: hint}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	if len(d.errs) < 200 {
		d.errs = append(d.errs, e)
	}
}

func pos(n *yaml.Node) Pos { return Pos{n.Line, n.Column} }

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (d *decoder) parse(data []byte) *Plan {
	var doc yaml.Node
	if err := unmarshalYAML(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		e := &Error{File: d.file, Msg: "YAML: " + msg, Hint: "indent with spaces, and quote values containing ': ' or starting with { [ * & ! | > ' \" % @"}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Col, e.Msg = 1, "YAML: "+m[2]
		}
		d.errs = append(d.errs, e)
		return nil
	}
	if len(doc.Content) == 0 {
		d.errs = append(d.errs, &Error{File: d.file, Msg: "the scenario is empty", Hint: "start with `target: ws://127.0.0.1:8080/` and a `flows:` list"})
		return nil
	}
	root := d.deref(doc.Content[0])
	if root == nil || !d.isMap(root, "the scenario") {
		return nil
	}
	p := &Plan{File: d.file}
	f := d.fields(root, "the scenario", []string{"description", "target", "headers", "subprotocols", "tls", "compression", "data", "phases", "flows"})
	if v := f["description"]; v != nil {
		d.str(v, "description")
	}
	if v := f["target"]; v != nil {
		if s, ok := d.str(v, "target"); ok {
			if msg := checkTarget(s); msg != "" {
				d.errorf(v, "write it like ws://127.0.0.1:8080/path or wss://example.com/socket", "target %q: %s", s, msg)
			}
			p.Target = s
		}
	}
	if v := f["tls"]; v != nil && d.isMap(v, "tls") {
		tf := d.fields(v, "tls", []string{"insecure", "server_name", "ca_file"})
		if x := tf["insecure"]; x != nil {
			p.TLS.Insecure, _ = d.bool(x, "tls.insecure")
		}
		if x := tf["server_name"]; x != nil {
			p.TLS.ServerName, _ = d.str(x, "tls.server_name")
		}
		if x := tf["ca_file"]; x != nil {
			if s, ok := d.str(x, "tls.ca_file"); ok {
				// Not confined: a CA file is read to verify the target,
				// never sent to it, and often lives in /etc/ssl.
				p.TLS.CAFile, _, _ = d.readFile(x, "tls.ca_file", s, maxFileSize, false)
			}
		}
	}
	if v := f["compression"]; v != nil {
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" {
			if v.Value != "permessage-deflate" {
				d.errorf(v, "write compression: true (or permessage-deflate)", "compression %q: the one WebSocket compression is permessage-deflate", v.Value)
			}
			p.Compression = true
		} else {
			p.Compression, _ = d.bool(v, "compression")
		}
	}
	if v := f["subprotocols"]; v != nil {
		p.Subprotocols = d.strList(v, "subprotocols")
		for i, s := range p.Subprotocols {
			if !isToken(s) {
				d.errorf(d.itemNode(v, i), "a subprotocol is an HTTP token: letters, digits and !#$%&'*+-.^_`|~", "subprotocol %q is not a token", s)
			}
		}
	}
	if v := f["data"]; v != nil {
		p.Data = d.data(v)
		if p.Data != nil {
			d.columns = p.Data.Columns
		}
	}
	if v := f["headers"]; v != nil && d.isMap(v, "headers") {
		d.eachPair(v, func(k, val *yaml.Node) {
			if !isToken(k.Value) {
				d.errorf(k, "header names are HTTP tokens such as Authorization or X-Api-Key", "header name %q is not valid", k.Value)
				return
			}
			switch strings.ToLower(k.Value) {
			case "host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol":
				d.errorf(k, "wsload sets it; use subprotocols: and compression: for the negotiated ones", "header %s cannot be set", k.Value)
				return
			}
			s, ok := d.str(val, "header "+k.Value)
			if !ok {
				return
			}
			t := d.template(val, s, TemplateScope{Columns: d.columns, NoVars: "headers are sent before any message, when nothing is captured yet"}, false)
			if t != nil {
				p.Headers = append(p.Headers, Header{Name: k.Value, Value: t, Pos: pos(k)})
			}
		})
	}
	if v := f["phases"]; v != nil {
		p.Phases = d.phases(v)
	}
	if v := f["flows"]; v != nil {
		p.Flows = d.flows(v)
	} else {
		d.errorf(root, "add flows: with at least one flow, e.g. flows: [{name: echo, steps: [{send: hi}, {expect: hi}]}]", "no flows: the scenario does not say what connections do")
	}
	return p
}

// unmarshalYAML parses with the YAML library, turning a panic in it (it is
// not ours) into an error: a bad file, not a crash.
func unmarshalYAML(data []byte, doc *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: the parser failed on this file: %v", r)
		}
	}()
	return yaml.Unmarshal(data, doc)
}

// deref follows aliases and counts nodes, so an alias bomb is refused
// instead of expanded: past the budget every node reads as an empty value,
// which ends the walk. It never returns nil.
func (d *decoder) deref(n *yaml.Node) *yaml.Node {
	for depth := 0; n != nil && n.Kind == yaml.AliasNode; depth++ {
		if depth > 100 {
			n = nil
		} else {
			n = n.Alias
		}
	}
	if n == nil {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	}
	d.nodes++
	if d.nodes == maxNodes {
		d.errorf(n, "use fewer anchors and aliases", "the scenario is too large: more than %d YAML nodes once aliases are expanded", maxNodes)
	}
	if d.nodes >= maxNodes {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
	}
	return n
}

// exhausted reports whether the node budget is spent; walks stop there.
func (d *decoder) exhausted() bool { return d.nodes >= maxNodes }

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing"
		case "!!str":
			return fmt.Sprintf("the string %q", truncate(n.Value, 40))
		case "!!bool":
			return "the boolean " + n.Value
		case "!!int", "!!float":
			return "the number " + n.Value
		}
		return fmt.Sprintf("%q", truncate(n.Value, 40))
	}
	return "something else"
}

func (d *decoder) isMap(n *yaml.Node, what string) bool {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "write it as `key: value` lines indented under it", "%s: want a mapping, got %s", what, describe(n))
		return false
	}
	return true
}

func (d *decoder) isList(n *yaml.Node, what string) bool {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "write each item on its own line starting with `- `", "%s: want a list, got %s", what, describe(n))
		return false
	}
	return true
}

// eachPair calls fn for each key: value of mapping n, refusing non-string
// keys, merge keys and duplicates.
func (d *decoder) eachPair(n *yaml.Node, fn func(k, v *yaml.Node)) {
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := d.deref(n.Content[i]), d.deref(n.Content[i+1])
		if d.exhausted() {
			return
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "keys are plain words", "a key must be a string, got %s", describe(k))
			continue
		}
		if k.Tag == "!!merge" || k.Value == "<<" && k.Style == 0 {
			d.errorf(k, "repeat the keys instead", "merge keys (<<) are not supported")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, "remove one of them", "duplicate key %q (first at line %d)", k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		fn(k, v)
	}
}

// fields returns mapping n's values by key, reporting unknown keys with the
// closest known one.
func (d *decoder) fields(n *yaml.Node, what string, known []string) map[string]*yaml.Node {
	vals, _ := d.fieldsKV(n, what, known)
	return vals
}

// fieldsKV is fields that also returns the key nodes, for their positions.
func (d *decoder) fieldsKV(n *yaml.Node, what string, known []string) (vals, keys map[string]*yaml.Node) {
	vals, keys = map[string]*yaml.Node{}, map[string]*yaml.Node{}
	d.eachPair(n, func(k, v *yaml.Node) {
		for _, kn := range known {
			if k.Value == kn {
				vals[kn], keys[kn] = v, k
				return
			}
		}
		d.unknownKey(k, what, known)
	})
	return vals, keys
}

func (d *decoder) unknownKey(k *yaml.Node, what string, known []string) {
	hint := "known keys: " + strings.Join(known, ", ")
	if s := suggest(k.Value, known); s != "" {
		hint = "did you mean `" + s + "`?"
	}
	d.errorf(k, hint, "unknown key %q in %s", truncate(k.Value, 40), what)
}

func (d *decoder) itemNode(list *yaml.Node, i int) *yaml.Node {
	if list.Kind == yaml.SequenceNode && i < len(list.Content) {
		return list.Content[i]
	}
	return list
}

func (d *decoder) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		d.errorf(n, "", "%s: want a string, got %s", what, describe(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) strList(n *yaml.Node, what string) []string {
	if n.Kind == yaml.ScalarNode {
		s, ok := d.str(n, what)
		if !ok {
			return nil
		}
		return []string{s}
	}
	if !d.isList(n, what) {
		return nil
	}
	var out []string
	for _, c := range n.Content {
		if c = d.deref(c); d.exhausted() {
			return out
		}
		if s, ok := d.str(c, what); ok {
			out = append(out, s)
		}
	}
	return out
}

func (d *decoder) bool(n *yaml.Node, what string) (bool, bool) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		b, err := strconv.ParseBool(strings.ToLower(n.Value))
		if err == nil {
			return b, true
		}
	}
	d.errorf(n, "write true or false", "%s: want true or false, got %s", what, describe(n))
	return false, false
}

func (d *decoder) number(n *yaml.Node, what string) (float64, bool) {
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
		if f, ok := yamlNumber(n.Value); ok && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f, true
		}
	}
	d.errorf(n, "", "%s: want a number, got %s", what, describe(n))
	return 0, false
}

// yamlNumber reads a YAML 1.2 number: decimal, 0x hex, 0o octal, with _
// separators allowed.
func yamlNumber(s string) (float64, bool) {
	s = strings.ReplaceAll(s, "_", "")
	if i, err := strconv.ParseInt(s, 0, 64); err == nil {
		return float64(i), true
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

func (d *decoder) int(n *yaml.Node, what string, lo, hi int) (int, bool) {
	f, ok := d.number(n, what)
	if !ok {
		return 0, false
	}
	if f != math.Trunc(f) {
		d.errorf(n, "", "%s: want a whole number, got %s", what, n.Value)
		return 0, false
	}
	if f < float64(lo) || f > float64(hi) {
		d.errorf(n, "", "%s: %s is out of range %d to %d", what, n.Value, lo, hi)
		return 0, false
	}
	return int(f), true
}

func (d *decoder) duration(n *yaml.Node, what string) (time.Duration, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		d.errorf(n, "write a duration such as 5s, 250ms or 1m30s", "%s: want a duration, got %s", what, describe(n))
		return 0, false
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		hint := "write a duration such as 5s, 250ms or 1m30s"
		if _, numErr := strconv.ParseFloat(n.Value, 64); numErr == nil {
			hint = "give a unit, e.g. " + n.Value + "s or " + n.Value + "ms"
		}
		d.errorf(n, hint, "%s: bad duration %q", what, n.Value)
		return 0, false
	}
	if v < 0 {
		d.errorf(n, "", "%s: duration %q is negative", what, n.Value)
		return 0, false
	}
	return v, true
}

func (d *decoder) positiveDuration(n *yaml.Node, what string) (time.Duration, bool) {
	v, ok := d.duration(n, what)
	if ok && v == 0 {
		d.errorf(n, "", "%s must be longer than 0", what)
		return 0, false
	}
	return v, ok
}

func (d *decoder) path(s string) string {
	if filepath.IsAbs(s) {
		return s
	}
	return filepath.Join(d.dir, s)
}

func (d *decoder) template(n *yaml.Node, s string, scope TemplateScope, json bool) *Template {
	t, msg, hint := compileTemplate(s, &scope, json)
	if msg != "" {
		d.errorf(n, hint, "%s", msg)
		return nil
	}
	return t
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// data loads the CSV file: `data: users.csv` or `data: {file: users.csv}`.
func (d *decoder) data(n *yaml.Node) *Data {
	fileNode := n
	if n.Kind == yaml.MappingNode {
		f := d.fields(n, "data", []string{"file"})
		if fileNode = f["file"]; fileNode == nil {
			d.errorf(n, "write data: users.csv", "data: no file")
			return nil
		}
	}
	name, ok := d.str(fileNode, "data")
	if !ok {
		return nil
	}
	path, raw, ok := d.readFile(fileNode, "data", name, maxFileSize, true)
	if !ok {
		return nil
	}
	r := csv.NewReader(bytes.NewReader(raw))
	r.Comment = '#'
	recs, err := r.ReadAll()
	if err != nil {
		d.errorf(fileNode, "a CSV file with a header row naming the columns, then one row per connection", "data %s: %v", name, err)
		return nil
	}
	if len(recs) < 2 {
		d.errorf(fileNode, "the first row names the columns; add at least one row of values", "data %s: no rows", name)
		return nil
	}
	cols := recs[0]
	seen := map[string]bool{}
	for _, c := range cols {
		if !validName(c) || seen[c] {
			d.errorf(fileNode, "column names are identifiers (letters, digits, _), used as ${row.NAME}", "data %s: bad or repeated column name %q", name, c)
			return nil
		}
		seen[c] = true
	}
	return &Data{File: path, Columns: cols, Rows: recs[1:]}
}

func (d *decoder) phases(n *yaml.Node) []Phase {
	if !d.isList(n, "phases") {
		return nil
	}
	var out []Phase
	start := time.Duration(0)
	for i, c := range n.Content {
		if c = d.deref(c); d.exhausted() {
			return out
		}
		if !d.isMap(c, "a phase") {
			continue
		}
		ph := Phase{Pos: pos(c), Start: start, Name: fmt.Sprintf("phase%d", i+1)}
		f := d.fields(c, "a phase", []string{"name", "connections", "arrivals", "duration"})
		if v := f["name"]; v != nil {
			ph.Name, _ = d.str(v, "phase name")
		}
		ok := true
		switch conn, arr := f["connections"], f["arrivals"]; {
		case conn != nil && arr != nil:
			d.errorf(arr, "make them two phases", "a phase holds connections or opens arrivals, not both")
			ok = false
		case conn != nil:
			ph.Kind = PhaseConnections
			if conn.Kind == yaml.MappingNode {
				cf := d.fields(conn, "connections", []string{"from", "to"})
				from, to := cf["from"], cf["to"]
				if from == nil || to == nil {
					d.errorf(conn, "write connections: {from: 0, to: 20000} for a ramp, or connections: 20000 to hold", "connections: a ramp needs from and to")
					ok = false
				} else {
					var ok1, ok2 bool
					ph.From, ok1 = d.int(from, "connections.from", 0, maxConnections)
					ph.To, ok2 = d.int(to, "connections.to", 0, maxConnections)
					ok = ok && ok1 && ok2
				}
			} else {
				var good bool
				ph.From, good = d.int(conn, "connections", 0, maxConnections)
				ph.To = ph.From
				ok = ok && good
			}
		case arr != nil:
			ph.Kind = PhaseArrivals
			r, good := d.number(arr, "arrivals (new connections per second)")
			if good && (r <= 0 || r > 1e7) {
				d.errorf(arr, "arrivals is new connections per second, e.g. arrivals: 50", "arrivals must be more than 0 and at most 1e7, got %s", arr.Value)
				good = false
			}
			ph.Rate = r
			ok = ok && good
		default:
			d.errorf(c, "add connections: N (hold), connections: {from: A, to: B} (ramp) or arrivals: R (new connections per second)", "phase %d says neither connections nor arrivals", i+1)
			ok = false
		}
		if v := f["duration"]; v != nil {
			var good bool
			ph.Duration, good = d.positiveDuration(v, "phase duration")
			if good && ph.Duration > maxPhase {
				d.errorf(v, "", "phase duration %v is more than a year", ph.Duration)
				good = false
			}
			ok = ok && good
		} else {
			d.errorf(c, "add duration: 60s", "phase %d has no duration", i+1)
			ok = false
		}
		if ok {
			out = append(out, ph)
			start += ph.Duration
		}
	}
	if len(n.Content) == 0 {
		d.errorf(n, "add a phase, e.g. - {connections: 100, duration: 60s}", "phases: the list is empty")
	}
	return out
}

var flowNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

func (d *decoder) flows(n *yaml.Node) []Flow {
	if !d.isList(n, "flows") {
		return nil
	}
	if len(n.Content) == 0 {
		d.errorf(n, "add a flow with name: and steps:", "flows: the list is empty")
		return nil
	}
	var out []Flow
	names := map[string]Pos{}
	total := 0.0
	for i, c := range n.Content {
		if c = d.deref(c); d.exhausted() {
			return nil
		}
		if !d.isMap(c, "a flow") {
			continue
		}
		fl := Flow{Name: fmt.Sprintf("flow%d", i+1), Weight: 1, Pos: pos(c)}
		f := d.fields(c, "a flow", []string{"name", "weight", "strict", "steps"})
		if v := f["name"]; v != nil {
			if s, ok := d.str(v, "flow name"); ok {
				if !flowNameRE.MatchString(s) {
					d.errorf(v, "use letters, digits, _, . and -", "flow name %q: it names histograms, so it must be a simple word", s)
				}
				if p, dup := names[s]; dup {
					d.errorf(v, "give each flow its own name", "flow name %q is already used at line %d", s, p.Line)
				}
				names[s] = pos(v)
				fl.Name = s
			}
		}
		if v := f["weight"]; v != nil {
			if w, ok := d.number(v, "weight"); ok {
				if w <= 0 {
					d.errorf(v, "weights are relative shares such as 95 and 5; remove a flow instead of giving it 0", "weight must be positive, got %s", v.Value)
				}
				fl.Weight = w
			}
		}
		if v := f["strict"]; v != nil {
			fl.Strict, _ = d.bool(v, "strict")
		}
		d.flow, d.expectSeen, d.open, d.closedBy, d.endless = &fl, false, true, Pos{}, Pos{}
		if v := f["steps"]; v != nil {
			fl.Steps = d.stepList(v, 0)
			if len(fl.Steps) == 0 && v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
				d.errorf(v, "add steps such as - send: hello", "flow %s has no steps", fl.Name)
			}
		} else {
			d.errorf(c, "add steps: with a list of send, expect, sleep, … steps", "flow %s has no steps", fl.Name)
		}
		d.flow = nil
		total += fl.Weight
		out = append(out, fl)
	}
	for i := range out {
		out[i].Weight /= total
	}
	return out
}

var stepKinds = []string{"send", "expect", "capture", "sleep", "repeat", "ping", "close", "reconnect", "replay"}

// needsOpen reports whether a step kind needs an open connection.
func needsOpen(k StepKind) bool {
	switch k {
	case StepSleep, StepReconnect, StepRepeat:
		return false
	}
	return true
}

func (d *decoder) stepList(n *yaml.Node, depth int) []Step {
	if !d.isList(n, "steps") {
		return nil
	}
	var out []Step
	for _, c := range n.Content {
		if c = d.deref(c); d.exhausted() {
			return out
		}
		if d.steps++; d.steps > maxSteps {
			if d.steps == maxSteps+1 {
				d.errorf(c, "split the scenario", "more than %d steps", maxSteps)
			}
			return out
		}
		if st, ok := d.step(c, depth); ok {
			out = append(out, st)
		}
	}
	return out
}

// step decodes one list item: `- KIND: ARGS` with optional name: and mark:,
// or a bare `- ping`, `- close`, `- reconnect`.
func (d *decoder) step(n *yaml.Node, depth int) (Step, bool) {
	st := Step{MarkSlot: -1}
	var kindKey, arg *yaml.Node
	switch n.Kind {
	case yaml.ScalarNode:
		kindKey = n
	case yaml.MappingNode:
		known := append([]string{"name", "mark"}, stepKinds...)
		before := len(d.errs)
		f, keys := d.fieldsKV(n, "a step", known)
		misspelt := len(d.errs) > before // an unknown key, likely the kind itself
		for _, k := range stepKinds {
			if v := f[k]; v != nil {
				if kindKey != nil {
					d.errorf(keys[k], "each step is its own list item: start the second with `- `", "one step with two kinds: %s and %s", kindKey.Value, k)
					return st, false
				}
				kindKey, arg = keys[k], v
			}
		}
		if kindKey == nil {
			if !misspelt {
				d.errorf(n, "start the step with one of: "+strings.Join(stepKinds, ", "), "the step does nothing")
			}
			return st, false
		}
		if v := f["name"]; v != nil {
			if s, ok := d.str(v, "step name"); ok {
				if !flowNameRE.MatchString(s) {
					d.errorf(v, "use letters, digits, _, . and -", "step name %q: it names a histogram, so it must be a simple word", s)
				}
				st.Name = s
			}
		}
		if v := f["mark"]; v != nil {
			if s, ok := d.str(v, "mark"); ok {
				if !validName(s) {
					d.errorf(v, "marks are identifiers: letters, digits, _", "mark %q is not a name", s)
				}
				for _, m := range d.flow.Marks {
					if m == s {
						d.errorf(v, "give each mark its own name", "mark %q is already defined in flow %s", s, d.flow.Name)
					}
				}
				st.Mark, st.MarkSlot = s, len(d.flow.Marks)
			}
		}
	default:
		d.errorf(n, "write `- send: hello`, `- expect: {contains: hi}`, `- sleep: 1s`, …", "a step must be a mapping or a step name, got %s", describe(n))
		return st, false
	}
	kind := kindKey.Value
	st.Pos = pos(kindKey)
	for i, k := range stepKinds {
		if k == kind {
			st.Kind = StepKind(i + 1)
		}
	}
	if st.Kind == 0 {
		hint := "steps are " + strings.Join(stepKinds, ", ")
		if s := suggest(kind, stepKinds); s != "" {
			hint = "did you mean `" + s + "`?"
		}
		d.errorf(n, hint, "unknown step %q", truncate(kind, 40))
		return st, false
	}
	if st.Name == "" {
		st.Name = fmt.Sprintf("%s.%s@%d", d.flow.Name, kind, st.Pos.Line)
		if d.defaultNames[st.Name] {
			// Two steps of a kind on one line (flow style): add the column.
			st.Name = fmt.Sprintf("%s.%s@%d:%d", d.flow.Name, kind, st.Pos.Line, st.Pos.Col)
		}
		if d.defaultNames == nil {
			d.defaultNames = map[string]bool{}
		}
		d.defaultNames[st.Name] = true
	}
	if arg == nil || arg.Kind == yaml.ScalarNode && arg.ShortTag() == "!!null" {
		arg = nil
	}
	// Reachability, before the step changes the state.
	switch {
	case d.endless.Line > 0:
		d.errorf(kindKey, "give that repeat a count: or for:, or remove this step", "unreachable step: the repeat at line %d never ends", d.endless.Line)
	case !d.open && needsOpen(st.Kind):
		d.errorf(kindKey, "add a reconnect step after the close, or remove this step", "unreachable step: the connection is closed by the close at line %d", d.closedBy.Line)
	}
	ok := true
	switch st.Kind {
	case StepSend:
		st.Send, ok = d.send(kindKey, arg)
	case StepExpect:
		st.Expect, ok = d.expect(kindKey, arg)
		d.expectSeen = true
	case StepCapture:
		st.Capture, ok = d.captureStep(kindKey, arg)
	case StepSleep:
		st.Sleep, ok = d.sleep(kindKey, arg)
	case StepRepeat:
		st.Repeat, ok = d.repeat(kindKey, arg, depth)
	case StepPing:
		st.Ping, ok = d.ping(kindKey, arg)
	case StepClose:
		st.Close, ok = d.close(kindKey, arg)
		d.open, d.closedBy = false, st.Pos
	case StepReconnect:
		st.Reconnect, ok = d.reconnect(kindKey, arg)
		d.open = true
	case StepReplay:
		st.Replay, ok = d.replay(kindKey, arg)
	}
	if st.Mark != "" {
		d.flow.Marks = append(d.flow.Marks, st.Mark)
	}
	return st, ok
}

func (d *decoder) scope() TemplateScope {
	return TemplateScope{Columns: d.columns, Vars: d.flow.Vars}
}

func (d *decoder) send(key, arg *yaml.Node) (*Send, bool) {
	if arg == nil {
		d.errorf(key, "write send: hello, or send: {text|json|hex|base64|file: …}", "send: nothing to send")
		return nil, false
	}
	s := &Send{}
	var src *yaml.Node
	if arg.Kind == yaml.ScalarNode {
		src, s.Source = arg, "text"
	} else {
		if !d.isMap(arg, "send") {
			return nil, false
		}
		sources := []string{"text", "json", "hex", "base64", "file"}
		f := d.fields(arg, "send", append(sources, "binary", "stamp"))
		for _, k := range sources {
			if v := f[k]; v != nil {
				if src != nil {
					d.errorf(v, "a send has one payload", "send: both %s and %s", s.Source, k)
					return nil, false
				}
				src, s.Source = v, k
			}
		}
		if src == nil {
			d.errorf(arg, "add text:, json:, hex:, base64: or file:", "send: no payload")
			return nil, false
		}
		s.Binary = s.Source == "hex" || s.Source == "base64" || s.Source == "file"
		if v := f["binary"]; v != nil {
			s.Binary, _ = d.bool(v, "send.binary")
		}
		if v := f["stamp"]; v != nil {
			s.Stamp, _ = d.bool(v, "send.stamp")
		}
	}
	switch s.Source {
	case "text":
		str, ok := d.str(src, "send.text")
		if !ok {
			return nil, false
		}
		if s.Payload = d.template(src, str, d.scope(), false); s.Payload == nil {
			return nil, false
		}
	case "json":
		if src.Kind == yaml.ScalarNode {
			str, ok := d.str(src, "send.json")
			if !ok {
				return nil, false
			}
			if s.Payload = d.template(src, str, d.scope(), false); s.Payload == nil {
				return nil, false
			}
			if !validJSONTemplate(s.Payload) {
				d.errorf(src, "write the JSON as YAML (json: {type: join, room: lobby}) and wsload encodes and escapes it", "send.json: %q is not JSON (placeholders counted as 0)", truncate(str, 60))
				return nil, false
			}
		} else {
			b := &tmplBuilder{}
			if !d.jsonValue(src, b, 0) {
				return nil, false
			}
			s.Payload = b.template()
		}
	case "hex", "base64", "file":
		raw, ok := d.rawPayload(src, s.Source)
		if !ok {
			return nil, false
		}
		s.Payload = &Template{src: src.Value, parts: []part{{kind: partLit, lit: raw}}}
	}
	if s.Stamp && (s.Source == "json" || s.Source == "text") {
		if rest, isObj, empty := splitJSONObject(s.Payload); isObj {
			s.JSON = true
			if empty {
				rest = &Template{parts: []part{{kind: partLit, lit: []byte("}")}}}
			} else {
				rest.parts = append([]part{{kind: partLit, lit: []byte(",")}}, rest.parts...)
			}
			s.stampRest = rest
		} else if s.Source == "json" {
			d.errorf(src, "stamp a JSON object, or send text", "send.stamp: a stamp goes into a JSON object, and this payload is another JSON value")
			return nil, false
		}
	}
	return s, true
}

func (d *decoder) rawPayload(n *yaml.Node, kind string) ([]byte, bool) {
	str, ok := d.str(n, "send."+kind)
	if !ok {
		return nil, false
	}
	switch kind {
	case "hex":
		clean := strings.Map(func(r rune) rune {
			if r == ' ' || r == '\n' || r == '\t' || r == ':' {
				return -1
			}
			return r
		}, str)
		b, err := hexDecode(clean)
		if err != nil {
			d.errorf(n, "two hex digits per byte, e.g. 0102ff (spaces and colons are ignored)", "send.hex: %v", err)
			return nil, false
		}
		return b, true
	case "base64":
		b, err := base64Decode(str)
		if err != nil {
			d.errorf(n, "standard or URL-safe base64", "send.base64: %v", err)
			return nil, false
		}
		return b, true
	}
	_, b, ok := d.readFile(n, "send.file", str, MaxPayloadFile, true)
	return b, ok
}

// tmplBuilder assembles a JSON payload's template from literal text and
// placeholders.
type tmplBuilder struct {
	parts []part
	src   strings.Builder
}

func (b *tmplBuilder) lit(s string) {
	if n := len(b.parts); n > 0 && b.parts[n-1].kind == partLit {
		b.parts[n-1].lit = append(b.parts[n-1].lit, s...)
	} else {
		b.parts = append(b.parts, part{kind: partLit, lit: []byte(s)})
	}
	b.src.WriteString(s)
}

func (b *tmplBuilder) add(t *Template) {
	for _, p := range t.parts {
		if p.kind == partLit {
			lit := string(p.lit)
			if n := len(b.parts); n > 0 && b.parts[n-1].kind == partLit {
				b.parts[n-1].lit = append(b.parts[n-1].lit, lit...)
			} else {
				b.parts = append(b.parts, part{kind: partLit, lit: []byte(lit)})
			}
		} else {
			b.parts = append(b.parts, p)
		}
	}
	b.src.WriteString(t.src)
}

func (b *tmplBuilder) template() *Template {
	return &Template{src: b.src.String(), parts: b.parts}
}

// jsonValue writes YAML node n as JSON. String scalars are templates whose
// expansions are escaped; a string that is exactly one numeric placeholder
// ("${seq}") becomes a JSON number.
func (d *decoder) jsonValue(n *yaml.Node, b *tmplBuilder, depth int) bool {
	if depth > 100 {
		d.errorf(n, "", "send.json: nested more than 100 levels")
		return false
	}
	switch n.Kind {
	case yaml.MappingNode:
		b.lit("{")
		first, ok := true, true
		d.eachPair(n, func(k, v *yaml.Node) {
			if !first {
				b.lit(",")
			}
			first = false
			b.lit(`"` + string(appendJSONEscaped(nil, k.Value)) + `":`)
			ok = d.jsonValue(v, b, depth+1) && ok
		})
		b.lit("}")
		return ok
	case yaml.SequenceNode:
		b.lit("[")
		ok := true
		for i, c := range n.Content {
			if c = d.deref(c); d.exhausted() {
				return false
			}
			if i > 0 {
				b.lit(",")
			}
			ok = d.jsonValue(c, b, depth+1) && ok
		}
		b.lit("]")
		return ok
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			b.lit("null")
		case "!!bool":
			v, _ := strconv.ParseBool(strings.ToLower(n.Value))
			b.lit(strconv.FormatBool(v))
		case "!!int", "!!float":
			f, ok := yamlNumber(n.Value)
			if !ok || math.IsInf(f, 0) || math.IsNaN(f) {
				d.errorf(n, "quote it to send a string", "send.json: %s is not a JSON number", n.Value)
				return false
			}
			if i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); err == nil {
				b.lit(strconv.FormatInt(i, 10))
			} else {
				b.lit(strconv.FormatFloat(f, 'g', -1, 64))
			}
		default:
			t := d.template(n, n.Value, d.scope(), true)
			if t == nil {
				return false
			}
			if len(t.parts) == 1 && t.parts[0].numeric() {
				b.add(t)
			} else {
				b.lit(`"`)
				b.add(t)
				b.lit(`"`)
			}
		}
		return true
	}
	d.errorf(n, "", "send.json: cannot encode %s", describe(n))
	return false
}

// validJSONTemplate checks a JSON text template with every placeholder
// expanded to 0.
func validJSONTemplate(t *Template) bool {
	var b []byte
	for _, p := range t.parts {
		if p.kind == partLit {
			b = append(b, p.lit...)
		} else {
			b = append(b, '0')
		}
	}
	return jsonValid(b)
}

// splitJSONObject returns, for a template whose text is a JSON object, the
// template after its opening brace, and whether the object is empty.
func splitJSONObject(t *Template) (rest *Template, isObj, empty bool) {
	if len(t.parts) == 0 || t.parts[0].kind != partLit {
		return nil, false, false
	}
	lit := t.parts[0].lit
	i := skipWS(lit, 0)
	if i >= len(lit) || lit[i] != '{' {
		return nil, false, false
	}
	after := lit[i+1:]
	j := skipWS(after, 0)
	empty = j < len(after) && after[j] == '}' && len(t.parts) == 1
	parts := append([]part{{kind: partLit, lit: append([]byte(nil), after...)}}, t.parts[1:]...)
	return &Template{src: t.src, parts: parts}, true, empty
}

func (d *decoder) expect(key, arg *yaml.Node) (*Expect, bool) {
	e := &Expect{Timeout: DefaultExpectTimeout}
	if arg == nil {
		return e, true // any message
	}
	if arg.Kind == yaml.ScalarNode {
		s, ok := d.str(arg, "expect")
		e.Match.Contains = []byte(s)
		return e, ok
	}
	if !d.isMap(arg, "expect") {
		return nil, false
	}
	f := d.fields(arg, "expect", []string{"contains", "regex", "json", "stamped", "timeout", "since", "capture", "on_timeout"})
	ok := true
	if v := f["contains"]; v != nil {
		s, good := d.str(v, "expect.contains")
		e.Match.Contains, ok = []byte(s), ok && good
	}
	if v := f["regex"]; v != nil {
		e.Match.Regex = d.regex(v, "expect.regex")
		ok = ok && e.Match.Regex != nil
	}
	if v := f["json"]; v != nil {
		e.Match.JSON = d.conditions(v)
		ok = ok && e.Match.JSON != nil
	}
	if v := f["stamped"]; v != nil {
		e.Match.Stamped, _ = d.bool(v, "expect.stamped")
		if e.Match.Stamped {
			e.From = FromStamp
		}
	}
	if v := f["timeout"]; v != nil {
		var good bool
		e.Timeout, good = d.positiveDuration(v, "expect.timeout")
		ok = ok && good
	}
	if v := f["since"]; v != nil {
		if s, good := d.str(v, "expect.since"); good {
			if e.From == FromStamp {
				d.errorf(v, "remove since: (a stamped expect measures from the stamp's send time)", "expect: since and stamped both say where latency starts")
			}
			slot := -1
			for i, m := range d.flow.Marks {
				if m == s {
					slot = i
				}
			}
			if slot < 0 {
				hint := "add mark: " + s + " to an earlier step of flow " + d.flow.Name
				if sg := suggest(s, d.flow.Marks); sg != "" {
					hint = "did you mean `" + sg + "`?"
				}
				d.errorf(v, hint, "undefined mark %q", s)
				ok = false
			}
			e.From, e.Since, e.SinceSlot = FromMark, s, slot
		}
	}
	if v := f["on_timeout"]; v != nil {
		if s, good := d.str(v, "expect.on_timeout"); good {
			switch s {
			case "fail":
			case "continue":
				e.Continue = true
			default:
				d.errorf(v, "write on_timeout: fail (the default: end the flow) or on_timeout: continue", "on_timeout %q", s)
				ok = false
			}
		}
	}
	if v := f["capture"]; v != nil && d.isMap(v, "expect.capture") {
		var caps []Capture
		d.eachPair(v, func(k, spec *yaml.Node) {
			if c, good := d.capture(k, spec); good {
				caps = append(caps, *c)
			} else {
				ok = false
			}
		})
		// Defined after the whole expect, for the steps that follow.
		for i := range caps {
			caps[i].Slot = d.defineVar(caps[i].Var)
		}
		e.Captures = caps
	}
	return e, ok
}

func (d *decoder) defineVar(name string) int {
	for i, v := range d.flow.Vars {
		if v == name {
			return i // captured again: the newer value replaces the older
		}
	}
	d.flow.Vars = append(d.flow.Vars, name)
	return len(d.flow.Vars) - 1
}

func (d *decoder) regex(n *yaml.Node, what string) *regexp.Regexp {
	s, ok := d.str(n, what)
	if !ok {
		return nil
	}
	re, err := regexp.Compile(s)
	if err != nil {
		d.errorf(n, "RE2 syntax (Go regexp); quote the pattern in single quotes so YAML leaves backslashes alone", "%s: %v", what, err)
		return nil
	}
	return re
}

var opKeys = map[string]Op{"==": OpEq, "eq": OpEq, "!=": OpNe, "ne": OpNe, "<": OpLt, "lt": OpLt, "<=": OpLe, "le": OpLe, ">": OpGt, "gt": OpGt, ">=": OpGe, "ge": OpGe, "exists": OpExists}

var opKeyNames = []string{"==", "!=", "<", "<=", ">", ">=", "eq", "ne", "lt", "le", "gt", "ge", "exists"}

// conditions decodes `json: {PATH: VALUE, PATH: {OP: VALUE}, …}`.
func (d *decoder) conditions(n *yaml.Node) []Condition {
	if !d.isMap(n, "expect.json") {
		return nil
	}
	out := []Condition{}
	ok := true
	d.eachPair(n, func(k, v *yaml.Node) {
		path := k.Value
		if path == "" || strings.HasPrefix(path, ".") || strings.HasSuffix(path, ".") || strings.Contains(path, "..") {
			d.errorf(k, "a dotted path such as data.room.id or items.0.id", "bad JSON path %q", path)
			ok = false
			return
		}
		op, val := OpEq, v
		if v.Kind == yaml.MappingNode {
			if len(v.Content) != 2 {
				d.errorf(v, "one comparison per path, e.g. count: {\">\": 3}; compare nested fields with dotted paths", "%s: want one comparison, got %d keys", path, len(v.Content)/2)
				ok = false
				return
			}
			ok2 := false
			d.eachPair(v, func(ok_, ov *yaml.Node) {
				o, known := opKeys[ok_.Value]
				if !known {
					hint := "comparisons are " + strings.Join(opKeyNames, " ")
					if s := suggest(ok_.Value, opKeyNames); s != "" {
						hint = "did you mean `" + s + "`?"
					}
					d.errorf(ok_, hint, "%s: unknown comparison %q", path, ok_.Value)
					return
				}
				op, val, ok2 = o, ov, true
			})
			if !ok2 {
				ok = false
				return
			}
		}
		if op == OpExists {
			b, good := d.bool(val, path+".exists")
			if !good {
				ok = false
				return
			}
			if !b {
				op = OpAbsent
			}
			out = append(out, NewCondition(path, op, nil))
			return
		}
		if val.Kind != yaml.ScalarNode {
			d.errorf(val, "compare with a string, number, true, false or null", "%s: want a value, got %s", path, describe(val))
			ok = false
			return
		}
		var value any
		switch val.ShortTag() {
		case "!!null":
			value = nil
		case "!!bool":
			value, _ = strconv.ParseBool(strings.ToLower(val.Value))
		case "!!int", "!!float":
			f, good := yamlNumber(val.Value)
			if !good {
				d.errorf(val, "", "%s: bad number %s", path, val.Value)
				ok = false
				return
			}
			value = f
		default:
			value = val.Value
		}
		if op != OpEq && op != OpNe {
			switch value.(type) {
			case float64, string:
			default:
				d.errorf(val, "compare numbers or strings", "%s: %s needs a number or a string", path, op)
				ok = false
				return
			}
		}
		out = append(out, NewCondition(path, op, value))
	})
	if !ok {
		return nil
	}
	return out
}

// capture decodes `NAME: {json: PATH}` or `NAME: {regex: RE, group: N}`.
func (d *decoder) capture(name, spec *yaml.Node) (*Capture, bool) {
	if !validName(name.Value) {
		d.errorf(name, "variable names are identifiers: letters, digits, _", "capture: %q is not a variable name", name.Value)
		return nil, false
	}
	c := &Capture{Var: name.Value, Pos: pos(name)}
	if !d.isMap(spec, "capture "+name.Value) {
		return nil, false
	}
	f := d.fields(spec, "a capture", []string{"json", "regex", "group"})
	return d.captureFields(c, spec, f)
}

func (d *decoder) captureFields(c *Capture, n *yaml.Node, f map[string]*yaml.Node) (*Capture, bool) {
	js, re := f["json"], f["regex"]
	switch {
	case js != nil && re != nil:
		d.errorf(re, "one capture takes one value", "capture %s: both json and regex", c.Var)
		return nil, false
	case js != nil:
		s, ok := d.str(js, "capture.json")
		if !ok {
			return nil, false
		}
		if s == "" || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
			d.errorf(js, "a dotted path such as data.token or items.0.id", "capture %s: bad JSON path %q", c.Var, s)
			return nil, false
		}
		c.JSONPath, c.path = s, splitPath(s)
		if g := f["group"]; g != nil {
			d.errorf(g, "group goes with regex", "capture %s: group without regex", c.Var)
			return nil, false
		}
	case re != nil:
		if c.Regex = d.regex(re, "capture.regex"); c.Regex == nil {
			return nil, false
		}
		if c.Regex.NumSubexp() > 0 {
			c.Group = 1
		}
		if g := f["group"]; g != nil {
			var ok bool
			if c.Group, ok = d.int(g, "capture.group", 0, c.Regex.NumSubexp()); !ok {
				return nil, false
			}
		}
	default:
		d.errorf(n, "write {json: data.token} or {regex: 'token=(\\w+)'}", "capture %s: say where the value is", c.Var)
		return nil, false
	}
	return c, true
}

// captureStep is `- capture: {var: NAME, json: PATH}`: a capture from the
// message the latest expect matched.
func (d *decoder) captureStep(key, arg *yaml.Node) (*Capture, bool) {
	if arg == nil || !d.isMap(arg, "capture") {
		if arg == nil {
			d.errorf(key, "write capture: {var: token, json: data.token}", "capture: nothing to capture")
		}
		return nil, false
	}
	f := d.fields(arg, "capture", []string{"var", "json", "regex", "group"})
	v := f["var"]
	if v == nil {
		d.errorf(arg, "add var: NAME", "capture: no variable")
		return nil, false
	}
	name, ok := d.str(v, "capture.var")
	if !ok {
		return nil, false
	}
	if !validName(name) {
		d.errorf(v, "variable names are identifiers: letters, digits, _", "capture: %q is not a variable name", name)
		return nil, false
	}
	if !d.expectSeen {
		d.errorf(key, "put it after an expect step, or use the expect's capture:", "capture has no message to read: no expect step comes before it")
	}
	c, ok := d.captureFields(&Capture{Var: name, Pos: pos(key)}, arg, f)
	if !ok {
		return nil, false
	}
	c.Slot = d.defineVar(name)
	return c, true
}

func (d *decoder) sleep(key, arg *yaml.Node) (*Distribution, bool) {
	if arg == nil {
		d.errorf(key, "write sleep: 1s, sleep: {uniform: [1s, 3s]} or sleep: {exponential: 2s}", "sleep: no duration")
		return nil, false
	}
	if arg.Kind == yaml.ScalarNode {
		v, ok := d.duration(arg, "sleep")
		return &Distribution{Kind: DistFixed, Fixed: v}, ok
	}
	if !d.isMap(arg, "sleep") {
		return nil, false
	}
	f := d.fields(arg, "sleep", []string{"fixed", "uniform", "exponential", "max"})
	n := 0
	for _, k := range []string{"fixed", "uniform", "exponential"} {
		if f[k] != nil {
			n++
		}
	}
	if n != 1 {
		d.errorf(arg, "give one of fixed: 1s, uniform: [1s, 3s], exponential: 2s", "sleep: want one distribution, got %d", n)
		return nil, false
	}
	dist := &Distribution{}
	switch {
	case f["fixed"] != nil:
		v, ok := d.duration(f["fixed"], "sleep.fixed")
		dist.Kind, dist.Fixed = DistFixed, v
		if !ok {
			return nil, false
		}
	case f["uniform"] != nil:
		u := f["uniform"]
		if u.Kind != yaml.SequenceNode || len(u.Content) != 2 {
			d.errorf(u, "write uniform: [1s, 3s]", "sleep.uniform: want [MIN, MAX], got %s", describe(u))
			return nil, false
		}
		lo, ok1 := d.duration(d.deref(u.Content[0]), "sleep.uniform min")
		hi, ok2 := d.duration(d.deref(u.Content[1]), "sleep.uniform max")
		if !ok1 || !ok2 {
			return nil, false
		}
		if lo > hi {
			d.errorf(u, "write the smaller duration first", "sleep.uniform: min %v is more than max %v", lo, hi)
			return nil, false
		}
		dist.Kind, dist.Min, dist.Max = DistUniform, lo, hi
	default:
		v, ok := d.positiveDuration(f["exponential"], "sleep.exponential mean")
		if !ok {
			return nil, false
		}
		dist.Kind, dist.Mean = DistExponential, v
	}
	if m := f["max"]; m != nil {
		if dist.Kind != DistExponential {
			d.errorf(m, "max caps an exponential sleep", "sleep.max applies to exponential only")
			return nil, false
		}
		v, ok := d.positiveDuration(m, "sleep.max")
		if !ok {
			return nil, false
		}
		dist.Max = v
	}
	return dist, true
}

func (d *decoder) repeat(key, arg *yaml.Node, depth int) (*Repeat, bool) {
	if arg == nil || !d.isMap(arg, "repeat") {
		if arg == nil {
			d.errorf(key, "write repeat: {count: 10, steps: [...]}", "repeat: no steps")
		}
		return nil, false
	}
	if depth >= maxRepeatDepth {
		d.errorf(key, "flatten the repeats", "repeats nested more than %d deep", maxRepeatDepth)
		return nil, false
	}
	f := d.fields(arg, "repeat", []string{"count", "for", "rate", "steps"})
	r := &Repeat{}
	ok := true
	if v := f["count"]; v != nil {
		var good bool
		r.Count, good = d.int(v, "repeat.count", 1, math.MaxInt32)
		ok = ok && good
	}
	if v := f["for"]; v != nil {
		var good bool
		r.For, good = d.positiveDuration(v, "repeat.for")
		ok = ok && good
	}
	if v := f["rate"]; v != nil {
		rate, good := d.number(v, "repeat.rate")
		if good && (rate <= 0 || rate > 1e7) {
			d.errorf(v, "rate is iterations per second per connection, e.g. rate: 10", "repeat.rate must be more than 0 and at most 1e7, got %s", v.Value)
			good = false
		}
		r.Rate, ok = rate, ok && good
	}
	steps := f["steps"]
	if steps == nil {
		d.errorf(arg, "add steps: [...]", "repeat: no steps")
		return nil, false
	}
	openBefore := d.open
	r.Steps = d.stepList(steps, depth+1)
	if steps.Kind == yaml.SequenceNode && len(steps.Content) == 0 {
		d.errorf(steps, "add the steps to repeat", "repeat: the steps list is empty")
		ok = false
	}
	// A body that ends closed cannot start again if it needs the connection first.
	if openBefore && !d.open && r.Count != 1 {
		if first := firstNeedingOpen(r.Steps); first != nil {
			d.errorf(steps, "add a reconnect step at the end of the repeated steps (or the start)", "the repeated steps close the connection at line %d, so the next round's %s at line %d cannot run", d.closedBy.Line, first.Kind, first.Pos.Line)
		}
	}
	if !r.Bounded() && d.endless.Line == 0 {
		d.endless = pos(key)
	}
	return r, ok
}

// firstNeedingOpen is the first step that needs an open connection before
// any reconnect, looking into repeats.
func firstNeedingOpen(steps []Step) *Step {
	for i := range steps {
		s := &steps[i]
		switch {
		case s.Kind == StepReconnect:
			return nil
		case s.Kind == StepRepeat:
			if f := firstNeedingOpen(s.Repeat.Steps); f != nil {
				return f
			}
			for _, in := range s.Repeat.Steps {
				if in.Kind == StepReconnect {
					return nil
				}
			}
		case needsOpen(s.Kind):
			return s
		}
	}
	return nil
}

func (d *decoder) ping(key, arg *yaml.Node) (*Ping, bool) {
	p := &Ping{Timeout: DefaultPingTimeout}
	if arg == nil {
		return p, true
	}
	if arg.Kind == yaml.ScalarNode {
		v, ok := d.positiveDuration(arg, "ping timeout")
		p.Timeout = v
		return p, ok
	}
	if !d.isMap(arg, "ping") {
		return nil, false
	}
	f := d.fields(arg, "ping", []string{"timeout", "data"})
	ok := true
	if v := f["timeout"]; v != nil {
		var good bool
		p.Timeout, good = d.positiveDuration(v, "ping.timeout")
		ok = ok && good
	}
	if v := f["data"]; v != nil {
		if s, good := d.str(v, "ping.data"); good {
			if p.Payload = d.template(v, s, d.scope(), false); p.Payload == nil {
				ok = false
			} else if b, static := p.Payload.Static(); static && len(b) > 125 {
				d.errorf(v, "", "ping.data is %d bytes; a ping carries at most 125", len(b))
				ok = false
			}
		}
	}
	return p, ok
}

func (d *decoder) close(key, arg *yaml.Node) (*Close, bool) {
	c := &Close{Code: DefaultCloseCode}
	if arg == nil {
		return c, true
	}
	var codeNode, reasonNode *yaml.Node
	if arg.Kind == yaml.ScalarNode {
		codeNode = arg
	} else {
		if !d.isMap(arg, "close") {
			return nil, false
		}
		f := d.fields(arg, "close", []string{"code", "reason"})
		codeNode, reasonNode = f["code"], f["reason"]
	}
	ok := true
	if codeNode != nil {
		var good bool
		if c.Code, good = d.int(codeNode, "close.code", 1000, 4999); good {
			if c.Code == 1004 || c.Code == 1005 || c.Code == 1006 || c.Code == 1015 || c.Code > 1014 && c.Code < 3000 {
				d.errorf(codeNode, "use 1000 (normal), 1001 (going away) or an application code 4000-4999", "close code %d may not be sent", c.Code)
				good = false
			}
		}
		ok = ok && good
	}
	if reasonNode != nil {
		var good bool
		c.Reason, good = d.str(reasonNode, "close.reason")
		if good && len(c.Reason) > 123 {
			d.errorf(reasonNode, "", "close.reason is %d bytes; at most 123 fit in a close frame", len(c.Reason))
			good = false
		}
		ok = ok && good
	}
	return c, ok
}

func (d *decoder) reconnect(key, arg *yaml.Node) (*Reconnect, bool) {
	r := &Reconnect{Min: DefaultReconnectMin, Max: DefaultReconnectMax, Jitter: DefaultReconnectJitter}
	if arg == nil {
		return r, true
	}
	if !d.isMap(arg, "reconnect") {
		return nil, false
	}
	f := d.fields(arg, "reconnect", []string{"min", "max", "jitter", "attempts"})
	ok := true
	if v := f["min"]; v != nil {
		var good bool
		r.Min, good = d.duration(v, "reconnect.min")
		ok = ok && good
	}
	if v := f["max"]; v != nil {
		var good bool
		r.Max, good = d.duration(v, "reconnect.max")
		ok = ok && good
	} else if r.Max < r.Min {
		r.Max = r.Min
	}
	if ok && r.Max < r.Min {
		d.errorf(arg, "max is the cap of the doubling backoff", "reconnect: max %v is less than min %v", r.Max, r.Min)
		ok = false
	}
	if v := f["jitter"]; v != nil {
		j, good := d.number(v, "reconnect.jitter")
		if good && (j < 0 || j > 1) {
			d.errorf(v, "jitter is a fraction: 0.5 waits between half and all of the backoff", "reconnect.jitter must be from 0 to 1, got %s", v.Value)
			good = false
		}
		r.Jitter, ok = j, ok && good
	}
	if v := f["attempts"]; v != nil {
		var good bool
		r.Attempts, good = d.int(v, "reconnect.attempts", 0, math.MaxInt32)
		ok = ok && good
	}
	return r, ok
}

func (d *decoder) replay(key, arg *yaml.Node) (*Replay, bool) {
	if arg == nil {
		d.errorf(key, "write replay: capture.har or replay: {file: capture.har, speed: 2}", "replay: no file")
		return nil, false
	}
	r := &Replay{Speed: 1}
	fileNode := arg
	if arg.Kind != yaml.ScalarNode {
		if !d.isMap(arg, "replay") {
			return nil, false
		}
		f := d.fields(arg, "replay", []string{"file", "url_contains", "speed"})
		if fileNode = f["file"]; fileNode == nil {
			d.errorf(arg, "add file: capture.har", "replay: no file")
			return nil, false
		}
		if v := f["url_contains"]; v != nil {
			r.URLContains, _ = d.str(v, "replay.url_contains")
		}
		if v := f["speed"]; v != nil {
			s, good := d.number(v, "replay.speed")
			if good && (s <= 0 || s > 1e6) {
				d.errorf(v, "speed 2 replays twice as fast, 0.5 at half speed", "replay.speed must be more than 0, got %s", v.Value)
				return nil, false
			}
			r.Speed = s
		}
	}
	name, ok := d.str(fileNode, "replay.file")
	if !ok {
		return nil, false
	}
	var data []byte
	if r.File, data, ok = d.readFile(fileNode, "replay.file", name, maxFileSize, true); !ok {
		return nil, false
	}
	msgs, err := parseReplay(data, r.File, r.URLContains)
	if err != nil {
		d.errorf(fileNode, "a HAR file saved from the browser's Network tab, or JSON lines {\"t\":0.5,\"dir\":\"send\",\"data\":\"…\"}", "%s", strings.TrimPrefix(err.Error(), "scenario: "))
		return nil, false
	}
	r.Messages = msgs
	return r, true
}

func hexDecode(s string) ([]byte, error) {
	if len(s)%2 != 0 {
		return nil, fmt.Errorf("odd number of hex digits (%d)", len(s))
	}
	out := make([]byte, len(s)/2)
	for i := 0; i < len(s); i += 2 {
		hi, ok1 := unhexAny(s[i])
		lo, ok2 := unhexAny(s[i+1])
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%q is not hex", s[i:i+2])
		}
		out[i/2] = hi<<4 | lo
	}
	return out, nil
}

func unhexAny(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func base64Decode(s string) ([]byte, error) {
	s = strings.Join(strings.Fields(s), "")
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		var b []byte
		if b, err = enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, err
}

func jsonValid(b []byte) bool { return json.Valid(b) }
