package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// NetNS is a network namespace made for one test: a simulated host with an
// address of its own, joined to the root namespace by a veth pair. Traffic
// to Addr from the root namespace goes over the pair into the namespace
// and nowhere else.
type NetNS struct {
	Name string     // as `ip netns` knows it
	Addr netip.Addr // the namespace's address (the simulated host's)
	Peer netip.Addr // the root namespace's end of the pair
	Link string     // the root namespace's interface
}

// netnsRange is where NetNamespaces takes addresses: 198.18.0.0/15, set
// aside for benchmarking (RFC 2544) and never routed, so a test address
// can never be someone's real one.
var netnsRange = netip.MustParsePrefix("198.18.0.0/15")

// NetNamespaces makes n network namespaces, each with a veth pair to the
// root namespace and one /30 of a free /24 in 198.18.0.0/15: the
// namespace's end gets the second address, the root's end the first. The
// names are unique per call, and the namespaces and links are deleted when
// the test ends, whatever its outcome. It needs root and `ip` (iproute2);
// without them the test is Missing.
func NetNamespaces(t testing.TB, n int) []*NetNS {
	t.Helper()
	if n < 1 || n > 60 {
		t.Fatalf("testenv: NetNamespaces: %d namespaces; 1-60 fit one /24", n)
	}
	if !isRoot() {
		Missing(t, "network namespaces need root (ip netns add)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		Missing(t, "`ip` is not installed (Debian package iproute2); network namespaces need it")
	}
	base, err := freeSlash24()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	id := RandomID(3)
	out := make([]*NetNS, 0, n)
	for i := range n {
		b := base.As4()
		b[3] = byte(4*i + 1)
		peer := netip.AddrFrom4(b)
		ns := &NetNS{
			Name: fmt.Sprintf("mcpt-%s-%d", id, i+1),
			Link: fmt.Sprintf("mcv%s-%d", id, i+1),
			Peer: peer,
			Addr: peer.Next(),
		}
		// Registered before it exists, so a half-made one is removed too.
		t.Cleanup(func() { ns.remove(t) })
		if err := ns.create(); err != nil {
			if strings.Contains(err.Error(), "Operation not permitted") {
				Missing(t, "cannot create network namespaces here: %v", err)
			}
			t.Fatalf("testenv: network namespace %s: %v", ns.Name, err)
		}
		out = append(out, ns)
	}
	return out
}

// freeSlash24 picks a /24 of netnsRange that no interface of the root
// namespace uses, so concurrent test runs do not collide.
func freeSlash24() (netip.Addr, error) {
	out, err := ip("-4", "-o", "addr", "show")
	if err != nil {
		return netip.Addr{}, err
	}
	for range 50 {
		a := netnsRange.Addr().As4()
		a[1] += byte(rand.IntN(2))
		a[2] = byte(rand.IntN(256))
		prefix := fmt.Sprintf(" %d.%d.%d.", a[0], a[1], a[2])
		if !strings.Contains(out, prefix) {
			return netip.AddrFrom4(a), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free /24 in %s", netnsRange)
}

func ip(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return string(b), fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

func (ns *NetNS) create() error {
	inner := ns.Link + "n"
	steps := [][]string{
		{"netns", "add", ns.Name},
		{"link", "add", ns.Link, "type", "veth", "peer", "name", inner},
		{"link", "set", inner, "netns", ns.Name},
		{"addr", "add", ns.Peer.String() + "/30", "dev", ns.Link},
		{"link", "set", ns.Link, "up"},
		{"-n", ns.Name, "addr", "add", ns.Addr.String() + "/30", "dev", inner},
		{"-n", ns.Name, "link", "set", inner, "up"},
		{"-n", ns.Name, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if _, err := ip(s...); err != nil {
			return err
		}
	}
	return nil
}

// remove deletes the namespace (which destroys the pair's inner end, and
// with it the outer one) and the outer link if it is still there.
//
// The kernel dismantles a namespace after `ip netns del` has returned, so
// the outer link can vanish at any moment of the check below: a link
// that is gone by the time it is deleted is what was wanted, not an error.
func (ns *NetNS) remove(t testing.TB) {
	if _, err := os.Stat("/run/netns/" + ns.Name); err == nil {
		if _, err := ip("netns", "del", ns.Name); err != nil {
			t.Errorf("testenv: %v", err)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := net.InterfaceByName(ns.Link); err != nil {
			return
		}
	}
	if out, err := ip("link", "del", ns.Link); err != nil && !strings.Contains(out, "Cannot find device") {
		t.Errorf("testenv: %v", err)
	}
}

// Listen opens a TCP listener inside the namespace (on its address, say).
// The socket belongs to the namespace for its whole life, whichever thread
// later accepts on it, so the caller serves it like any listener.
func (ns *NetNS) Listen(address string) (net.Listener, error) {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + ns.Name)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("enter network namespace %s: %w", ns.Name, err)
	}
	ln, lerr := net.Listen("tcp", address)
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays in the wrong namespace: leave it locked, so
		// the runtime ends it with this goroutine instead of reusing it.
		if ln != nil {
			ln.Close()
		}
		return nil, fmt.Errorf("leave network namespace %s: %w", ns.Name, err)
	}
	runtime.UnlockOSThread()
	return ln, lerr
}
