package agent

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Defaults of the agent configuration (docs/agent.md lists them all).
const (
	DefaultBranch            = "main"
	DefaultPollInterval      = 30 * time.Second
	DefaultContainerdAddress = "/run/containerd/containerd.sock"
	DefaultNamespace         = "mcp"
	DefaultStopGrace         = 10 * time.Second
	DefaultSocket            = "/run/mcp/mcp.sock"
	DefaultPortLo            = 10000
	// DefaultPortHi stays below Linux's default ephemeral range
	// (net.ipv4.ip_local_port_range starts at 32768), so an outgoing
	// connection never takes a port the agent leases.
	DefaultPortHi      = 32767
	DefaultLogMaxBytes = 10 << 20
	DefaultLogKeep     = 3
)

// Limits enforced on the configuration.
const (
	MinPollInterval = time.Second
	MinStopGrace    = time.Second
	MaxStopGrace    = time.Hour
	MinPort         = 1024 // below are privileged ports, and well-known services
	MaxPort         = 65535
	MinLogMaxBytes  = 64 << 10 // smaller would rotate a chatty service constantly
	MaxLogKeep      = 100
)

// Config is the agent's configuration, read from a TOML file. Every field
// holds its default when the file leaves it out.
type Config struct {
	// File is the path the configuration was read from (or the name given
	// to ParseConfig); errors name it.
	File string
	// Node is this machine's name, as declared in the repo's mcp.toml.
	Node string
	// StateDir holds the registry, logs, image copies and the git cache.
	StateDir string
	// HostRoot prefixes the host side of every volume: "/" on a real
	// node; a directory when several simulated nodes share one machine.
	HostRoot string
	// AllowRemoveAll lets a reconcile remove every deployed service at
	// once (off: such a plan is refused, a guard against an empty tree).
	AllowRemoveAll bool

	Git        GitConfig
	Containerd ContainerdConfig
	API        APIConfig
	Ports      PortRange
	Registries []Registry
	Log        LogConfig
	Logs       LogsConfig
	// Metrics and StatusPage are the opt-in HTTP listeners (config_ops.go).
	Metrics    MetricsConfig
	StatusPage StatusPageConfig
	// Trust, Status, Secrets and Quarantine: config_trust.go.
	Trust      TrustConfig
	Status     StatusConfig
	Secrets    SecretsConfig
	Quarantine QuarantineConfig
	// Proxy is the [proxy] table: config_proxy.go.
	Proxy ProxyConfig
	// Certs and ACME: config_certs.go.
	Certs CertsConfig
	ACME  ACMEConfig
	// DNS are the [[dns]] zones mcp manages records in: config_dns.go.
	DNS []DNSZone
}

// Duration is a time.Duration written in the file as a string ("30s").
type Duration struct{ time.Duration }

// MarshalText writes the duration the way the file spells it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// GitConfig is the [git] table: the desired-state repository.
type GitConfig struct {
	// URL is an absolute path, file://, http(s)://, ssh:// or scp-like
	// user@host:path.
	URL          string
	Branch       string
	PollInterval Duration
	// SSHKeyFile and KnownHostsFile are for ssh URLs (both required there).
	SSHKeyFile     string
	KnownHostsFile string
	// HTTPUsername and HTTPPasswordFile are basic auth for http(s) URLs.
	HTTPUsername     string
	HTTPPasswordFile string
	// AllowBackwards applies a branch that moved back to an older commit.
	AllowBackwards bool
	// Timeout bounds one fetch from the remote (gitsync.DefaultTimeout
	// when zero).
	Timeout Duration
}

// ContainerdConfig is the [containerd] table.
type ContainerdConfig struct {
	Address   string
	Namespace string
	StopGrace Duration
}

// APIConfig is the [api] table: the local API's Unix socket.
type APIConfig struct {
	Socket string
	// Group, when set, may use the socket too (mode 0660 instead of 0600).
	Group string
}

// SocketMode is the permission of the API socket: 0600, or 0660 when a
// group shares it.
func (a APIConfig) SocketMode() os.FileMode {
	if a.Group != "" {
		return 0o660
	}
	return 0o600
}

