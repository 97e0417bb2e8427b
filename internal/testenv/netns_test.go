package testenv

import (
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
)

// Two namespaces: each address is reachable from the root namespace
// through its own pair, a listener opened in one namespace is served
// there, and everything is gone after the test.
func TestNetNamespaces(t *testing.T) {
	var names []string
	var links []string
	t.Run("use", func(t *testing.T) {
		nss := NetNamespaces(t, 2)
		if nss[0].Addr == nss[1].Addr || !netnsRange.Contains(nss[0].Addr) || !netnsRange.Contains(nss[1].Addr) {
			t.Fatalf("addresses %v, %v", nss[0].Addr, nss[1].Addr)
		}
		ln, err := nss[1].Listen(netip.AddrPortFrom(nss[1].Addr, 8080).String())
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err == nil {
				_, _ = io.WriteString(c, "hello from "+nss[1].Name)
				c.Close()
			}
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(c)
		c.Close()
		if string(b) != "hello from "+nss[1].Name {
			t.Fatalf("read %q", b)
		}
		// The root namespace does not hold the address: the listener
		// is in the namespace, not here.
		if l, err := net.Listen("tcp", netip.AddrPortFrom(nss[0].Addr, 0).String()); err == nil {
			l.Close()
			t.Fatalf("%v is bindable in the root namespace", nss[0].Addr)
		}
		for _, ns := range nss {
			names, links = append(names, ns.Name), append(links, ns.Link)
		}
	})
	for i := range names {
		if _, err := os.Stat("/run/netns/" + names[i]); err == nil {
			t.Errorf("namespace %s left behind", names[i])
		}
		if _, err := net.InterfaceByName(links[i]); err == nil {
			t.Errorf("link %s left behind", links[i])
		}
	}
}
