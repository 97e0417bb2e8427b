package testenv

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// Bind9Zone is the zone Bind9 serves when the test names none.
const Bind9Zone = "mcptest.internal"

// Bind9KeyName is the TSIG key allowed to update the test zones.
const Bind9KeyName = "mcp-test-key"

// Bind9Daemon is a private named (Debian's bind9) serving test zones on
// 127.0.0.1, updatable over RFC 2136 with one TSIG key (hmac-sha256).
// Its configuration, zone files, journals and log live under Dir.
//
// named runs as root here, without -u: it then keeps root and writes its
// journal (<zone>.db.jnl) next to the zone file in Dir, which is why every
// file it touches is under Dir and its own working directory is Dir.
type Bind9Daemon struct {
	Dir     string
	Addr    string   // 127.0.0.1:port, UDP and TCP
	Zones   []string // as given, without trailing dot
	KeyName string
	// KeyFile holds the key's base64 secret alone (what mcp's
	// tsig_secret_file reads).
	KeyFile string
	LogFile string

	cmd  *exec.Cmd
	done chan struct{}
}

// Bind9 starts a named for this test alone, serving Bind9Zone, and returns
// its address, the zone, the TSIG key's name and the file holding its
// secret. It is stopped (by PID) and removed when the test ends.
func Bind9(t testing.TB) (addr, zone, keyName, keyFile string) {
	t.Helper()
	d := StartBind9(t, Bind9Zone)
	return d.Addr, Bind9Zone, d.KeyName, d.KeyFile
}

func bind9Binary() (string, error) {
	if p, err := exec.LookPath("named"); err == nil {
		return p, nil
	}
	const debian = "/usr/sbin/named"
	if _, err := os.Stat(debian); err != nil {
		return "", err
	}
	return debian, nil
}

const bind9DirPrefix = "mcptest-bind9-"

// errExited is named stopping during start-up, typically because another
// process took the port first.
var errExited = errors.New("exited during start-up")

// StartBind9 starts a named for this test alone serving zones (each with
// an SOA, an NS and nothing else), updatable with the returned daemon's
// key. A named start takes well under a second, so each test gets its own
// server rather than sharing one: tests never see each other's records.
func StartBind9(t testing.TB, zones ...string) *Bind9Daemon {
	t.Helper()
	bin, err := bind9Binary()
	if err != nil {
		Missing(t, "testenv: named is not installed (Debian package bind9); run the tests with bind9 installed, or run .ci/run")
		return nil
	}
	if !isRoot() {
		Missing(t, "testenv: the private named needs root (it binds and writes as the user that runs it); run the tests as root, or run .ci/run")
		return nil
	}
	if len(zones) == 0 {
		zones = []string{Bind9Zone}
	}
	parent := bind9Parent()
	sweepBind9(parent)
	dir, err := os.MkdirTemp(parent, bind9DirPrefix)
	if err != nil {
		t.Fatalf("testenv: bind9 dir: %v", err)
	}
	d := &Bind9Daemon{
		Dir:     dir,
		KeyName: Bind9KeyName,
		KeyFile: filepath.Join(dir, "tsig.secret"),
		LogFile: filepath.Join(dir, "named.log"),
	}
	for _, z := range zones {
		d.Zones = append(d.Zones, strings.TrimSuffix(strings.ToLower(z), "."))
	}
	t.Cleanup(func() {
		d.stop()
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("testenv: remove bind9 dir: %v", err)
		}
	})
	if err := d.setup(); err != nil {
		t.Fatalf("testenv: bind9: %v", err)
	}
	// The port is picked free (TCP), then taken by named for UDP and TCP:
	// another process can win the race in between, so try a few.
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			lastErr = err
			continue
		}
		d.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		lastErr = d.start(t.Context(), bin, port)
		if lastErr == nil {
			return d
		}
		if !errors.Is(lastErr, errExited) {
			break // only a lost race for the port is worth another try
		}
	}
	t.Fatalf("testenv: bind9: %v", lastErr)
	return nil
}

// bind9Parent is where a daemon's directory goes: the temp dir, unless
// AppArmor is on. Debian then confines /usr/sbin/named to its profile,
// which lets it read and write only under /etc/bind, /var/lib/bind and
// /var/cache/bind, so a configuration in /tmp would be refused.
func bind9Parent() string {
	if b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled"); err == nil && strings.TrimSpace(string(b)) == "Y" {
		if fi, err := os.Stat("/var/cache/bind"); err == nil && fi.IsDir() {
			return "/var/cache/bind"
		}
	}
	return os.TempDir()
}