// PortRange is the [ports] range host ports are leased from, inclusive.
type PortRange struct{ Lo, Hi int }

func (p PortRange) String() string { return fmt.Sprintf("%d-%d", p.Lo, p.Hi) }

// Registry is one [[registries]] entry: how to reach one image registry.
type Registry struct {
	// Host is the host (and port) as written in image references.
	Host string
	// Username and PasswordFile give basic auth; the file is read at use.
	Username     string
	PasswordFile string
	// PlainHTTP allows http:// for this host only.
	PlainHTTP bool
}

// LogConfig is the [log] table: the agent's own log.
type LogConfig struct {
	Format string // "text" or "json"
	Level  string // "debug", "info", "warn" or "error"
}

// SlogLevel is Level as a slog.Level.
func (l LogConfig) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// LogsConfig is the [logs] table: the containers' log files.
type LogsConfig struct {
	// MaxBytes is the size at which a log file is rotated.
	MaxBytes int64
	// Keep is how many rotated files are kept besides the current one.
	Keep int
}

// RegistryPath is the registry file: <state_dir>/registry.db.
func (c *Config) RegistryPath() string { return filepath.Join(c.StateDir, "registry.db") }

// LogDir holds the containers' log files: <state_dir>/logs.
func (c *Config) LogDir() string { return filepath.Join(c.StateDir, "logs") }

// ImageDir holds mcp's own copies of the images it runs: <state_dir>/images.
func (c *Config) ImageDir() string { return filepath.Join(c.StateDir, "images") }

// GitCacheDir holds the private clone of the desired-state repo:
// <state_dir>/git.
func (c *Config) GitCacheDir() string { return filepath.Join(c.StateDir, "git") }

// RegistryFor returns the settings for an image registry host, or false.
func (c *Config) RegistryFor(host string) (Registry, bool) {
	for _, r := range c.Registries {
		if strings.EqualFold(r.Host, host) {
			return r, true
		}
	}
	return Registry{}, false
}

// FieldError is one problem in the configuration, naming the file and the
// key: `agent.toml: git.poll_interval: "5x" is not a duration`.
type FieldError struct {
	File    string
	Key     string // dotted path, e.g. "registries[1].host"; "" for the whole file
	Message string
}

func (e *FieldError) Error() string {
	if e.Key == "" {
		return e.File + ": " + e.Message
	}
	return e.File + ": " + e.Key + ": " + e.Message
}

// ConfigErrors is every problem found in a configuration, in file order
// (table by table). As an error it prints one per line.
type ConfigErrors []*FieldError

func (es ConfigErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find a single *FieldError.
func (es ConfigErrors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// LoadConfig reads the configuration at path, validates it (ParseConfig),
// then checks what it refers to on this host: the credential files exist
// and the API group is known. Errors name path and the key.
func LoadConfig(path string) (*Config, error) {
	// A FIFO would block the open and a device never end: only a regular
	// file (a link to one is fine: the file is the node admin's) is read.
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, ConfigErrors{{File: path, Message: fmt.Sprintf("is not a regular file (%s)", fi.Mode().Type())}}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read agent config: %w", err)
	}
	defer f.Close()
	cfg, err := ParseConfig(f, path)
	if err != nil {
		return nil, err
	}
	if errs := cfg.checkHost(); len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

// ParseConfig decodes and validates a configuration without looking at the
// host. name is used in error messages. All problems are reported, as
// ConfigErrors.
func ParseConfig(r io.Reader, name string) (*Config, error) {
	data, err := readConfig(r, name) // config_limits.go: size and nesting
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, ConfigErrors{{File: name, Message: fmt.Sprintf("line %d: %s", pe.Position.Line, pe.Message)}}
		}
		return nil, ConfigErrors{{File: name, Message: err.Error()}}
	}
	p := &parser{file: name}
	p.text("", raw) // config_limits.go
	cfg := p.config(raw)
	if len(p.errs) > 0 {
		return nil, capErrors(p.errs) // config_limits.go
	}
	return cfg, nil
}

// parser walks the decoded TOML by hand rather than into tagged structs:
// that way a wrong type is one more collected error naming its key (the
// decoder stops at the first), and unknown keys are caught per table.
type parser struct {
	file string
	errs ConfigErrors
}

