package haproxy

import (
	"bufio"
	"context"
	"crypto/sha1" // haproxy reports certificates by their SHA-1 fingerprint
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/spec"
)

// Driver is the haproxy router.
type Driver struct {
	cfg Config
	cli cli
	// mu serialises changes: each is several runtime commands and file
	// writes that must not interleave with another's.
	mu sync.Mutex
}

var _ executor.Router = (*Driver)(nil)

// New returns a driver for the haproxy described by cfg. It does no I/O;
// Setup writes the base files.
func New(cfg Config) (*Driver, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("haproxy: %w", err)
	}
	return &Driver{cfg: cfg, cli: cli{socket: cfg.AdminSocket}}, nil
}

// Config returns the driver's configuration.
func (d *Driver) Config() Config { return d.cfg }

// Setup writes haproxy.cfg and the empty files it loads (existing maps and
// crt-list are kept: they hold the routes). When haproxy.cfg changed and
// a master socket is configured, haproxy is reloaded seamlessly so it
// listens as configured; without one, an operator restarts it.
func (d *Driver) Setup(ctx context.Context) (changed bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	changed, err = WriteBase(d.cfg)
	if err != nil || !changed || d.cfg.MasterSocket == "" {
		return changed, err
	}
	if _, err := os.Stat(d.cfg.MasterSocket); err != nil {
		return changed, nil // not running yet: it reads the new file when it starts
	}
	return changed, d.reload(ctx)
}

// reload asks the master to reload and waits for a new worker to answer
// on the runtime API.
func (d *Driver) reload(ctx context.Context) error {
	before, _ := d.workerPID(ctx)
	master := cli{socket: d.cfg.MasterSocket}
	if _, err := master.cmd(ctx, "reload", ""); err != nil {
		return fmt.Errorf("reload haproxy: %w", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if pid, err := d.workerPID(ctx); err == nil && pid != before {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("reload haproxy: no new worker answered within 15s (check %s with haproxy -c)", d.cfg.ConfigPath())
}

func (d *Driver) workerPID(ctx context.Context) (string, error) {
	out, err := d.cli.cmd(ctx, "show info", "")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "Pid: "); ok {
			return v, nil
		}
	}
	return "", errors.New("haproxy show info: no Pid")
}

func (d *Driver) listener(addr string) (executor.Listener, error) {
	ports := make([]string, 0, len(d.cfg.Listeners))
	for _, l := range d.cfg.Listeners {
		if l.HostPort() == addr {
			return l, nil
		}
		ports = append(ports, l.HostPort())
	}
	return executor.Listener{}, fmt.Errorf("%w: haproxy has no listener %s (it listens on %s)", executor.ErrListener, addr, strings.Join(ports, ", "))
}

// Upsert adds or replaces a route.
func (d *Driver) Upsert(ctx context.Context, r executor.Route) error {
	if err := r.Validate(); err != nil {
		return err
	}
	l, err := d.listener(r.Listener)
	if err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(r.Backend)
	if net.ParseIP(host) == nil {
		// set-dst takes an address; a name would need a resolver here.
		return fmt.Errorf("%w: haproxy needs an IP address as backend host, not %q", executor.ErrInvalidRoute, host)
	}
	flag := "plain"
	if r.BackendTLS {
		flag = "tls"
	}
	value := host + "|" + port + "|" + flag
	other := spec.ModeL4
	if r.Mode == spec.ModeL4 {
		other = spec.ModeL7
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if r.Mode == spec.ModeL7 {
		// The certificate first: the map entry makes the hostname live.
		if err := d.ensureCert(ctx, r.Hostname, r.CertFile, r.KeyFile); err != nil {
			return err
		}
	}
	if err := d.setMap(ctx, d.cfg.mapPath(r.Mode, l.Port), r.Hostname, value); err != nil {
		return err
	}
	if err := d.delMap(ctx, d.cfg.mapPath(other, l.Port), r.Hostname); err != nil {
		return err
	}
	if r.Mode == spec.ModeL4 {
		return d.dropCertIfUnused(ctx, r.Hostname)
	}
	return nil
}

// Remove deletes the route for hostname on listener.
func (d *Driver) Remove(ctx context.Context, listener, hostname string) error {
	l, err := d.listener(listener)
	if err != nil {
		return err
	}
	hostname = strings.ToLower(hostname)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range []string{spec.ModeL4, spec.ModeL7} {
		if err := d.delMap(ctx, d.cfg.mapPath(m, l.Port), hostname); err != nil {
			return err
		}
	}
	return d.dropCertIfUnused(ctx, hostname)
}

// List reads the routes haproxy serves from its runtime state (not from
// the files), so a route deleted over the socket shows as missing.
func (d *Driver) List(ctx context.Context) ([]executor.Route, error) {
	crts, err := d.crtEntries(ctx)
	if err != nil {
		return nil, err
	}
	var out []executor.Route
	for _, l := range d.cfg.Listeners {
		for _, mode := range []string{spec.ModeL4, spec.ModeL7} {
			entries, err := d.showMap(ctx, d.cfg.mapPath(mode, l.Port))
			if err != nil {
				return nil, err
			}
			for _, e := range entries {
				r := executor.Route{Listener: l.HostPort(), Hostname: e.key, Mode: mode}
				parts := strings.Split(e.value, "|")
				if len(parts) != 3 || (parts[2] != "plain" && parts[2] != "tls") {
					// Not written by this driver: reported as it is, and
					// Validate rejects it as an unknown mode.
					r.Mode = "unknown(" + e.value + ")"
				} else {
					r.Backend = net.JoinHostPort(parts[0], parts[1])
					r.BackendTLS = parts[2] == "tls"
				}
				if mode == spec.ModeL7 {
					if crt, ok := crts[e.key]; ok {
						r.CertFile, r.KeyFile, err = d.certSource(ctx, crt)
						if err != nil {
							return nil, err
						}
					}
				}
				out = append(out, r)
			}
		}
	}
	slices.SortFunc(out, func(a, b executor.Route) int { return strings.Compare(a.ID(), b.ID()) })
	return out, nil
}

// certSource returns the files a loaded certificate came from. When the
// chain file now holds another certificate than the one haproxy serves
// (renewed on disk), the path is marked stale so the read-back differs and
// the converge pass pushes the new one.
func (d *Driver) certSource(ctx context.Context, crt string) (certFile, keyFile string, err error) {
	certFile, _ = os.Readlink(crt)
	keyFile, _ = os.Readlink(strings.TrimSuffix(crt, ".crt") + ".key")
	if certFile == "" {
		return "", "", nil
	}
	loaded, err := d.loadedFingerprint(ctx, crt)
	if err != nil {
		return "", "", err
	}
	onDisk, err := fingerprint(certFile, keyFile)
	if err == nil && loaded != onDisk {
		certFile += " (stale: haproxy serves an older certificate)"
	}
	return certFile, keyFile, nil
}

func fingerprint(certFile, keyFile string) (string, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return "", err
	}
	sum := sha1.Sum(pair.Certificate[0])
	return strings.ToUpper(hex.EncodeToString(sum[:])), nil
}

// loadedFingerprint is the SHA-1 fingerprint of the leaf haproxy holds
// under name, "" when it holds none.
func (d *Driver) loadedFingerprint(ctx context.Context, name string) (string, error) {
	out, err := d.cli.cmd(ctx, "show ssl cert "+name, "")
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(out, "Can't display") {
		return "", nil
	}
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "SHA1 FingerPrint: "); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", nil // an empty store (new, never committed)
}