// sweepBind9 removes what test binaries that died before their cleanup
// left in parent: their named (by recorded PID) and directory.
func sweepBind9(parent string) {
	if parent == os.TempDir() {
		sweepStale(bind9DirPrefix)
		return
	}
	dirs, _ := filepath.Glob(filepath.Join(parent, bind9DirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		owner, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || owner <= 0 || syscall.Kill(owner, 0) != syscall.ESRCH {
			continue
		}
		killRecorded(dir)
		_ = os.RemoveAll(dir)
	}
}

func (d *Bind9Daemon) setup() error {
	if err := os.WriteFile(filepath.Join(d.Dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	b64 := base64.StdEncoding.EncodeToString(secret)
	if err := os.WriteFile(d.KeyFile, []byte(b64+"\n"), 0o600); err != nil {
		return err
	}
	var zones strings.Builder
	for _, z := range d.Zones {
		file := filepath.Join(d.Dir, z+".db")
		// A fresh zone: SOA, NS and the NS's address (named refuses to
		// load an in-zone NS without one). The ns record is also the
		// "other record" tests check mcp never touches.
		soa := fmt.Sprintf(`$TTL 60
@ IN SOA ns.%[1]s. hostmaster.%[1]s. 1 3600 600 86400 60
@ IN NS ns.%[1]s.
ns IN A 127.0.0.1
`, z)
		if err := os.WriteFile(file, []byte(soa), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(&zones, "zone %q {\n\ttype primary;\n\tfile %q;\n\tallow-update { key %q; };\n\tallow-transfer { none; };\n};\n", z, file, d.KeyName)
	}
	// controls {} keeps named from opening rndc's port 953 (shared by
	// every named on the host); session-keyfile and the other paths keep
	// it out of /var/cache/bind and /run/named.
	conf := fmt.Sprintf(`// Private named for mcp's tests.
options {
	directory %[1]q;
	pid-file %[2]q;
	session-keyfile %[3]q;
	managed-keys-directory %[1]q;
	listen-on { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify no;
	allow-query { any; };
};
controls { };
key %[4]q {
	algorithm hmac-sha256;
	secret %[5]q;
};
%[6]s`, d.Dir, filepath.Join(d.Dir, "named.pid"), filepath.Join(d.Dir, "session.key"), d.KeyName, b64, zones.String())
	return os.WriteFile(filepath.Join(d.Dir, "named.conf"), []byte(conf), 0o600)
}

func (d *Bind9Daemon) start(ctx context.Context, bin string, port int) error {
	logf, err := os.OpenFile(d.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	// -g: foreground, log to stderr; -4: IPv4 only, like listen-on.
	cmd := exec.Command(bin, "-g", "-4", "-c", filepath.Join(d.Dir, "named.conf"), "-p", strconv.Itoa(port))
	cmd.Dir = d.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start named: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	d.cmd, d.done = cmd, done
	_ = os.WriteFile(filepath.Join(d.Dir, daemonPIDFile), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
	if err := d.wait(ctx); err != nil {
		d.stop()
		return fmt.Errorf("%w\n%s", err, tail(d.LogFile, 15))
	}
	return nil
}

// wait returns once named answers the SOA of every zone over TCP.
func (d *Bind9Daemon) wait(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c := &mdns.Client{Net: "tcp", Timeout: time.Second}
	var last error
	for {
		select {
		case <-d.done:
			return fmt.Errorf("named on %s: %w", d.Addr, errExited)
		default:
		}
		last = nil
		for _, z := range d.Zones {
			m := new(mdns.Msg)
			m.SetQuestion(mdns.Fqdn(z), mdns.TypeSOA)
			r, _, err := c.ExchangeContext(ctx, m, d.Addr)
			if err == nil && (r.Rcode != mdns.RcodeSuccess || len(r.Answer) == 0) {
				err = fmt.Errorf("SOA %s: rcode %s, %d answers", z, mdns.RcodeToString[r.Rcode], len(r.Answer))
			}
			if err != nil {
				last = err
				break
			}
		}
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("named on %s did not answer within 20s: %w", d.Addr, last)
		case <-d.done:
			return fmt.Errorf("named on %s: %w", d.Addr, errExited)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop ends named by its PID: SIGTERM, then SIGKILL after 5s.
func (d *Bind9Daemon) stop() {
	if d.cmd == nil {
		return
	}
	stopProcess(d.cmd, d.done, syscall.SIGTERM, 5*time.Second)
	d.cmd, d.done = nil, nil
}

// WrongKeyFile writes a secret named never accepts, for tests of a wrong
// key, and returns its path.
func (d *Bind9Daemon) WrongKeyFile(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "wrong.secret")
	if err := os.WriteFile(p, []byte(base64.StdEncoding.EncodeToString(b)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Stop stops named (by PID) and leaves Dir, for tests of a server that went
// away; cleanup still removes everything.
func (d *Bind9Daemon) Stop() { d.stop() }

// Start starts named again after Stop, on the same address, with the zones
// as they were (journal included): a server that comes back.
func (d *Bind9Daemon) Start(ctx context.Context) error {
	bin, err := bind9Binary()
	if err != nil {
		return err
	}
	_, p, err := net.SplitHostPort(d.Addr)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return err
	}
	return d.start(ctx, bin, port)
}
