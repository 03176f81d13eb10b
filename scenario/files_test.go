package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFilesConfined: payload, data and capture files must lie in the
// scenario's directory (or below), symlinks resolved, unless
// AllowOutsideFiles; a refusal is a file:line:col error whose hint names
// --allow-outside-files; Plan.Files lists what was read and where it lies.
func TestFilesConfined(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "s")
	write := func(path, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "ok.bin"), "inside")
	write(filepath.Join(dir, "sub", "in.bin"), "below")
	write(filepath.Join(root, "secret.txt"), "SECRET")
	write(filepath.Join(root, "users.csv"), "name\nalice\n")
	write(filepath.Join(root, "cap.jsonl"), `{"t":0,"dir":"send","data":"x"}`+"\n")
	for link, to := range map[string]string{"out.bin": "../secret.txt", "in-link.bin": "ok.bin", "subdir": "..", "abs.bin": filepath.Join(root, "secret.txt")} {
		if err := os.Symlink(to, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	big, err := os.Create(filepath.Join(dir, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := big.Truncate(MaxPayloadFile + 1); err != nil {
		t.Fatal(err)
	}
	big.Close()

	load := func(allow bool, src string) (*Plan, error) {
		name := filepath.Join(dir, "t.yaml")
		write(name, src)
		return LoadWith(name, Options{AllowOutsideFiles: allow})
	}
	send := func(file string) string { return withSteps("- send: {file: " + file + "}") }
	const at = ":6:22: " // the file name's position in send()
	for _, tc := range []struct {
		name, src string
		want      string // substring of the error, "" = loads
		data      string // the payload read, when it loads
	}{
		{"inside", send("ok.bin"), "", "inside"},
		{"below", send("sub/in.bin"), "", "below"},
		{"symlink staying inside", send("in-link.bin"), "", "inside"},
		{"dot dot", send("../secret.txt"), at + `send.file "../secret.txt" is outside the scenario's directory ` + dir, ""},
		{"dot dot back in", send("../s/ok.bin"), "", "inside"},
		{"absolute", send(filepath.Join(root, "secret.txt")), at + "send.file", ""},
		{"absolute inside", send(filepath.Join(dir, "ok.bin")), "", "inside"},
		{"symlink out", send("out.bin"), at + `send.file "out.bin" is outside`, ""},
		{"absolute symlink out", send("abs.bin"), at + `send.file "abs.bin" is outside`, ""},
		{"through a symlinked directory", send("subdir/secret.txt"), at + `send.file "subdir/secret.txt" is outside`, ""},
		{"too large", send("big.bin"), "more than the 16 MiB", ""},
		{"data", strings.Replace(withSteps("- send: x"), "flows:", "data: ../users.csv\nflows:", 1), `:3:7: data "../users.csv" is outside`, ""},
		{"replay", withSteps("- replay: ../cap.jsonl"), `:6:17: replay.file "../cap.jsonl" is outside`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := load(false, tc.src)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got := string(p.Flows[0].Steps[0].Send.Append(nil, &Vars{})); got != tc.data {
					t.Fatalf("payload %q, want %q", got, tc.data)
				}
				if len(p.Files) != 1 || p.Files[0].Outside || p.Files[0].Kind != "send.file" || p.Files[0].Size != int64(len(tc.data)) {
					t.Fatalf("Files = %+v", p.Files)
				}
				return
			}
			var list ErrorList
			if err == nil || !errors.As(err, &list) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(tc.want, "outside") && !strings.Contains(list[0].Hint, "--allow-outside-files") {
				t.Fatalf("hint %q does not name --allow-outside-files", list[0].Hint)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("the error shows the file's content: %v", err)
			}
		})
	}

	// Allowed, the outside files are read and said to be outside.
	p, err := load(true, strings.Replace(withSteps("- send: {file: ../secret.txt}", "- send: {file: ok.bin}"), "flows:", "data: ../users.csv\nflows:", 1))
	if err != nil {
		t.Fatalf("AllowOutsideFiles: %v", err)
	}
	if got := string(p.Flows[0].Steps[0].Send.Append(nil, &Vars{})); got != "SECRET" {
		t.Fatalf("payload %q", got)
	}
	var kinds []string
	for _, f := range p.Files {
		kinds = append(kinds, f.Kind+map[bool]string{true: " outside", false: " inside"}[f.Outside])
	}
	if strings.Join(kinds, ", ") != "data outside, send.file outside, send.file inside" {
		t.Fatalf("Files: %s", strings.Join(kinds, ", "))
	}
	// A CA file is read, never sent: it may lie outside, and is listed so.
	ca := strings.Replace(withSteps("- send: x"), "flows:", "tls: {ca_file: ../secret.txt}\nflows:", 1)
	if p, err = load(false, ca); err != nil {
		t.Fatalf("ca_file outside: %v", err)
	}
	if len(p.Files) != 1 || p.Files[0].Kind != "tls.ca_file" || !p.Files[0].Outside {
		t.Fatalf("Files = %+v", p.Files)
	}
}