func (p *parser) errorf(key, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{File: p.file, Key: key, Message: fmt.Sprintf(format, args...)})
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// known reports keys of m that are not in keys.
func (p *parser) known(m map[string]any, prefix string, keys ...string) {
	var unknown []string
	for k := range m {
		if !slices.Contains(keys, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		where := "at the top level"
		if prefix != "" {
			where = "in [" + prefix + "]"
		}
		p.errorf(join(prefix, displayKey(k)), "unknown key (known %s: %s)", where, strings.Join(keys, ", "))
	}
}

// typeName describes a decoded TOML value for an error message.
func typeName(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("string %q", v)
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("float %v", v)
	case bool:
		return fmt.Sprintf("boolean %v", v)
	case map[string]any:
		return "a table"
	case []map[string]any, []any:
		return "an array"
	case time.Time:
		return "a date-time"
	default:
		return fmt.Sprintf("a %T", v) // local dates and times
	}
}

// str sets *dst from m[key] and reports whether it was there as a string.
func (p *parser) str(m map[string]any, prefix, key string, dst *string) bool {
	v, ok := m[key]
	if !ok {
		return false
	}
	s, ok := v.(string)
	if !ok {
		p.errorf(join(prefix, key), "must be a string, not %s", typeName(v))
		return false
	}
	*dst = s
	return true
}

func (p *parser) boolean(m map[string]any, prefix, key string, dst *bool) {
	v, ok := m[key]
	if !ok {
		return
	}
	b, ok := v.(bool)
	if !ok {
		p.errorf(join(prefix, key), "must be true or false, not %s", typeName(v))
		return
	}
	*dst = b
}

func (p *parser) integer(m map[string]any, prefix, key string, dst *int64) bool {
	v, ok := m[key]
	if !ok {
		return false
	}
	n, ok := v.(int64)
	if !ok {
		p.errorf(join(prefix, key), "must be an integer, not %s", typeName(v))
		return false
	}
	*dst = n
	return true
}

func (p *parser) duration(m map[string]any, prefix, key string, dst *Duration, lo, hi time.Duration) {
	v, ok := m[key]
	if !ok {
		return
	}
	k := join(prefix, key)
	s, ok := v.(string)
	if !ok {
		p.errorf(k, `must be a duration string (e.g. "30s", "2m"), not %s`, typeName(v))
		return
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		p.errorf(k, `%q is not a duration (e.g. "30s", "2m")`, s)
		return
	}
	if d < lo || (hi > 0 && d > hi) {
		if hi > 0 {
			p.errorf(k, "%s is outside %s-%s", s, lo, hi)
		} else {
			p.errorf(k, "%s is shorter than the minimum %s", s, lo)
		}
		return
	}
	dst.Duration = d
}

// table returns m[key] as a table (nil when absent or not a table).
func (p *parser) table(m map[string]any, key string) map[string]any {
	v, ok := m[key]
	if !ok {
		return nil
	}
	t, ok := v.(map[string]any)
	if !ok {
		p.errorf(key, "must be a table ([%s]), not %s", key, typeName(v))
		return nil
	}
	return t
}

