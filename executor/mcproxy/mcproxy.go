// Package mcproxy drives mc-proxy, the platform's TLS proxy, through its
// gRPC admin API on a Unix socket.
//
// mc-proxy's protobuf names are not public: proto/mcproxy.proto defines
// them from the documented fields, and this file is the only one that maps
// them to executor.Route, so a correction touches the .proto (then
// `make proto`) and this file.
package mcproxy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"metacircular.net/mcp/executor"
	pb "metacircular.net/mcp/executor/mcproxy/proto"
	"metacircular.net/mcp/spec"
)

// DefaultSocket is where mc-proxy serves its admin API.
const DefaultSocket = "/srv/mc-proxy/mc-proxy.sock"

// Client is the mc-proxy router.
type Client struct {
	socket    string
	conn      *grpc.ClientConn
	admin     pb.ProxyAdminClient
	listeners []string
	timeout   time.Duration
}

var _ executor.Router = (*Client)(nil)

// Option configures a Client.
type Option func(*Client)

// WithListeners declares mc-proxy's listeners ("host:port" or ":port"): a
// route on another one is refused before it reaches mc-proxy.
func WithListeners(ls ...string) Option {
	return func(c *Client) { c.listeners = append(c.listeners, ls...) }
}

// WithTimeout bounds each call (default 10s).
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// New returns a client for the admin socket. gRPC connects lazily, so a
// proxy that is down fails the first call, not the agent's start.
func New(socket string, opts ...Option) (*Client, error) {
	// Plain gRPC: the socket's permissions (mode 0660, group) are the
	// access control, as mc-proxy documents.
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("mc-proxy at %s: %w", socket, err)
	}
	c := &Client{socket: socket, conn: conn, admin: pb.NewProxyAdminClient(conn), timeout: 10 * time.Second}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

func (c *Client) checkListener(l string) error {
	if len(c.listeners) == 0 {
		return nil
	}
	for _, have := range c.listeners {
		if have == l {
			return nil
		}
	}
	return fmt.Errorf("%w: mc-proxy has no listener %s (it listens on %s)", executor.ErrListener, l, strings.Join(c.listeners, ", "))
}

func (c *Client) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// Upsert adds or replaces a route (AddRoute is an upsert in mc-proxy).
func (c *Client) Upsert(ctx context.Context, r executor.Route) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if err := c.checkListener(r.Listener); err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	if _, err := c.admin.AddRoute(ctx, &pb.AddRouteRequest{Route: toProto(r)}); err != nil {
		return fmt.Errorf("mc-proxy at %s: add route %s: %w", c.socket, r.ID(), err)
	}
	return nil
}

// Remove deletes a route; absent is not an error.
func (c *Client) Remove(ctx context.Context, listener, hostname string) error {
	if err := c.checkListener(listener); err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	_, err := c.admin.RemoveRoute(ctx, &pb.RemoveRouteRequest{Listener: listener, Hostname: strings.ToLower(hostname)})
	if err != nil {
		return fmt.Errorf("mc-proxy at %s: remove route %s: %w", c.socket, executor.RouteID(listener, hostname), err)
	}
	return nil
}

// List returns every route mc-proxy serves, as it reports them.
func (c *Client) List(ctx context.Context) ([]executor.Route, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.admin.ListRoutes(ctx, &pb.ListRoutesRequest{})
	if err != nil {
		return nil, fmt.Errorf("mc-proxy at %s: list routes: %w", c.socket, err)
	}
	out := make([]executor.Route, 0, len(resp.GetRoutes()))
	for _, r := range resp.GetRoutes() {
		out = append(out, fromProto(r))
	}
	return out, nil
}

func toProto(r executor.Route) *pb.Route {
	m := pb.Mode_MODE_L4
	if r.Mode == spec.ModeL7 {
		m = pb.Mode_MODE_L7
	}
	return &pb.Route{
		Listener: r.Listener, Hostname: r.Hostname, Backend: r.Backend, Mode: m,
		TlsCert: r.CertFile, TlsKey: r.KeyFile, BackendTls: r.BackendTLS,
	}
}

// fromProto maps a reported route; a mode mcp does not know is carried as
// "unknown(...)" so Validate and the read-back reject it.
func fromProto(r *pb.Route) executor.Route {
	out := executor.Route{
		Listener: r.GetListener(), Hostname: strings.ToLower(r.GetHostname()), Backend: r.GetBackend(),
		CertFile: r.GetTlsCert(), KeyFile: r.GetTlsKey(), BackendTLS: r.GetBackendTls(),
	}
	switch r.GetMode() {
	case pb.Mode_MODE_L4:
		out.Mode = spec.ModeL4
	case pb.Mode_MODE_L7:
		out.Mode = spec.ModeL7
	default:
		out.Mode = "unknown(" + r.GetMode().String() + ")"
	}
	return out
}
