// Package testenv gives mcp's tests the real components they run against:
// a containerd daemon (with runc), an OCI registry, and test images built
// from the hello program (internal/hello) and pushed to that registry.
//
// Each component comes from, in order:
//
//  1. an environment variable naming one that is already running
//     (MCP_TEST_CONTAINERD, MCP_TEST_REGISTRY: .ci/run sets them);
//  2. a private daemon this package starts for the test binary, when the
//     test runs as root and the Debian binaries are installed; it is shared
//     by the tests of one package and stopped by Main;
//  3. otherwise the test is skipped, saying what is missing, or fails when
//     MCP_TEST_REQUIRE=1 (CI sets it, so a missing component can never turn
//     into a silently green run).
//
// A package that uses Containerd or Registry must therefore have
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// Tests that must stop, restart or wipe a daemon (crash and recovery tests)
// start their own with StartContainerd or StartRegistry instead of sharing.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Environment variables read by this package.
const (
	// EnvContainerd is the path of the socket of a running containerd.
	EnvContainerd = "MCP_TEST_CONTAINERD"
	// EnvRegistry is the host:port of a running plain-HTTP OCI registry
	// without authentication.
	EnvRegistry = "MCP_TEST_REGISTRY"
	// EnvRequire, when "1", makes a missing component fail the test
	// instead of skipping it.
	EnvRequire = "MCP_TEST_REQUIRE"
)

// hint is how to get the components, appended to every skip or failure.
const hint = "run the tests as root with the Debian packages containerd, runc and docker-registry installed, or run .ci/run"

// Required reports whether missing components must fail tests (EnvRequire=1).
func Required() bool { return os.Getenv(EnvRequire) == "1" }

// Missing stops the test because a component it needs is not there: a skip
// normally, a failure when MCP_TEST_REQUIRE=1. The message should say what
// is missing and how to get it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatalf("%s (%s=1, so this is a failure, not a skip)", msg, EnvRequire)
	}
	t.Skip(msg)
}

var (
	mainMu     sync.Mutex
	mainActive bool
	atExit     []func()
)

// Main runs the package's tests, then stops every daemon this package
// started for the test binary and removes its files. Call it from TestMain.
// cleanup runs after the tests too, before the daemons stop: for what the
// calling package keeps for the whole test binary (a built binary, say),
// since Main exits the process and deferred calls would never run.
func Main(m *testing.M, cleanup ...func()) {
	mainMu.Lock()
	mainActive = true
	mainMu.Unlock()

	code := m.Run()

	mainMu.Lock()
	fns := append(atExit, cleanup...)
	atExit = nil
	mainMu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
	os.Exit(code)
}

// onExit registers f to run when Main returns. Shared daemons need it: a
// package without testenv.Main would leak them, so that is a test failure.
func onExit(t testing.TB, f func()) bool {
	t.Helper()
	mainMu.Lock()
	defer mainMu.Unlock()
	if !mainActive {
		t.Fatal("testenv: this package starts a shared daemon, so it needs " +
			"func TestMain(m *testing.M) { testenv.Main(m) } to stop it after the tests")
		return false
	}
	atExit = append(atExit, f)
	return true
}

// RandomID returns n random bytes in hex, for names that must not collide
// across tests, packages and runs.
func RandomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// FreePort returns a TCP port that was free a moment ago, on 127.0.0.1
// and on every address. The port is released before returning, so another
// process may take it: use it at once, and retry on a bind error where it
// matters.
//
// It comes from freePorts, below both the kernel's ephemeral range (where
// any outgoing connection on the machine may take it as its source port
// before the server the test starts binds it) and mcp's default lease
// range (where an agent of a concurrent test may lease it).
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	return p
}

// freePorts is where FreePort picks: 6000–9999.
const freePortsFirst, freePortsN = 6000, 4000

func freePort() (int, error) {
	for range 200 {
		p := freePortsFirst + mrand.IntN(freePortsN)
		if portFree(p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port in %d-%d after 200 tries", freePortsFirst, freePortsFirst+freePortsN-1)
}

// portFree says whether TCP port p can be bound on 127.0.0.1 and on the
// wildcard addresses (a container on the host network listens on either).
func portFree(p int) bool {
	for _, addr := range []string{"127.0.0.1", ""} {
		ln, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(p)))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}

// stopProcess ends a daemon a test started, by its PID: sig, then SIGKILL
// once grace has passed; it returns when the process has been waited for
// (done, closed by the goroutine that waits for cmd).
func stopProcess(cmd *exec.Cmd, done <-chan struct{}, sig syscall.Signal, grace time.Duration) {
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
}

// isRoot reports whether the test runs as root, which containerd needs.
func isRoot() bool { return os.Geteuid() == 0 }
