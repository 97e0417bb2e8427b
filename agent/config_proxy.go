package agent

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/executor/haproxy"
	"metacircular.net/mcp/executor/mcproxy"
)

// Proxy drivers.
const (
	ProxyHAProxy = "haproxy"
	ProxyMCProxy = "mc-proxy"
)

// Defaults of the [proxy] table.
const (
	DefaultHAProxyConfigDir   = "/etc/haproxy/mcp"
	DefaultHAProxyAdminSocket = "/run/haproxy/mcp-admin.sock"
	DefaultMCProxySocket      = mcproxy.DefaultSocket
)

// ProxyConfig is the [proxy] table: the node's TLS proxy, which the agent
// registers every route with. Driver "" (the default) means no proxy: no
// route steps are planned.
type ProxyConfig struct {
	Driver string
	// BackendHost is the address the proxy reaches containers on: the
	// loopback address when it runs on this node (the default), this
	// node's address when it runs elsewhere.
	BackendHost string
	// Listeners are the proxy's listeners; a route on another port fails.
	// Required for haproxy (it is configured with them); optional for
	// mc-proxy, which has its own.
	Listeners []executor.Listener
	// CertDir is where l7 certificates are: <cert_dir>/<hostname>.pem
	// (full chain) and .key, under host_root.
	CertDir string

	// haproxy: the directory of the generated configuration, maps and
	// crt-list; the runtime API socket; the optional master socket (-S)
	// used for a seamless reload when the configuration changes.
	ConfigDir    string
	AdminSocket  string
	MasterSocket string

	// mc-proxy: its admin API socket.
	Socket string
}

// ListenerAddrs returns the listeners as routes spell them.
func (p ProxyConfig) ListenerAddrs() []string {
	out := make([]string, len(p.Listeners))
	for i, l := range p.Listeners {
		out[i] = l.HostPort()
	}
	return out
}

func (p *parser) proxy(t map[string]any, c *ProxyConfig) {
	const pre = "proxy"
	c.BackendHost = executor.DefaultBackendHost
	c.CertDir = executor.DefaultCertDir
	if t == nil {
		return
	}
	p.known(t, pre, "driver", "backend_host", "listeners", "cert_dir", "config_dir", "admin_socket", "master_socket", "socket")
	p.str(t, pre, "driver", &c.Driver)
	p.str(t, pre, "backend_host", &c.BackendHost)
	p.str(t, pre, "cert_dir", &c.CertDir)
	hasConfigDir := p.str(t, pre, "config_dir", &c.ConfigDir)
	hasAdmin := p.str(t, pre, "admin_socket", &c.AdminSocket)
	hasMaster := p.str(t, pre, "master_socket", &c.MasterSocket)
	hasSocket := p.str(t, pre, "socket", &c.Socket)
	c.Listeners = p.proxyListeners(t)

	c.CertDir = p.absPath("proxy.cert_dir", c.CertDir)
	if c.BackendHost == "" || (strings.ContainsAny(c.BackendHost, " /:[]") && net.ParseIP(c.BackendHost) == nil) {
		p.errorf("proxy.backend_host", "%q is not a host name or IP address", c.BackendHost)
	}
	wrong := func(ok bool, key, driver string) {
		if ok {
			p.errorf("proxy."+key, "is only used with driver = %q, and proxy.driver is %q", driver, c.Driver)
		}
	}
	switch c.Driver {
	case "":
		if len(t) > 0 && (hasConfigDir || hasAdmin || hasMaster || hasSocket || len(c.Listeners) > 0) {
			p.errorf("proxy.driver", "is required when [proxy] has settings (%q or %q)", ProxyHAProxy, ProxyMCProxy)
		}
	case ProxyHAProxy:
		wrong(hasSocket, "socket", ProxyMCProxy)
		if c.ConfigDir == "" {
			c.ConfigDir = DefaultHAProxyConfigDir
		}
		if c.AdminSocket == "" {
			c.AdminSocket = DefaultHAProxyAdminSocket
		}
		c.ConfigDir = p.absPath("proxy.config_dir", c.ConfigDir)
		c.AdminSocket = p.socketPath("proxy.admin_socket", c.AdminSocket)
		c.MasterSocket = p.socketPath("proxy.master_socket", c.MasterSocket)
		if len(c.Listeners) == 0 {
			p.errorf("proxy.listeners", "haproxy needs at least one listener, e.g. listeners = [{ port = 443 }]")
		}
		if net.ParseIP(c.BackendHost) == nil {
			p.errorf("proxy.backend_host", "%q: haproxy needs an IP address here", c.BackendHost)
		}
	case ProxyMCProxy:
		wrong(hasConfigDir, "config_dir", ProxyHAProxy)
		wrong(hasAdmin, "admin_socket", ProxyHAProxy)
		wrong(hasMaster, "master_socket", ProxyHAProxy)
		if c.Socket == "" {
			c.Socket = DefaultMCProxySocket
		}
		c.Socket = p.socketPath("proxy.socket", c.Socket)
	default:
		p.errorf("proxy.driver", "%q is not one of %q, %q (or empty for none)", c.Driver, ProxyHAProxy, ProxyMCProxy)
	}
}

