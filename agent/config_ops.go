package agent

import (
	"net"
	"strconv"
	"time"
)

// Defaults and limits of the operator-facing tables: [metrics] and
// [status_page].
const (
	DefaultStatusPageRefresh = 10 * time.Second
	DefaultStatusPageEvents  = 20
	MaxStatusPageEvents      = 1000
	MaxStatusPageRefresh     = time.Hour
)

// MetricsConfig is the [metrics] table: Prometheus metrics over HTTP.
type MetricsConfig struct {
	// Listen is the host:port serving /metrics; empty (the default) serves
	// nothing. The metrics are read-only but say what runs on the node, so
	// keep it on loopback or a management network.
	Listen string
}

// StatusPageConfig is the [status_page] table: the read-only HTML page.
type StatusPageConfig struct {
	// Listen is the host:port serving the page at /; empty (the default)
	// serves nothing. It may equal [metrics] listen: one server then
	// answers both.
	Listen string
	// Refresh is how often the page reloads itself (a <meta> refresh, no
	// JavaScript); 0 turns that off.
	Refresh Duration
	// Events is how many recent events the page lists.
	Events int
}

func defaultStatusPage() StatusPageConfig {
	return StatusPageConfig{Refresh: Duration{DefaultStatusPageRefresh}, Events: DefaultStatusPageEvents}
}

// ops parses the operator-facing tables into c. It is called from config
// with the whole decoded file.
func (p *parser) ops(raw map[string]any, c *Config) {
	c.StatusPage = defaultStatusPage()
	if t := p.table(raw, "metrics"); t != nil {
		const pre = "metrics"
		p.known(t, pre, "listen")
		if p.str(t, pre, "listen", &c.Metrics.Listen) {
			p.listenAddr("metrics.listen", c.Metrics.Listen)
		}
	}
	if t := p.table(raw, "status_page"); t != nil {
		const pre = "status_page"
		p.known(t, pre, "listen", "refresh", "events")
		if p.str(t, pre, "listen", &c.StatusPage.Listen) {
			p.listenAddr("status_page.listen", c.StatusPage.Listen)
		}
		p.refresh(t, pre, "refresh", &c.StatusPage.Refresh)
		var n int64
		if p.integer(t, pre, "events", &n) {
			if n < 0 || n > MaxStatusPageEvents {
				p.errorf("status_page.events", "%d is outside 0-%d", n, MaxStatusPageEvents)
			} else {
				c.StatusPage.Events = int(n)
			}
		}
	}
}

// refresh reads a duration that may be "0s" (off) or 1s-1h; the generic
// duration helper has no way to allow zero below its minimum.
func (p *parser) refresh(t map[string]any, prefix, key string, dst *Duration) {
	v, ok := t[key]
	if !ok {
		return
	}
	k := join(prefix, key)
	s, ok := v.(string)
	if !ok {
		p.errorf(k, `must be a duration string (e.g. "10s"; "0s" turns it off), not %s`, typeName(v))
		return
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		p.errorf(k, `%q is not a duration (e.g. "10s"; "0s" turns it off)`, s)
	case d != 0 && (d < time.Second || d > MaxStatusPageRefresh):
		p.errorf(k, "%s is outside 1s-%s (or 0s: off)", s, MaxStatusPageRefresh)
	default:
		dst.Duration = d
	}
}

// listenAddr checks a TCP listen address: "host:port" with an explicit,
// non-zero port (a random port would leave Prometheus nowhere to scrape).
// An empty string means off and is fine.
func (p *parser) listenAddr(key, addr string) {
	if addr == "" {
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.errorf(key, "%q is not host:port (e.g. \"127.0.0.1:9464\"; \"\" turns it off)", addr)
		return
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		p.errorf(key, "%q: port %q is outside 1-65535", addr, port)
		return
	}
	if host != "" && net.ParseIP(host) == nil && !dnsName(host) {
		p.errorf(key, "%q: %q is neither an IP address nor a host name", addr, host)
	}
}

// dnsName accepts host names made of DNS labels ("localhost",
// "mgmt.node1.internal").
func dnsName(h string) bool {
	if len(h) > 253 {
		return false
	}
	start := 0
	for i := 0; i <= len(h); i++ {
		if i == len(h) || h[i] == '.' {
			if !dnsLabel.MatchString(h[start:i]) {
				return false
			}
			start = i + 1
		}
	}
	return true
}
