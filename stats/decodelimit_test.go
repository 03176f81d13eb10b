package stats

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadResultFileMax: a file within the limit decodes as DecodeResult
// does; a larger one is refused before reading; a reader that goes on past
// the limit (a FIFO, say) fails with ErrTooLarge; bad documents are refused.
func TestReadResultFileMax(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	if err := EncodeResult(&buf, sampleResult(t)); err != nil {
		t.Fatal(err)
	}
	doc := buf.Bytes()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", doc)
	r, err := ReadResultFileMax(good, int64(len(doc)))
	if err != nil {
		t.Fatalf("ReadResultFileMax at the exact size: %v", err)
	}
	want, _ := DecodeResult(bytes.NewReader(doc))
	if string(encode(t, r)) != string(encode(t, want)) {
		t.Fatalf("ReadResultFileMax and DecodeResult disagree")
	}
	if _, err := ReadResultFileMax(good, int64(len(doc))-1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("one byte over: %v, want ErrTooLarge", err)
	}
	// The limited reader alone, as for a file whose size stat cannot tell.
	lr := &limitReader{r: bytes.NewReader(doc), left: 100, max: 100, path: "pipe"}
	if _, err := decodeResultStream(lr); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "pipe goes on past 100 bytes") {
		t.Fatalf("stream past the limit: %v", err)
	}
	for _, tc := range []struct{ name, doc, want string }{
		{"no schema", `{"tool":"wsload"}`, `not a wsload result: no "schema" field`},
		{"other schema", `{"schema":"wsload.result/v9","latency":{"rtt":5}}`, `unsupported result schema "wsload.result/v9"`},
		{"two values", string(doc) + `{}`, "more than one JSON value"},
		{"not JSON", "hello", "decoding result"},
		{"bad hdr", strings.Replace(string(doc), `"hdr": "HISTF`, `"hdr": "xISTF`, 1), "invalid result"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadResultFileMax(write(tc.name+".json", []byte(tc.doc)), DefaultMaxInput)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