func (p *parser) socketPath(key, path string) string {
	if path == "" {
		return ""
	}
	path = p.absPath(key, path)
	if len(path) > 107 {
		p.errorf(key, "is %d bytes long; a Unix socket path holds at most 107", len(path))
	}
	return path
}

// proxyListeners reads listeners = [443, { port = 8443, address = "127.0.0.1" }].
func (p *parser) proxyListeners(t map[string]any) []executor.Listener {
	v, ok := t["listeners"]
	if !ok {
		return nil
	}
	var items []any
	switch v := v.(type) {
	case []any:
		items = v
	case []map[string]any:
		for _, m := range v {
			items = append(items, m)
		}
	default:
		p.errorf("proxy.listeners", "must be an array of ports or { port, address } tables, not %s", typeName(v))
		return nil
	}
	var out []executor.Listener
	for i, item := range items {
		key := "proxy.listeners[" + strconv.Itoa(i) + "]"
		var l executor.Listener
		var port int64
		switch item := item.(type) {
		case int64:
			port = item
		case map[string]any:
			p.known(item, key, "port", "address")
			if !p.integer(item, key, "port", &port) {
				if _, ok := item["port"]; !ok {
					p.errorf(key+".port", "is required")
				}
				continue
			}
			p.str(item, key, "address", &l.Address)
			if l.Address != "" && net.ParseIP(l.Address) == nil {
				p.errorf(key+".address", "%q is not an IP address (leave it out for all addresses)", l.Address)
			}
		default:
			p.errorf(key, "must be a port or a { port, address } table, not %s", typeName(item))
			continue
		}
		if port < 1 || port > 65535 {
			p.errorf(key, "port %d is outside 1-65535", port)
			continue
		}
		l.Port = int(port)
		if slices.ContainsFunc(out, func(o executor.Listener) bool { return o.Port == l.Port }) {
			p.errorf(key, "port %d is listed twice", port)
			continue
		}
		out = append(out, l)
	}
	return out
}

// proxyRouter builds the executor option for the configured proxy, and a
// function that releases it. For haproxy it also writes the base
// configuration and the files it loads (reloading it through the master
// socket when the configuration changed). None configured: no option.
func proxyRouter(ctx context.Context, c ProxyConfig) ([]executor.Option, func(), error) {
	opts := []executor.RouteOption{
		executor.RouteBackendHost(c.BackendHost),
		executor.RouteCertDir(c.CertDir),
		executor.RouteListeners(c.Listeners...),
	}
	switch c.Driver {
	case ProxyHAProxy:
		d, err := haproxy.New(haproxy.Config{Dir: c.ConfigDir, AdminSocket: c.AdminSocket, MasterSocket: c.MasterSocket, Listeners: c.Listeners})
		if err != nil {
			return nil, nil, err
		}
		if _, err := d.Setup(ctx); err != nil {
			return nil, nil, fmt.Errorf("proxy: haproxy config in %s: %w", c.ConfigDir, err)
		}
		return []executor.Option{executor.WithRouter(d, opts...)}, func() {}, nil
	case ProxyMCProxy:
		cl, err := mcproxy.New(c.Socket, mcproxy.WithListeners(c.ListenerAddrs()...))
		if err != nil {
			return nil, nil, err
		}
		return []executor.Option{executor.WithRouter(cl, opts...)}, func() { _ = cl.Close() }, nil
	}
	return nil, func() {}, nil
}
