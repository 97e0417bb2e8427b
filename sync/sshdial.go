package gitsync

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"golang.org/x/net/proxy"
)

// go-git's ssh transport bounds only the TCP connect: the ssh handshake and
// the session after it ignore the caller's context, so a server that
// accepts and then stalls would hang a poll forever. go-git does accept a
// proxy URL for ssh and builds the dialer from x/net/proxy's registry, so
// mcp registers a dialer scheme there whose connections are closed when the
// operation's context ends. Each operation gets a one-time token (the URL
// host) that maps to its context.

const ctxDialScheme = "mcp-ctx-dial"

// ctxDials maps a token to the context of the operation using it.
var ctxDials sync.Map

// init registers the scheme. x/net/proxy's registry is an unlocked map, so
// writing it in init — before any goroutine can read it — is the only
// race-free moment.
func init() {
	proxy.RegisterDialerType(ctxDialScheme, func(u *url.URL, _ proxy.Dialer) (proxy.Dialer, error) {
		v, ok := ctxDials.Load(u.Host)
		if !ok {
			return nil, fmt.Errorf("ssh dial: no operation registered for token %q", u.Host)
		}
		return ctxDialer{ctx: v.(context.Context)}, nil
	})
}

// withCtxDial returns proxy options that tie the ssh connection to ctx,
// and a function to call when the operation is over.
func withCtxDial(ctx context.Context) (transport.ProxyOptions, func()) {
	b := make([]byte, 16)
	rand.Read(b)
	token := hex.EncodeToString(b)
	ctxDials.Store(token, ctx)
	return transport.ProxyOptions{URL: ctxDialScheme + "://" + token}, func() { ctxDials.Delete(token) }
}

type ctxDialer struct{ ctx context.Context }

func (d ctxDialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(d.ctx, network, addr)
}

func (d ctxDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopDial := context.AfterFunc(d.ctx, cancel)
	defer stopDial()
	conn, err := nd.DialContext(dctx, network, addr)
	if err != nil {
		if e := d.ctx.Err(); e != nil {
			return nil, fmt.Errorf("%w: %w", e, err)
		}
		return nil, err
	}
	// Closing the connection is what unblocks the handshake and session
	// reads; after Close the hook is dropped.
	stop := context.AfterFunc(d.ctx, func() { conn.Close() })
	return &ctxConn{Conn: conn, stop: stop}, nil
}

type ctxConn struct {
	net.Conn
	stop func() bool
}

func (c *ctxConn) Close() error {
	c.stop()
	return c.Conn.Close()
}
