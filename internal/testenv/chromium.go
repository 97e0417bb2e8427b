package testenv

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// EnvChromium overrides where the headless browser is found.
const EnvChromium = "MCP_TEST_CHROMIUM"

// Browser runs Debian's Chromium headless, one process per page, for
// end-to-end tests of pages the project serves on loopback.
type Browser struct {
	t    testing.TB
	path string
}

// Chromium returns the headless browser, or skips (fails under
// MCP_TEST_REQUIRE=1) when it is not installed: .ci/run installs Debian's
// chromium.
func Chromium(t testing.TB) *Browser {
	t.Helper()
	path := os.Getenv(EnvChromium)
	if path == "" {
		for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
			if _, err := os.Stat(p); err == nil {
				path = p
				break
			}
		}
	}
	if path == "" {
		Missing(t, "chromium is not installed (apt-get install chromium, or set %s)", EnvChromium)
	}
	return &Browser{t: t, path: path}
}

// run starts Chromium on url with a fresh profile and the flags that keep
// it off the network (only the page's own loopback address is reached)
// and returns its stdout.
func (b *Browser) run(ctx context.Context, url string, extra ...string) []byte {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
		"--user-data-dir=" + b.t.TempDir(),
	}
	args = append(append(args, extra...), url)
	cmd := exec.CommandContext(ctx, b.path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		b.t.Fatalf("chromium %s: %v\n%s", strings.Join(extra, " "), err, lastChars(stderr.String(), 2000))
	}
	return stdout.Bytes()
}

// DOM loads url and returns the document as rendered (after parsing and
// layout, as a person's browser would hold it).
func (b *Browser) DOM(ctx context.Context, url string) string {
	b.t.Helper()
	return string(b.run(ctx, url, "--dump-dom"))
}

// Screenshot loads url in a width×height window and returns the PNG.
func (b *Browser) Screenshot(ctx context.Context, url string, width, height int) []byte {
	b.t.Helper()
	out := b.t.TempDir() + "/shot.png"
	b.run(ctx, url, fmt.Sprintf("--window-size=%d,%d", width, height), "--screenshot="+out)
	data, err := os.ReadFile(out)
	if err != nil {
		b.t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	return data
}

// PNGStats decodes a PNG and counts its distinct colours and the share of
// pixels that are not (near) white, to tell a rendered page from a blank
// one.
func PNGStats(data []byte) (colours int, nonWhite float64, err error) {
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return 0, 0, fmt.Errorf("decode screenshot: %w", err)
	}
	bounds := img.Bounds()
	seen := map[uint32]bool{}
	var dark, total int
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			seen[(r>>8)<<16|(g>>8)<<8|b>>8] = true
			if r>>8 < 240 || g>>8 < 240 || b>>8 < 240 {
				dark++
			}
			total++
		}
	}
	if total == 0 {
		return 0, 0, fmt.Errorf("screenshot is empty (%v)", bounds)
	}
	return len(seen), float64(dark) / float64(total), nil
}

func lastChars(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
