package scenario

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"time"
)

// Direction says who sent a captured message.
type Direction uint8

// The directions.
const (
	DirSend    Direction = iota + 1 // client to server: replayed
	DirReceive                      // server to client: kept for reference
)

func (d Direction) String() string {
	switch d {
	case DirSend:
		return "send"
	case DirReceive:
		return "receive"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// ReplayMessage is one captured WebSocket message.
type ReplayMessage struct {
	Offset time.Duration // since the capture's first message
	Dir    Direction
	Opcode byte // 1 text, 2 binary
	Data   []byte
}

// maxFileSize bounds every file a scenario reads (payloads, data, captures).
const maxFileSize = 256 << 20

// readFile reads a regular file of at most maxFileSize bytes, so that a
// scenario naming /dev/zero or a FIFO fails instead of hanging.
func readFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > maxFileSize {
		return nil, fmt.Errorf("%s is %d MiB, more than the %d MiB a scenario may read", path, fi.Size()>>20, maxFileSize>>20)
	}
	return os.ReadFile(path)
}

// LoadHAR reads the first WebSocket connection's messages from a HAR file
// exported by the Chrome or Firefox developer tools (Network tab, "Save all
// as HAR"): log.entries[]._webSocketMessages.
func LoadHAR(path string) ([]ReplayMessage, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: replay: %w", err)
	}
	msgs, err := ParseHAR(data, "")
	if err != nil {
		return nil, fmt.Errorf("scenario: %s: %w", path, err)
	}
	return msgs, nil
}

// LoadReplay reads a capture: a HAR file (the first WebSocket entry whose URL
// contains urlContains; "" takes the first) or a JSON-lines transcript, told
// apart by content.
func LoadReplay(path, urlContains string) ([]ReplayMessage, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: replay: %w", err)
	}
	return parseReplay(data, path, urlContains)
}

// parseReplay is LoadReplay of data read from path.
func parseReplay(data []byte, path, urlContains string) ([]ReplayMessage, error) {
	var err error
	var msgs []ReplayMessage
	if isHAR(data) {
		msgs, err = ParseHAR(data, urlContains)
	} else {
		if urlContains != "" {
			return nil, fmt.Errorf("scenario: %s: url_contains applies to HAR files, and this is a JSON-lines transcript", path)
		}
		msgs, err = ParseTranscript(data)
	}
	if err != nil {
		return nil, fmt.Errorf("scenario: %s: %w", path, err)
	}
	return msgs, nil
}

func isHAR(data []byte) bool {
	var probe struct {
		Log json.RawMessage `json:"log"`
	}
	return json.Unmarshal(data, &probe) == nil && probe.Log != nil
}

type harFile struct {
	Log struct {
		Entries []struct {
			ResourceType string `json:"_resourceType"`
			Request      struct {
				URL string `json:"url"`
			} `json:"request"`
			Messages []struct {
				Type   string  `json:"type"`
				Time   float64 `json:"time"`
				Opcode int     `json:"opcode"`
				Data   string  `json:"data"`
			} `json:"_webSocketMessages"`
		} `json:"entries"`
	} `json:"log"`
}