// ensureCert makes haproxy serve certFile/keyFile for hostname: links in
// certs/ (what a restarted haproxy loads), the certificate in its store
// (replaced when the files changed), and a crt-list entry selecting it by
// SNI.
func (d *Driver) ensureCert(ctx context.Context, hostname, certFile, keyFile string) error {
	chain, err := os.ReadFile(certFile)
	if err != nil {
		return fmt.Errorf("%w: %w", executor.ErrCertificate, err)
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return fmt.Errorf("%w: %w", executor.ErrCertificate, err)
	}
	want, err := fingerprint(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", executor.ErrCertificate, certFile, err)
	}
	crt, keyLink := d.cfg.certLink(hostname)
	if err := linkAtomic(certFile, crt); err != nil {
		return err
	}
	if err := linkAtomic(keyFile, keyLink); err != nil {
		return err
	}
	have, err := d.cli.cmd(ctx, "show ssl cert "+crt, "")
	if err != nil {
		return err
	}
	loaded := ""
	if strings.HasPrefix(have, "Can't display") {
		if _, err := d.cli.expect(ctx, "new ssl cert "+crt, "", "New empty certificate store"); err != nil {
			return err
		}
	} else if loaded, err = d.loadedFingerprint(ctx, crt); err != nil {
		return err
	}
	if loaded != want {
		payload := strings.TrimRight(string(chain), "\n") + "\n" + strings.TrimRight(string(key), "\n") + "\n"
		if _, err := d.cli.expect(ctx, "set ssl cert "+crt, payload, "Transaction"); err != nil {
			return err
		}
		if _, err := d.cli.expect(ctx, "commit ssl cert "+crt, "", "Success!"); err != nil {
			_, _ = d.cli.cmd(ctx, "abort ssl cert "+crt, "")
			return err
		}
	}
	entries, err := d.crtEntries(ctx)
	if err != nil {
		return err
	}
	line := crtLine(crt, hostname)
	if entries[hostname] != crt {
		if _, err := d.cli.expect(ctx, "add ssl crt-list "+d.cfg.crtList(), line, "Success!"); err != nil {
			return err
		}
	}
	return d.editLines(d.cfg.crtList(), crt+" ", &line)
}

func crtLine(crt, hostname string) string {
	return crt + " [alpn h2,http/1.1] " + hostname
}

