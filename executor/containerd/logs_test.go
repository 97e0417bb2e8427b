package containerd

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/internal/testenv"
)

func TestRotateLog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.log")
	write := func(s string) {
		if err := os.WriteFile(p, []byte(s), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	rotate := func(max int64, keep int) bool {
		t.Helper()
		ok, err := RotateLog(p, max, keep)
		if err != nil {
			t.Fatalf("RotateLog: %v", err)
		}
		return ok
	}
	write("one\n")
	if rotate(100, 2) {
		t.Fatal("rotated a file below the limit")
	}
	if !rotate(4, 2) || readFile(t, p) != "" || readFile(t, p+".1") != "one\n" {
		t.Fatal("first rotation")
	}
	write("two\n")
	rotate(4, 2)
	write("three\n")
	rotate(4, 2)
	if readFile(t, p+".1") != "three\n" || readFile(t, p+".2") != "two\n" {
		t.Fatalf(".1=%q .2=%q", readFile(t, p+".1"), readFile(t, p+".2"))
	}
	if _, err := os.Stat(p + ".3"); !os.IsNotExist(err) {
		t.Fatal("kept more than 2")
	}
	write("four\n")
	rotate(1, 0)
	if readFile(t, p) != "" || readFile(t, p+".1") != "three\n" {
		t.Fatal("keep 0 must only truncate")
	}
	if ok, err := RotateLog(filepath.Join(t.TempDir(), "missing"), 1, 1); ok || err != nil {
		t.Fatalf("missing file: %v %v", ok, err)
	}
}

// The shim keeps the file open: after copy-truncate its next lines must
// land at the start of the emptied file (O_APPEND), not after a hole.
func TestRotateLogsUnderARunningTask(t *testing.T) {
	reg := testenv.Registry(t)
	ref := testenv.TestImage(t, reg, testenv.UniqueRepo("ctrd/logs"), "v1")
	d := newDriver(t, plainHTTP(reg))
	ctx := t.Context()
	s, port := helloSpec(t, "hello.hello.0", ref, ensure(t, d, ref))
	s.Env = append(s.Env, "BEFORE=1", "AFTER=1") // /env/NAME answers 200 and is logged
	if err := d.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	httpGet(t, port, "/env/BEFORE", 15*time.Second)
	waitFor(t, 5*time.Second, "request logged", func() bool {
		b, _ := os.ReadFile(s.LogPath)
		return bytes.Contains(b, []byte("/env/BEFORE"))
	})

	if err := d.RotateLogs(ctx, 1, 3); err != nil {
		t.Fatalf("RotateLogs: %v", err)
	}
	if old := readFile(t, s.LogPath+".1"); !strings.Contains(old, "/env/BEFORE") {
		t.Fatalf("rotated copy lacks the old lines:\n%s", old)
	}
	httpGet(t, port, "/env/AFTER", 5*time.Second)
	waitFor(t, 5*time.Second, "request logged after rotation", func() bool {
		b, _ := os.ReadFile(s.LogPath)
		return bytes.Contains(b, []byte("/env/AFTER"))
	})
	cur, _ := os.ReadFile(s.LogPath)
	if bytes.IndexByte(cur, 0) >= 0 {
		t.Fatalf("log has a hole after truncation (shim not appending): %q", cur)
	}
	if bytes.Contains(cur, []byte("/env/BEFORE")) {
		t.Fatalf("old lines still in the live log:\n%s", cur)
	}
}