func (p *parser) absPath(key, path string) string {
	if path == "" {
		return ""
	}
	if !filepath.IsAbs(path) {
		p.errorf(key, "%q is not an absolute path", path)
		return path
	}
	if prob := pathTrick(path); prob != "" {
		p.errorf(key, "%q %s", path, prob) // config_limits.go
		return path
	}
	return filepath.Clean(path)
}

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	// containerd's identifier rule (pkg/identifiers), plus its 76-char limit.
	containerdID = regexp.MustCompile(`^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$`)
	// scp-like git URLs: [user@]host:path.
	scpURL    = regexp.MustCompile(`^(?:[^@/\s]+@)?[^/:\s]+:[^/]?`)
	groupName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*\$?$|^[0-9]+$`)
)

// reservedNamespaces belong to other container managers sharing containerd.
var reservedNamespaces = []string{"default", "k8s.io", "moby"}

// topLevelKeys are the keys and tables allowed at the top of the file; a
// feature that adds a table adds its name here.
var topLevelKeys = []string{
	"node", "state_dir", "host_root", "allow_remove_all",
	"git", "containerd", "api", "ports", "registries", "log", "logs",
	"metrics", "status_page", "trust", "status", "secrets", "quarantine",
	"certs", "acme", "proxy", "dns",
}

func (p *parser) config(raw map[string]any) *Config {
	c := &Config{
		File: p.file,
		Git:  GitConfig{Branch: DefaultBranch, PollInterval: Duration{DefaultPollInterval}},
		Containerd: ContainerdConfig{
			Address:   DefaultContainerdAddress,
			Namespace: DefaultNamespace,
			StopGrace: Duration{DefaultStopGrace},
		},
		API:   APIConfig{Socket: DefaultSocket},
		Ports: PortRange{Lo: DefaultPortLo, Hi: DefaultPortHi},
		Log:   LogConfig{Format: "text", Level: "info"},
		Logs:  LogsConfig{MaxBytes: DefaultLogMaxBytes, Keep: DefaultLogKeep},
	}
	p.known(raw, "", topLevelKeys...)

	_, hasNode := raw["node"]
	switch {
	case !hasNode:
		p.errorf("node", "is required (this machine's name, as declared in the repo's mcp.toml)")
	case !p.str(raw, "", "node", &c.Node):
	case !dnsLabel.MatchString(c.Node):
		p.errorf("node", "%q is not a DNS label (1-63 lowercase letters, digits and '-', not starting or ending with '-')", c.Node)
	}
	_, hasState := raw["state_dir"]
	switch {
	case !hasState:
		p.errorf("state_dir", "is required (an absolute path, e.g. \"/var/lib/mcp\")")
	case !p.str(raw, "", "state_dir", &c.StateDir):
	case c.StateDir == "":
		p.errorf("state_dir", "must not be empty (an absolute path, e.g. \"/var/lib/mcp\")")
	default:
		c.StateDir = p.absPath("state_dir", c.StateDir)
	}
	c.HostRoot = "/"
	if _, ok := raw["host_root"]; ok && p.str(raw, "", "host_root", &c.HostRoot) {
		c.HostRoot = p.absPath("host_root", c.HostRoot)
	}
	p.boolean(raw, "", "allow_remove_all", &c.AllowRemoveAll)

	p.git(p.table(raw, "git"), &c.Git)
	p.containerd(p.table(raw, "containerd"), &c.Containerd)
	p.api(p.table(raw, "api"), &c.API)
	p.ports(p.table(raw, "ports"), &c.Ports)
	c.Registries = p.registries(raw)
	p.log(p.table(raw, "log"), &c.Log)
	p.logs(p.table(raw, "logs"), &c.Logs)
	p.ops(raw, c)
	p.trustTables(raw, c)
	p.proxy(p.table(raw, "proxy"), &c.Proxy)
	p.certTables(raw, c)
	c.DNS = p.dns(raw)     // [[dns]]: config_dns.go
	p.listenerConflicts(c) // config_limits.go
	return c
}

// gitURLKind classifies a repository URL as "file", "http" or "ssh", the
// transports the sync package speaks; "" with a message when it is none.
func gitURLKind(s string) (kind, problem string) {
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "", fmt.Sprintf("cannot parse %q: %v", s, err)
		}
		if _, has := u.User.Password(); has {
			return "", "must not contain a password; put it in git.http_password_file"
		}
		switch u.Scheme {
		case "file":
			return "file", ""
		case "http", "https":
			return "http", ""
		case "ssh":
			return "ssh", ""
		}
		return "", fmt.Sprintf("scheme %q is not supported (use a path, file://, http(s)://, ssh:// or user@host:path)", u.Scheme)
	}
	if filepath.IsAbs(s) {
		return "file", ""
	}
	if strings.HasPrefix(s, "-") {
		// Read as an option by any tool the URL is handed to.
		return "", fmt.Sprintf("%q starts with '-'; write a URL or an absolute path", s)
	}
	if scpURL.MatchString(s) {
		return "ssh", ""
	}
	return "", fmt.Sprintf("%q is neither an absolute path nor a URL (file://, http(s)://, ssh:// or user@host:path)", s)
}

func (p *parser) git(t map[string]any, g *GitConfig) {
	const pre = "git"
	if t == nil {
		p.errorf("git.url", "is required (the desired-state repository, in a [git] table)")
		return
	}
	p.known(t, pre, "url", "branch", "poll_interval", "ssh_key_file", "known_hosts_file", "http_username", "http_password_file", "allow_backwards", "timeout")
	_, hasURL := t["url"]
	urlOK := p.str(t, pre, "url", &g.URL)
	p.str(t, pre, "branch", &g.Branch)
	p.duration(t, pre, "poll_interval", &g.PollInterval, MinPollInterval, 0)
	p.str(t, pre, "ssh_key_file", &g.SSHKeyFile)
	p.str(t, pre, "known_hosts_file", &g.KnownHostsFile)
	p.str(t, pre, "http_username", &g.HTTPUsername)
	p.str(t, pre, "http_password_file", &g.HTTPPasswordFile)
	p.boolean(t, pre, "allow_backwards", &g.AllowBackwards)
	p.duration(t, pre, "timeout", &g.Timeout, time.Second, time.Hour)

	b := g.Branch
	if b == "" || strings.HasPrefix(b, "refs/") || strings.HasPrefix(b, "-") || strings.ContainsAny(b, " \t~^:?*[\\") ||
		strings.Contains(b, "..") || strings.HasSuffix(b, "/") || strings.HasSuffix(b, ".lock") {
		p.errorf("git.branch", "%q is not a valid branch name (give the short name, e.g. \"main\")", b)
	}
	g.SSHKeyFile = p.absPath("git.ssh_key_file", g.SSHKeyFile)
	g.KnownHostsFile = p.absPath("git.known_hosts_file", g.KnownHostsFile)
	g.HTTPPasswordFile = p.absPath("git.http_password_file", g.HTTPPasswordFile)

	switch {
	case !hasURL:
		p.errorf("git.url", "is required (the desired-state repository)")
		return
	case !urlOK:
		return // the wrong type, already reported
	case g.URL == "":
		p.errorf("git.url", "must not be empty (the desired-state repository)")
		return
	}
	kind, problem := gitURLKind(g.URL)
	if problem != "" {
		p.errorf("git.url", "%s", problem)
		return
	}
	if kind != "ssh" {
		for _, f := range []struct{ key, v string }{{"ssh_key_file", g.SSHKeyFile}, {"known_hosts_file", g.KnownHostsFile}} {
			if f.v != "" {
				p.errorf("git."+f.key, "is only used with ssh URLs, and git.url is a %s URL", kind)
			}
		}
	}
	if kind != "http" {
		for _, f := range []struct{ key, v string }{{"http_username", g.HTTPUsername}, {"http_password_file", g.HTTPPasswordFile}} {
			if f.v != "" {
				p.errorf("git."+f.key, "is only used with http(s) URLs, and git.url is a %s URL", kind)
			}
		}
	}
	switch kind {
	case "ssh":
		if g.SSHKeyFile == "" {
			p.errorf("git.ssh_key_file", "is required for ssh URLs")
		}
		if g.KnownHostsFile == "" {
			p.errorf("git.known_hosts_file", "is required for ssh URLs (host keys are always checked)")
		}
	case "http":
		if g.HTTPUsername != "" && g.HTTPPasswordFile == "" {
			p.errorf("git.http_password_file", "is required when git.http_username is set")
		}
		if g.HTTPUsername == "" && g.HTTPPasswordFile != "" {
			p.errorf("git.http_username", "is required when git.http_password_file is set")
		}
	}
}

func (p *parser) containerd(t map[string]any, c *ContainerdConfig) {
	const pre = "containerd"
	if t == nil {
		return
	}
	p.known(t, pre, "address", "namespace", "stop_grace")
	p.str(t, pre, "address", &c.Address)
	p.str(t, pre, "namespace", &c.Namespace)
	p.duration(t, pre, "stop_grace", &c.StopGrace, MinStopGrace, MaxStopGrace)
	if c.Address == "" {
		p.errorf("containerd.address", "must not be empty (containerd's socket, default %q)", DefaultContainerdAddress)
	} else {
		c.Address = p.absPath("containerd.address", c.Address)
	}
	switch {
	case slices.Contains(reservedNamespaces, c.Namespace):
		p.errorf("containerd.namespace", "%q belongs to another container manager; mcp needs its own namespace (default %q)", c.Namespace, DefaultNamespace)
	case len(c.Namespace) > 76 || !containerdID.MatchString(c.Namespace):
		p.errorf("containerd.namespace", "%q is not a containerd namespace (letters and digits, separated by single '.', '_' or '-'; at most 76 characters)", c.Namespace)
	}
}

func (p *parser) api(t map[string]any, a *APIConfig) {
	const pre = "api"
	if t == nil {
		return
	}
	p.known(t, pre, "socket", "group")
	p.str(t, pre, "socket", &a.Socket)
	p.str(t, pre, "group", &a.Group)
	if a.Socket == "" {
		p.errorf("api.socket", "must not be empty (default %q)", DefaultSocket)
	} else {
		a.Socket = p.absPath("api.socket", a.Socket)
		// sun_path holds 108 bytes including the terminating NUL.
		if len(a.Socket) > 107 {
			p.errorf("api.socket", "is %d bytes long; a Unix socket path holds at most 107", len(a.Socket))
		}
	}
	if a.Group != "" && !groupName.MatchString(a.Group) {
		p.errorf("api.group", "%q is not a group name or id", a.Group)
	}
}

func (p *parser) ports(t map[string]any, r *PortRange) {
	const pre = "ports"
	if t == nil {
		return
	}
	p.known(t, pre, "range")
	var s string
	if !p.str(t, pre, "range", &s) {
		return // absent: the default; or the wrong type, already reported
	}
	lo, hi, ok := strings.Cut(s, "-")
	l, errL := strconv.Atoi(strings.TrimSpace(lo))
	h, errH := strconv.Atoi(strings.TrimSpace(hi))
	switch {
	case !ok || errL != nil || errH != nil:
		p.errorf("ports.range", "%q is not a range like \"10000-32767\"", s)
	case l < MinPort || l > MaxPort:
		p.errorf("ports.range", "%q: %d is outside %d-%d", s, l, MinPort, MaxPort)
	case h < MinPort || h > MaxPort:
		p.errorf("ports.range", "%q: %d is outside %d-%d", s, h, MinPort, MaxPort)
	case l >= h:
		p.errorf("ports.range", "%q: the first port must be below the last", s)
	default:
		*r = PortRange{Lo: l, Hi: h}
	}
}

// tableArray reads an array of tables ([[key]]) at key: `key = []` and
// arrays whose items are tables are accepted, anything else is an error
// naming the key (and the item).
func (p *parser) tableArray(key string, v any) []map[string]any {
	switch v := v.(type) {
	case nil:
		return nil
	case []map[string]any:
		return v
	case []any:
		var tables []map[string]any
		for i, item := range v {
			t, ok := item.(map[string]any)
			if !ok {
				p.errorf(fmt.Sprintf("%s[%d]", key, i), "must be a table ([[%s]]), not %s", key, typeName(item))
				continue
			}
			tables = append(tables, t)
		}
		return tables
	default:
		p.errorf(key, "must be an array of tables ([[%s]]), not %s", key, typeName(v))
		return nil
	}
}

func (p *parser) registries(raw map[string]any) []Registry {
	tables := p.tableArray("registries", raw["registries"])
	var regs []Registry
	seen := map[string]int{}
	for i, t := range tables {
		pre := fmt.Sprintf("registries[%d]", i)
		p.known(t, pre, "host", "username", "password_file", "plain_http")
		var r Registry
		p.str(t, pre, "host", &r.Host)
		p.str(t, pre, "username", &r.Username)
		p.str(t, pre, "password_file", &r.PasswordFile)
		p.boolean(t, pre, "plain_http", &r.PlainHTTP)
		if problem := checkRegistryHost(r.Host); problem != "" {
			p.errorf(pre+".host", "%s", problem)
		} else if j, dup := seen[strings.ToLower(r.Host)]; dup {
			p.errorf(pre+".host", "%q is already configured in registries[%d]", r.Host, j)
		} else {
			seen[strings.ToLower(r.Host)] = i
		}
		r.PasswordFile = p.absPath(pre+".password_file", r.PasswordFile)
		if r.Username != "" && r.PasswordFile == "" {
			p.errorf(pre+".password_file", "is required when username is set")
		}
		if r.Username == "" && r.PasswordFile != "" {
			p.errorf(pre+".username", "is required when password_file is set")
		}
		regs = append(regs, r)
	}
	return regs
}

// checkRegistryHost accepts "host" or "host:port" as image references
// spell them.
func checkRegistryHost(h string) string {
	if h == "" {
		return "is required (the registry's host, or host:port, as in image references)"
	}
	if strings.Contains(h, "://") || strings.ContainsAny(h, "/ \t") {
		return fmt.Sprintf("%q must be a host or host:port, without scheme or path", h)
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		host, port = h, "" // no port
	}
	if host == "" {
		return fmt.Sprintf("%q has no host", h)
	}
	// ASCII names only: a look-alike letter would make a host that no
	// image reference (spec allows ASCII registries) ever matches, so its
	// credentials or plain_http would silently never apply.
	if net.ParseIP(host) == nil && !dnsName(strings.ToLower(host)) {
		return fmt.Sprintf("%q: %q is neither an IP address nor a host name (ASCII letters, digits, '-' and '.'; an IDN in its xn-- form)", h, host)
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("%q: port %q is outside 1-65535", h, port)
		}
	}
	return ""
}

func (p *parser) log(t map[string]any, l *LogConfig) {
	const pre = "log"
	if t == nil {
		return
	}
	p.known(t, pre, "format", "level")
	p.str(t, pre, "format", &l.Format)
	p.str(t, pre, "level", &l.Level)
	if l.Format != "text" && l.Format != "json" {
		p.errorf("log.format", "%q is not one of text, json", l.Format)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, l.Level) {
		p.errorf("log.level", "%q is not one of debug, info, warn, error", l.Level)
	}
}

func (p *parser) logs(t map[string]any, l *LogsConfig) {
	const pre = "logs"
	if t == nil {
		return
	}
	p.known(t, pre, "max_bytes", "keep")
	var n int64
	if p.integer(t, pre, "max_bytes", &n) {
		if n < MinLogMaxBytes {
			p.errorf("logs.max_bytes", "%d is below the minimum %d (64 KiB)", n, MinLogMaxBytes)
		} else {
			l.MaxBytes = n
		}
	}
	if p.integer(t, pre, "keep", &n) {
		if n < 1 || n > MaxLogKeep {
			p.errorf("logs.keep", "%d is outside 1-%d", n, MaxLogKeep)
		} else {
			l.Keep = int(n)
		}
	}
}

// fileProblem says what is wrong with a file the configuration names
// (missing, unreadable, not a regular file), or "" when nothing is or no
// file is named.
func fileProblem(path string) string {
	if path == "" {
		return ""
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return path + " does not exist"
	case err != nil:
		return err.Error()
	case !fi.Mode().IsRegular():
		return path + " is not a regular file"
	}
	return ""
}

// checkHost checks what the configuration refers to on this machine, so a
// typo fails at start rather than at the first fetch or pull.
func (c *Config) checkHost() ConfigErrors {
	var errs ConfigErrors
	add := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{File: c.File, Key: key, Message: fmt.Sprintf(format, args...)})
	}
	files := []struct{ key, path string }{
		{"git.ssh_key_file", c.Git.SSHKeyFile},
		{"git.known_hosts_file", c.Git.KnownHostsFile},
		{"git.http_password_file", c.Git.HTTPPasswordFile},
	}
	for i, r := range c.Registries {
		files = append(files, struct{ key, path string }{fmt.Sprintf("registries[%d].password_file", i), r.PasswordFile})
	}
	for _, f := range files {
		if msg := fileProblem(f.path); msg != "" {
			add(f.key, "%s", msg)
		}
	}
	if g := c.API.Group; g != "" {
		if _, err := strconv.Atoi(g); err != nil {
			if _, err := user.LookupGroup(g); err != nil {
				add("api.group", "group %q does not exist on this host", g)
			}
		}
	}
	errs = append(errs, c.checkTrustHost()...)
	return errs
}
