package report

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var shots = flag.String("shots", "", "copy the headless-browser screenshots of the report pages into this directory, to look at")

// chromium returns the headless browser, failing the test when it is
// missing: the report's rendering is part of what the suite checks.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "/usr/bin/chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("chromium is missing: the HTML report is checked in a headless browser; install the Debian package chromium (scripts/test.sh does: need_apt chromium chromium)")
	return ""
}

// runChromium runs a headless Chromium that cannot reach the network: no
// background services, and every host name resolves to nothing, so the
// page's self-containment is what lets it render.
func runChromium(t *testing.T, bin string, args ...string) (stdout, stderr []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-default-apps", "--mute-audio",
		"--host-resolver-rules=MAP * ~NOTFOUND",
		"--user-data-dir=" + t.TempDir(),
	}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstderr:\n%s", bin, strings.Join(args, " "), err, errb.Bytes())
	}
	return out.Bytes(), errb.Bytes()
}

var (
	dataCharts     = regexp.MustCompile(`<html[^>]* data-charts="([^"]*)"`)
	dataChartCount = regexp.MustCompile(`<html[^>]* data-chart-count="([0-9]+)"`)
)

// TestChromiumRendersReport opens each report page in headless Chromium,
// offline, and checks from the DOM after scripts ran that every chart drew
// (the page's inline script sets data-charts="ok" only then), then takes a
// full-page screenshot and checks it is a PNG of the requested size.
func TestChromiumRendersReport(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	for _, pc := range pageCases {
		t.Run(pc.name, func(t *testing.T) {
			page := filepath.Join(dir, pc.name)
			if err := os.WriteFile(page, writePage(t, pc), 0o644); err != nil {
				t.Fatalf("writing page: %v", err)
			}
			url := "file://" + page

			dom, stderr := runChromium(t, bin, "--virtual-time-budget=5000", "--dump-dom", url)
			m := dataCharts.FindSubmatch(dom)
			if m == nil {
				t.Fatalf("the page's script did not run (no data-charts on <html>): a script error?\nstderr:\n%s\nDOM head:\n%.600s", stderr, dom)
			}
			if string(m[1]) != "ok" {
				t.Fatalf("charts not drawn in the browser: data-charts=%q", m[1])
			}
			n := dataChartCount.FindSubmatch(dom)
			if n == nil || string(n[1]) != strconv.Itoa(len(pc.figures)) {
				t.Fatalf("browser saw %s charts, want %d", n, len(pc.figures))
			}

			png := filepath.Join(dir, strings.TrimSuffix(pc.name, ".html")+".png")
			runChromium(t, bin, "--hide-scrollbars", "--window-size=1280,3000", "--screenshot="+png, url)
			w, h := pngSize(t, png)
			if w != 1280 || h != 3000 {
				t.Fatalf("screenshot is %dx%d, want 1280x3000", w, h)
			}
			if *shots != "" {
				data, _ := os.ReadFile(png)
				if err := os.WriteFile(filepath.Join(*shots, filepath.Base(png)), data, 0o644); err != nil {
					t.Fatalf("copying screenshot: %v", err)
				}
				if err := os.WriteFile(filepath.Join(*shots, pc.name), writePage(t, pc), 0o644); err != nil {
					t.Fatalf("copying page: %v", err)
				}
			}
		})
	}
}

// pngSize reads a PNG's width and height from its IHDR chunk.
func pngSize(t *testing.T, path string) (w, h int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if len(b) < 24 || string(b[:8]) != "\x89PNG\r\n\x1a\n" || string(b[12:16]) != "IHDR" {
		t.Fatalf("screenshot %s is not a PNG (%d bytes)", path, len(b))
	}
	return int(binary.BigEndian.Uint32(b[16:20])), int(binary.BigEndian.Uint32(b[20:24]))
}
