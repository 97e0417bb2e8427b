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

	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
)

// buildMCP builds the real binary (go build ./cmd/mcp) once per benchmark.
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

// agentProc is `mcp agent` running as a child process on a node.
type agentProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	logf   *os.File
}

// startAgent runs bin as `mcp agent` with the node's configuration, its
// output appended to the node's agent.log.
func (n *node) startAgent(bin string) *agentProc {
	n.b.Helper()
	logf, err := os.OpenFile(filepath.Join(n.dir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		n.b.Fatal(err)
	}
	cmd := exec.Command(bin, "agent", "--config", n.writeConfig())
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		n.b.Fatal(err)
	}
	p := &agentProc{cmd: cmd, exited: make(chan struct{}), logf: logf}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p
}

func (p *agentProc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM (the agent leaves its workloads running) and waits,
// killing it after 10s.
func (p *agentProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.logf.Close()
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

// clockTick is USER_HZ, the unit of the CPU times in /proc/<pid>/stat; it
// is 100 on every Linux architecture Go supports.
const clockTick = 100

// procCPU returns the CPU time a process has used, user plus system, its
// own and that of the children it waited for (utime, stime, cutime and
// cstime of /proc/<pid>/stat). ok is false when the process is gone.
func procCPU(pid int) (d time.Duration, ok bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) may hold spaces; the fields after its
	// closing parenthesis start at field 3 (state).
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return 0, false
	}
	var ticks int64
	for _, k := range []int{11, 12, 13, 14} { // fields 14-17: utime stime cutime cstime
		v, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			return 0, false
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTick, true
}

// cpuOf sums procCPU over pids; processes that are gone count zero.
func cpuOf(pids []int) time.Duration {
	var d time.Duration
	for _, p := range pids {
		c, _ := procCPU(p)
		d += c
	}
	return d
}

// containerdPIDs finds the containerd daemon listening on address (the
// process holding the listening socket, found through /proc/net/unix and
// the processes' file descriptors) and the shims serving it (a
// containerd-shim* executable whose command line names address). Either
// may be missing when /proc does not say; the caller reports what it
// found.
func containerdPIDs(address string) (daemon int, shims []int) {
	inode := ""
	if raw, err := os.ReadFile("/proc/net/unix"); err == nil {
		for line := range strings.SplitSeq(string(raw), "\n") {
			f := strings.Fields(line)
			if len(f) >= 8 && f[7] == address {
				inode = f[6]
				break
			}
		}
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, nil
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		base := filepath.Base(exe)
		switch {
		case strings.HasPrefix(base, "containerd-shim"):
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if strings.Contains("\x00"+string(cmdline)+"\x00", "\x00"+address+"\x00") {
				shims = append(shims, pid)
			}
		case base == "containerd" && inode != "" && daemon == 0:
			fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
			for _, fd := range fds {
				if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); l == "socket:["+inode+"]" {
					daemon = pid
					break
				}
			}
		}
	}
	return daemon, shims
}

// taskPIDs lists every task of namespace ns with the raw containerd client:
// container ID to PID, running tasks only.
func taskPIDs(ctx context.Context, c *client.Client, ns string) (map[string]uint32, error) {
	resp, err := c.TaskService().List(namespaces.WithNamespace(ctx, ns), &tasks.ListTasksRequest{})
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint32, len(resp.Tasks))
	for _, t := range resp.Tasks {
		if t.Status == task.Status_RUNNING {
			out[t.ID] = t.Pid
		}
	}
	return out, nil
}
