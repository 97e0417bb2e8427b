package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"metacircular.net/mcp/internal/testenv"
)

// BenchmarkAgentRSS runs the real binary (go build ./cmd/mcp) as `mcp
// agent` with 0 and with N small services deployed (hello containers,
// one image; N is MCP_BENCH_SERVICES, default 50), waits until everything
// runs and the agent has been idle for MCP_BENCH_IDLE seconds (default
// 10), and reports its VmRSS (and the peak, VmHWM) from /proc. There is no
// raw counterpart: this is an absolute number. Run it with -benchtime=1x.
func BenchmarkAgentRSS(b *testing.B) {
	skipShort(b)
	address, _ := testenv.Containerd(b)
	registry := testenv.Registry(b)
	img := testenv.TestImage(b, registry, testenv.UniqueRepo("bench/rss"), "v1")
	bin := buildMCP(b)
	idle := time.Duration(envInt(b, "MCP_BENCH_IDLE", 10)) * time.Second
	for _, count := range []int{0, envInt(b, "MCP_BENCH_SERVICES", 50)} {
		b.Run(fmt.Sprintf("services=%d", count), func(b *testing.B) {
			var rss, hwm int
			for b.Loop() {
				rss, hwm = agentRSS(b, bin, address, registry, img, count, idle)
			}
			b.ReportMetric(float64(rss)/1024, "rss_MiB")
			b.ReportMetric(float64(hwm)/1024, "peak_MiB")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func buildMCP(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "mcp")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "metacircular.net/mcp/cmd/mcp")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// agentRSS deploys count services with the mcp binary, waits for idle and
// returns VmRSS and VmHWM in KiB.
func agentRSS(b *testing.B, bin, address, registry, img string, count int, idle time.Duration) (rss, hwm int) {
	b.Helper()
	n := newNode(b, address, registry, "")
	defer func() {
		if err := n.clean(); err != nil {
			b.Error(err)
		}
	}()
	n.repo.Commit(n.services(count, img), fmt.Sprintf("%d services", count))
	n.repo.Push()
	logf, err := os.Create(filepath.Join(n.dir, "agent.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "agent", "--config", n.writeConfig())
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t0 := time.Now()
	st := n.waitApplied(ctx, count, exited)
	b.Logf("%d services running after %v (last reconcile %v)", count, time.Since(t0).Round(time.Millisecond),
		st.LastReconcile.Finished.Sub(st.LastReconcile.Started).Round(time.Millisecond))
	select {
	case <-time.After(idle):
	case <-exited:
		b.Fatalf("agent exited\n%s", n.logTail())
	}
	return procStatus(b, cmd.Process.Pid, "VmRSS"), procStatus(b, cmd.Process.Pid, "VmHWM")
}

// procStatus reads a "Key: N kB" line of /proc/<pid>/status.
func procStatus(b *testing.B, pid int, key string) int {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && k == key {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				b.Fatalf("/proc/%d/status: %s: %q", pid, key, v)
			}
			return n
		}
	}
	b.Fatalf("/proc/%d/status: no %s", pid, key)
	return 0
}