// ParseHAR extracts the messages of one WebSocket entry of a HAR document:
// the first with _webSocketMessages whose request URL contains urlContains.
// Times are seconds (Chrome: since the epoch); offsets count from the entry's
// first message. Binary messages (opcode 2) are base64 in HAR.
func ParseHAR(data []byte, urlContains string) ([]ReplayMessage, error) {
	var h harFile
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("not a HAR file: %w", err)
	}
	var seen []string
	for _, e := range h.Log.Entries {
		ws := e.Messages != nil || e.ResourceType == "websocket" || strings.HasPrefix(e.Request.URL, "ws")
		if !ws {
			continue
		}
		seen = append(seen, e.Request.URL)
		if !strings.Contains(e.Request.URL, urlContains) || e.Messages == nil {
			continue
		}
		msgs := make([]ReplayMessage, 0, len(e.Messages))
		for i, m := range e.Messages {
			rm := ReplayMessage{Opcode: byte(m.Opcode)}
			switch m.Type {
			case "send":
				rm.Dir = DirSend
			case "receive":
				rm.Dir = DirReceive
			default:
				return nil, fmt.Errorf("%s: message %d: type %q (want send or receive)", e.Request.URL, i, m.Type)
			}
			switch m.Opcode {
			case 1:
				rm.Data = []byte(m.Data)
			case 2:
				b, err := base64.StdEncoding.DecodeString(m.Data)
				if err != nil {
					return nil, fmt.Errorf("%s: message %d: binary data is not base64: %w", e.Request.URL, i, err)
				}
				rm.Data = b
			default:
				continue // control frames, when a tool records them, are not replayed
			}
			if math.IsNaN(m.Time) || math.IsInf(m.Time, 0) || math.Abs(m.Time) > 1e10 {
				return nil, fmt.Errorf("%s: message %d: bad time", e.Request.URL, i)
			}
			rm.Offset = time.Duration(m.Time * float64(time.Second)) // made relative below
			msgs = append(msgs, rm)
		}
		return relativize(msgs)
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("no WebSocket entry with _webSocketMessages (export the HAR from the Network tab after the socket exchanged messages; Chrome and Firefox include the frames)")
	}
	return nil, fmt.Errorf("no WebSocket entry with messages has a URL containing %q; the HAR has %s", urlContains, strings.Join(seen, ", "))
}

// ParseTranscript reads JSON lines, one message per line:
//
//	{"t":0.5,"dir":"send","data":"{\"op\":\"join\"}"}
//	{"t":0.52,"dir":"receive","data":"{\"op\":\"joined\"}"}
//	{"t":1.0,"dir":"send","opcode":2,"data":"AAEC"}
//
// t is seconds from any origin; dir is send or receive; opcode 2 (or
// "binary":true) marks base64 binary data. Blank lines and lines starting
// with # are skipped.
func ParseTranscript(data []byte) ([]ReplayMessage, error) {
	var msgs []ReplayMessage
	for n, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		var m struct {
			T      *float64 `json:"t"`
			Dir    string   `json:"dir"`
			Opcode int      `json:"opcode"`
			Binary bool     `json:"binary"`
			Data   *string  `json:"data"`
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("line %d: %v (want {\"t\":SECONDS,\"dir\":\"send\",\"data\":\"…\"})", n+1, err)
		}
		if m.T == nil || m.Data == nil {
			return nil, fmt.Errorf("line %d: t and data are required", n+1)
		}
		if math.IsNaN(*m.T) || math.IsInf(*m.T, 0) || math.Abs(*m.T) > 1e10 {
			return nil, fmt.Errorf("line %d: bad time %v", n+1, *m.T)
		}
		rm := ReplayMessage{Offset: time.Duration(*m.T * float64(time.Second)), Opcode: 1, Data: []byte(*m.Data)}
		switch m.Dir {
		case "send":
			rm.Dir = DirSend
		case "receive", "recv":
			rm.Dir = DirReceive
		default:
			return nil, fmt.Errorf("line %d: dir %q (want send or receive)", n+1, m.Dir)
		}
		if m.Opcode == 2 || m.Binary {
			b, err := base64.StdEncoding.DecodeString(*m.Data)
			if err != nil {
				return nil, fmt.Errorf("line %d: binary data is not base64: %w", n+1, err)
			}
			rm.Opcode, rm.Data = 2, b
		} else if m.Opcode != 0 && m.Opcode != 1 {
			return nil, fmt.Errorf("line %d: opcode %d (want 1 text or 2 binary)", n+1, m.Opcode)
		}
		msgs = append(msgs, rm)
	}
	return relativize(msgs)
}

// relativize sorts by time and makes offsets count from the first message.
func relativize(msgs []ReplayMessage) ([]ReplayMessage, error) {
	if len(msgs) == 0 {
		return nil, fmt.Errorf("the capture has no text or binary messages")
	}
	sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].Offset < msgs[j].Offset })
	t0 := msgs[0].Offset
	for i := range msgs {
		msgs[i].Offset -= t0
	}
	return msgs, nil
}
