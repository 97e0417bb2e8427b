package agent

import (
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	"metacircular.net/mcp/spec"
)

// MaxConfigSize bounds the agent configuration. A real one is a few KiB;
// the bound keeps a wrong path (a log file, a device) from being read
// whole before it is refused.
const MaxConfigSize = 1 << 20

// readConfig reads the file and refuses what would make the TOML decoder
// spend unbounded memory or time: more than MaxConfigSize bytes, or
// keys, arrays and inline tables nested deeper than spec.MaxNesting (the
// decoder is quadratic in that depth), the same bound the definitions
// have.
func readConfig(r io.Reader, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxConfigSize+1))
	if err != nil {
		return nil, ConfigErrors{{File: name, Message: fmt.Sprintf("read: %v", err)}}
	}
	if len(data) > MaxConfigSize {
		return nil, ConfigErrors{{File: name, Message: fmt.Sprintf("is more than %d bytes; an agent configuration is a few KiB (is this the right file?)", MaxConfigSize)}}
	}
	if d := spec.NestingDepth(data); d > spec.MaxNesting {
		return nil, ConfigErrors{{File: name, Message: fmt.Sprintf("keys, arrays and inline tables nest %d deep, more than the limit of %d", d, spec.MaxNesting)}}
	}
	return data, nil
}

// pathTrick says why an absolute path is refused although it is
// absolute: ".." elements (the path would not say where it leads; write
// the real one) and NUL bytes (the system would cut the path there).
func pathTrick(path string) string {
	if strings.ContainsRune(path, 0) {
		return "contains a NUL byte"
	}
	for _, e := range strings.Split(path, "/") {
		if e == ".." {
			return "contains '..'; write the path it leads to"
		}
	}
	return ""
}

// listenerConflicts refuses two listeners of the agent on one port, and
// any listener inside ports.range: the agent leases ports of that range
// to services, and a service given the port of a listener that is down
// for a moment would take its place (or fail to bind when it is up).
// [metrics] and [status_page] may share one address: one server answers
// both.
func (p *parser) listenerConflicts(c *Config) {
	type listener struct {
		key, host string
		port      int
	}
	var ls []listener
	add := func(key, addr string) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return // reported where the key is read
		}
		n, err := strconv.Atoi(port)
		if err != nil {
			return
		}
		ls = append(ls, listener{key, host, n})
	}
	if c.Metrics.Listen != "" {
		add("metrics.listen", c.Metrics.Listen)
	}
	if c.StatusPage.Listen != "" && c.StatusPage.Listen != c.Metrics.Listen {
		add("status_page.listen", c.StatusPage.Listen)
	}
	if c.ACME.HTTP01Listen != "" {
		add("acme.http01_listen", c.ACME.HTTP01Listen)
	}
	for i, l := range c.Proxy.Listeners {
		ls = append(ls, listener{fmt.Sprintf("proxy.listeners[%d]", i), l.Address, l.Port})
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	for i, l := range ls {
		if l.port >= c.Ports.Lo && l.port <= c.Ports.Hi {
			p.errorf(l.key, "port %d is inside ports.range %s, from which services are given ports; move the listener or the range", l.port, c.Ports)
		}
		for _, m := range ls[:i] {
			if l.port == m.port && (l.host == m.host || wildcard(l.host) || wildcard(m.host)) {
				p.errorf(l.key, "port %d is also the port of %s; two listeners cannot share it", l.port, m.key)
				break
			}
		}
	}
}

// MaxConfigErrors caps the errors reported for one file: a generated or
// corrupted file with thousands of bad keys would otherwise bury the
// first, which is usually the one to fix.
const MaxConfigErrors = 100

func capErrors(es ConfigErrors) ConfigErrors {
	if len(es) <= MaxConfigErrors {
		return es
	}
	out := append(ConfigErrors(nil), es[:MaxConfigErrors]...)
	return append(out, &FieldError{File: es[0].File, Message: fmt.Sprintf("%d more problems not shown", len(es)-MaxConfigErrors)})
}

// text reports every key and string value holding a character that
// changes how text is displayed (spec.TextProblem): the configuration is
// shown in logs and errors, where a bidirectional control would make a
// value read as another.
func (p *parser) text(prefix string, v any) {
	switch v := v.(type) {
	case string:
		if prob := spec.TextProblem(v); prob != "" {
			p.errorf(prefix, "%s", prob)
		}
	case map[string]any:
		// Sorted: the same file always gives the same errors in one order.
		for _, k := range slices.Sorted(maps.Keys(v)) {
			e := v[k]
			key := join(prefix, displayKey(k))
			if prob := spec.TextProblem(k); prob != "" {
				p.errorf(key, "the key %s", prob)
			}
			p.text(key, e)
		}
	case []any:
		for i, e := range v {
			p.text(fmt.Sprintf("%s[%d]", prefix, i), e)
		}
	case []map[string]any:
		for i, e := range v {
			p.text(fmt.Sprintf("%s[%d]", prefix, i), e)
		}
	}
}

// displayKey shows a key as written when it is plain ASCII, quoted with
// escapes otherwise, so a look-alike key does not read as the real one.
func displayKey(k string) string {
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] >= 0x7f || k[i] == '"' || k[i] == '.' {
			return strconv.QuoteToASCII(k)
		}
	}
	return k
}
