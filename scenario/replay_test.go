package scenario

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

func TestLoadHARSample(t *testing.T) {
	msgs, err := LoadHAR("../scripts/scenarios/sample.har")
	if err != nil {
		t.Fatalf("LoadHAR: %v", err)
	}
	if len(msgs) != 10 {
		t.Fatalf("%d messages, want the 10 frames of the sample", len(msgs))
	}
	first, bin, last := msgs[0], msgs[5], msgs[9]
	if first.Offset != 0 || first.Dir != DirSend || first.Opcode != 1 || !strings.Contains(string(first.Data), `"op":"hello"`) {
		t.Fatalf("first message %+v", first)
	}
	if bin.Opcode != 2 || string(bin.Data) != "\x01\x02\x7f\x80\xff" || bin.Dir != DirSend {
		t.Fatalf("binary message %+v (HAR carries binary frames in base64)", bin)
	}
	if d := last.Offset - 3010*time.Millisecond; d > time.Millisecond || d < -time.Millisecond {
		t.Fatalf("last offset %v, want 3.01s", last.Offset)
	}
	sends := 0
	for i, m := range msgs {
		if i > 0 && m.Offset < msgs[i-1].Offset {
			t.Fatalf("offsets not sorted at %d", i)
		}
		if m.Dir == DirSend {
			sends++
		}
	}
	if sends != 5 {
		t.Fatalf("%d sends, want 5", sends)
	}
}

func TestParseHAR(t *testing.T) {
	har := `{"log":{"entries":[
	  {"request":{"url":"https://x/page"}},
	  {"_resourceType":"websocket","request":{"url":"wss://x/a"},"_webSocketMessages":[{"type":"send","time":10.5,"opcode":1,"data":"A"}]},
	  {"_resourceType":"websocket","request":{"url":"wss://x/b"},"_webSocketMessages":[
	    {"type":"receive","time":20.25,"opcode":1,"data":"late"},
	    {"type":"send","time":20,"opcode":1,"data":"B"},
	    {"type":"send","time":20.1,"opcode":9,"data":""}]}]}}`
	cases := []struct {
		url   string
		first string
		n     int
		err   string
	}{
		{"", "A", 1, ""},
		{"/b", "B", 2, ""},
		{"/c", "", 0, `no WebSocket entry with messages has a URL containing "/c"; the HAR has wss://x/a, wss://x/b`},
	}
	for _, c := range cases {
		msgs, err := ParseHAR([]byte(har), c.url)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("url %q: error %v, want %q", c.url, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("url %q: %v", c.url, err)
		}
		if len(msgs) != c.n || string(msgs[0].Data) != c.first || msgs[0].Offset != 0 {
			t.Fatalf("url %q: %+v", c.url, msgs)
		}
	}
	for _, bad := range []struct{ doc, err string }{
		{`{"log":{"entries":[]}}`, "no WebSocket entry"},
		{`not json`, "not a HAR file"},
		{`{"log":{"entries":[{"request":{"url":"ws://x"},"_webSocketMessages":[{"type":"sent","time":1,"opcode":1,"data":""}]}]}}`, `type "sent"`},
		{`{"log":{"entries":[{"request":{"url":"ws://x"},"_webSocketMessages":[{"type":"send","time":1,"opcode":2,"data":"!!"}]}]}}`, "not base64"},
		{`{"log":{"entries":[{"request":{"url":"ws://x"},"_webSocketMessages":[]}]}}`, "no text or binary messages"},
	} {
		if _, err := ParseHAR([]byte(bad.doc), ""); err == nil || !strings.Contains(err.Error(), bad.err) {
			t.Fatalf("ParseHAR(%s) error %v, want %q", bad.doc, err, bad.err)
		}
	}
}