// dropCertIfUnused removes hostname's certificate from haproxy once no l7
// map of any listener routes it.
func (d *Driver) dropCertIfUnused(ctx context.Context, hostname string) error {
	for _, l := range d.cfg.Listeners {
		entries, err := d.showMap(ctx, d.cfg.mapPath(spec.ModeL7, l.Port))
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.key == hostname {
				return nil
			}
		}
	}
	crt, keyLink := d.cfg.certLink(hostname)
	entries, err := d.crtEntries(ctx)
	if err != nil {
		return err
	}
	if entries[hostname] == crt {
		if _, err := d.cli.expect(ctx, "del ssl crt-list "+d.cfg.crtList()+" "+crt, "", "deleted"); err != nil {
			return err
		}
	}
	if err := d.editLines(d.cfg.crtList(), crt+" ", nil); err != nil {
		return err
	}
	if fp, err := d.cli.cmd(ctx, "show ssl cert "+crt, ""); err != nil {
		return err
	} else if !strings.HasPrefix(fp, "Can't display") {
		if _, err := d.cli.expect(ctx, "del ssl cert "+crt, "", "deleted"); err != nil {
			return err
		}
	}
	for _, f := range []string{crt, keyLink} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove certificate link: %w", err)
		}
	}
	return nil
}

// crtEntries maps each SNI filter of the crt-list to its certificate.
func (d *Driver) crtEntries(ctx context.Context) (map[string]string, error) {
	out, err := d.cli.cmd(ctx, "show ssl crt-list -n "+d.cfg.crtList(), "")
	if err != nil {
		return nil, err
	}
	entries := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Fields(l)
		if len(f) == 0 || !strings.HasPrefix(f[0], "/") {
			return nil, fmt.Errorf("haproxy show ssl crt-list %s: %s (was haproxy started with %s?)", d.cfg.crtList(), oneLine(out), d.cfg.ConfigPath())
		}
		path := f[0]
		if i := strings.LastIndexByte(path, ':'); i > 0 {
			if _, err := strconv.Atoi(path[i+1:]); err == nil {
				path = path[:i] // "file:line"
			}
		}
		rest := strings.Join(f[1:], " ")
		if i := strings.LastIndexByte(rest, ']'); i >= 0 {
			rest = rest[i+1:]
		}
		for _, sni := range strings.Fields(rest) {
			entries[strings.ToLower(sni)] = path
		}
	}
	return entries, nil
}

type mapEntry struct{ key, value string }

func (d *Driver) showMap(ctx context.Context, file string) ([]mapEntry, error) {
	out, err := d.cli.cmd(ctx, "show map "+file, "")
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(out, "Unknown map") {
		return nil, fmt.Errorf("haproxy at %s does not know the map %s: start it with -f %s (written by mcp)", d.cfg.AdminSocket, file, d.cfg.ConfigPath())
	}
	var es []mapEntry
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 0:
		case len(f) == 3 && strings.HasPrefix(f[0], "0x"):
			es = append(es, mapEntry{key: f[1], value: f[2]})
		default:
			return nil, fmt.Errorf("haproxy show map %s: unexpected line %q", file, l)
		}
	}
	return es, nil
}

// setMap makes key map to value, in haproxy and in the file it loads.
func (d *Driver) setMap(ctx context.Context, file, key, value string) error {
	out, err := d.cli.cmd(ctx, "set map "+file+" "+key+" "+value, "")
	if err != nil {
		return err
	}
	switch {
	case out == "entry not found.":
		if _, err := d.cli.expect(ctx, "add map "+file+" "+key+" "+value, "", ""); err != nil {
			return err
		}
	case out != "":
		return fmt.Errorf("haproxy refused set map %s %s: %s", file, key, oneLine(out))
	}
	line := key + " " + value
	return d.editLines(file, key+" ", &line)
}

// delMap removes key, in haproxy and in the file; absent is fine.
func (d *Driver) delMap(ctx context.Context, file, key string) error {
	out, err := d.cli.cmd(ctx, "del map "+file+" "+key, "")
	if err != nil {
		return err
	}
	if out != "" && out != "Key not found." {
		return fmt.Errorf("haproxy refused del map %s %s: %s", file, key, oneLine(out))
	}
	return d.editLines(file, key+" ", nil)
}

// editLines rewrites file with the line starting with prefix replaced by
// *line (removed when nil), atomically, lines sorted.
func (d *Driver) editLines(file, prefix string, line *string) error {
	data, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", file, err)
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, prefix) {
			continue
		}
		lines = append(lines, l)
	}
	if line != nil {
		lines = append(lines, *line)
	}
	slices.Sort(lines)
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if b.String() == string(data) {
		return nil
	}
	return writeAtomic(file, []byte(b.String()), 0o600)
}

// Paths lists the files a restarted haproxy loads, for tests and docs.
func (d *Driver) Paths() []string {
	ps := []string{d.cfg.ConfigPath(), d.cfg.crtList()}
	for _, l := range d.cfg.Listeners {
		ps = append(ps, d.cfg.mapPath(spec.ModeL4, l.Port), d.cfg.mapPath(spec.ModeL7, l.Port))
	}
	return append(ps, filepath.Join(d.cfg.Dir, CertsDir))
}