func TestParseTranscript(t *testing.T) {
	doc := `# a transcript
{"t":5.5,"dir":"send","data":"{\"op\":\"join\"}"}

{"t":5.75,"dir":"receive","data":"joined"}
{"t":6,"dir":"send","opcode":2,"data":"AAEC"}
{"t":6.5,"dir":"send","binary":true,"data":"/w=="}
`
	msgs, err := ParseTranscript([]byte(doc))
	if err != nil {
		t.Fatalf("ParseTranscript: %v", err)
	}
	want := []ReplayMessage{
		{0, DirSend, 1, []byte(`{"op":"join"}`)},
		{250 * time.Millisecond, DirReceive, 1, []byte("joined")},
		{500 * time.Millisecond, DirSend, 2, []byte{0, 1, 2}},
		{time.Second, DirSend, 2, []byte{0xff}},
	}
	if len(msgs) != len(want) {
		t.Fatalf("%d messages, want %d", len(msgs), len(want))
	}
	for i, w := range want {
		m := msgs[i]
		if m.Offset != w.Offset || m.Dir != w.Dir || m.Opcode != w.Opcode || string(m.Data) != string(w.Data) {
			t.Fatalf("message %d = %+v, want %+v", i, m, w)
		}
	}
	for _, bad := range []struct{ doc, err string }{
		{`{"t":1,"dir":"up","data":"x"}`, `line 1: dir "up"`},
		{"\n" + `{"t":1,"dir":"send"}`, "line 2: t and data are required"},
		{`{"t":1,"dir":"send","data":"x","extra":1}`, `unknown field "extra"`},
		{`{"t":1,"dir":"send","opcode":8,"data":"x"}`, "opcode 8"},
		{`[1]`, "line 1:"},
		{"", "no text or binary messages"},
	} {
		if _, err := ParseTranscript([]byte(bad.doc)); err == nil || !strings.Contains(err.Error(), bad.err) {
			t.Fatalf("ParseTranscript(%q) error %v, want %q", bad.doc, err, bad.err)
		}
	}
}

func TestLoadReplayDetectsFormat(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "t.jsonl"), `{"t":0,"dir":"send","data":"x"}`)
	if msgs, err := LoadReplay(filepath.Join(dir, "t.jsonl"), ""); err != nil || len(msgs) != 1 {
		t.Fatalf("transcript: %v %v", msgs, err)
	}
	if _, err := LoadReplay(filepath.Join(dir, "t.jsonl"), "/x"); err == nil || !strings.Contains(err.Error(), "url_contains applies to HAR files") {
		t.Fatalf("url_contains on a transcript: %v", err)
	}
	if msgs, err := LoadReplay("../scripts/scenarios/sample.har", "/socket"); err != nil || len(msgs) != 10 {
		t.Fatalf("HAR: %d %v", len(msgs), err)
	}
	if _, err := LoadReplay(dir, ""); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("directory: %v", err)
	}
}

func TestStamp(t *testing.T) {
	cases := []struct {
		msg  string
		conn uint64
		seq  uint64
		ns   int64
		ok   bool
	}{
		{`{"wsl-stamp":"7-42-1700000000123456789","a":1}`, 7, 42, 1700000000123456789, true},
		{`wsl-stamp:1-2-3 hello`, 1, 2, 3, true},
		{`{"from":"x","msg":"{\"wsl-stamp\":\"5-6-7\",\"b\":2}"}`, 5, 6, 7, true},
		{`{"wsl-stamp":"bogus","inner":{"wsl-stamp":"1-1-9"}}`, 1, 1, 9, true},
		{`wsl-stamp:1-2-`, 0, 0, 0, false},
		{`wsl-stamp:1-2-99999999999999999999`, 0, 0, 0, false},
		{`no stamp`, 0, 0, 0, false},
		{``, 0, 0, 0, false},
	}
	for _, c := range cases {
		conn, seq, ns, ok := ParseStampID([]byte(c.msg))
		if conn != c.conn || seq != c.seq || ns != c.ns || ok != c.ok {
			t.Fatalf("ParseStampID(%q) = %d,%d,%d,%v; want %d,%d,%d,%v", c.msg, conn, seq, ns, ok, c.conn, c.seq, c.ns, c.ok)
		}
		if ns2, ok2 := ParseStamp([]byte(c.msg)); ns2 != c.ns || ok2 != c.ok {
			t.Fatalf("ParseStamp(%q) = %d,%v", c.msg, ns2, ok2)
		}
	}
	// Sends with stamps round-trip, for text and JSON payloads, empty objects included.
	now := time.Unix(1700000000, 5)
	for _, step := range []string{`- send: {text: hello, stamp: true}`, `- send: {json: {}, stamp: true}`, `- send: {json: '{ "a" : [1] }', stamp: true}`, `- send: {hex: '00', stamp: true}`} {
		p := mustParse(t, withSteps(step))
		out := p.Flows[0].Steps[0].Send.Append(nil, &Vars{Conn: 3, Seq: 4, Now: now})
		conn, seq, ns, ok := ParseStampID(out)
		if !ok || conn != 3 || seq != 4 || ns != now.UnixNano() {
			t.Fatalf("%s: %q parses as %d,%d,%d,%v", step, out, conn, seq, ns, ok)
		}
		if strings.Contains(step, "json") && !jsonValid(out) {
			t.Fatalf("%s: stamped JSON is invalid: %s", step, out)
		}
	}
}
