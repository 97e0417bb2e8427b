package executor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"metacircular.net/mcp/executor/certs"
	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// Certificates, as the executor manages them.
//
// Each hostname's current certificate is kept in the agent's state dir
// (<state>/certs/<hostname>/chain.pem, key.pem, ca.pem; 0700/0600): that
// copy is the source every consumer file is written from, so a consumer
// that gains a reader, or a file deleted by hand, is restored without
// asking the CA again, and a failed issuance leaves it untouched.
//
// Consumers get copies, written atomically (temp + rename), keys 0600:
//
//   - L7 routes: <proxy_cert_dir>/<hostname>.pem (full chain) and .key,
//     owned by the proxy's user (CertProxyOwner; the agent's by default).
//   - L4 routes: /srv/<service>/certs/cert.pem, key.pem, ca.pem, owned by
//     the component's user. A service with several L4 hostnames gets the
//     first (sorted) there and the others in /srv/<service>/certs/<hostname>/.
//
// mcp records every file it writes, with the SHA-256 of its content, in the
// registry's certs store (CertRecord). A file that exists and is not what
// mcp last wrote belongs to someone else: mcp leaves it alone (and uses
// nothing of it), says so in the log and the record, and never overwrites
// it. Removal deletes the L7 files mcp wrote; nothing under /srv/<service>
// is ever deleted.
//
// Renewal (RenewCerts, from the agent's loop) replaces a certificate whose
// remaining validity is below the window (default 30 days) and re-points
// its consumers: the proxy re-reads an L7 hostname's files (the route
// runner's reloadCert, or the CertOnRenew hook), and the running containers
// of the components that read an L4 hostname's files are restarted.

// CertRecord is what mcp keeps in the registry's certs store per hostname.
type CertRecord struct {
	Hostname    string    `json:"hostname"`
	Fingerprint string    `json:"fingerprint"` // hex SHA-256 of the leaf
	NotAfter    time.Time `json:"not_after"`
	IssuedAt    time.Time `json:"issued_at"`
	Issuer      string    `json:"issuer,omitempty"`
	// Users are who reads the certificate.
	Users []CertUser `json:"users"`
	// Files are the consumer files: mcp's (with the hash of what it wrote)
	// and foreign ones found in place.
	Files []CertFile `json:"files"`
}

// CertUser is one consumer of a hostname's certificate.
type CertUser struct {
	Service string `json:"service"`
	Mode    string `json:"mode"` // spec.ModeL7 or spec.ModeL4
	// Components are the L4 components whose containers read the files.
	Components []string `json:"components,omitempty"`
}

// CertFile is one consumer file.
type CertFile struct {
	// Path is the host path, without the executor's host root.
	Path    string `json:"path"`
	Role    string `json:"role"` // "chain", "key" or "ca"
	Service string `json:"service"`
	Mode    string `json:"mode"`
	UID     int    `json:"uid"`
	GID     int    `json:"gid"`
	// SHA256 is the hash of the content mcp wrote; empty for a foreign file.
	SHA256 string `json:"sha256,omitempty"`
	// Foreign marks a file mcp found in place and leaves alone.
	Foreign bool `json:"foreign,omitempty"`
}

// Roles of certificate files.
const (
	roleChain = "chain"
	roleKey   = "key"
	roleCA    = "ca"
)

// CertRenewal is the outcome of renewing one hostname.
type CertRenewal struct {
	Hostname string
	NotAfter time.Time // the new expiry; zero when Err is set
	Err      error
	// Repeated is set when Err says the same as the previous attempt for
	// this hostname, so callers can report a failure once, not every pass.
	Repeated bool
	// Repointed says which consumers were told: "proxy", "container <id>".
	Repointed []string
}

// CertOption configures certificate management.
type CertOption func(*certRunner)

// CertProxyDir is where L7 certificates go (default /srv/mc-proxy/certs),
// resolved under the host root.
func CertProxyDir(dir string) CertOption { return func(c *certRunner) { c.proxyDir = dir } }

// CertProxyOwner makes the proxy's user (uid:gid) own L7 files.
func CertProxyOwner(uid, gid int) CertOption {
	return func(c *certRunner) { c.proxyUID, c.proxyGID = uid, gid }
}

// CertRenewBefore is the renewal window: a certificate with less validity
// left is replaced (default 30 days).
func CertRenewBefore(d time.Duration) CertOption { return func(c *certRunner) { c.renewBefore = d } }

// CertIssuerName names the issuer in records and status ("local", "acme").
func CertIssuerName(name string) CertOption { return func(c *certRunner) { c.issuerName = name } }

// CertOnRenew is called after an L7 hostname's files were replaced, in
// addition to the route runner's own reload: for a proxy mcp does not
// drive itself.
func CertOnRenew(fn func(ctx context.Context, hostname, chainFile, keyFile string) error) CertOption {
	return func(c *certRunner) { c.onRenew = fn }
}

// WithCerts makes the executor manage certificates with issuer: cert steps
// run and Features reports Certs. stateDir keeps the current certificate of
// every hostname (the agent passes <state_dir>/certs).
func WithCerts(issuer certs.Issuer, stateDir string, opts ...CertOption) Option {
	return func(e *Executor) {
		c := &certRunner{e: e, issuer: issuer, stateDir: stateDir, proxyDir: certs.DefaultProxyCertDir,
			renewBefore: certs.DefaultRenewBefore, proxyUID: -1, proxyGID: -1}
		for _, o := range opts {
			o(c)
		}
		e.kinds[planner.KindCert] = c
	}
}

type certRunner struct {
	e           *Executor
	issuer      certs.Issuer
	issuerName  string
	stateDir    string
	proxyDir    string
	proxyUID    int
	proxyGID    int
	renewBefore time.Duration
	onRenew     func(ctx context.Context, hostname, chainFile, keyFile string) error
	// failing is the last renewal error per hostname (one reconcile at a
	// time, so no lock).
	failing map[string]string
}

// certReloader is implemented by the route runner: the proxy re-reads the
// files of an L7 hostname (re-registration of its routes).
type certReloader interface {
	reloadCert(ctx context.Context, hostname string) error
}

// ErrForeignCert marks a consumer file mcp did not write and so leaves alone.
var ErrForeignCert = errors.New("certificate file not written by mcp")

func (c *certRunner) run(ctx context.Context, r *serviceRun, st planner.Step) error {
	host := strings.ToLower(st.Hostname)
	switch st.Action {
	case planner.ActionRemove:
		return c.remove(ctx, st.Service, host)
	case planner.ActionCreate, planner.ActionUpdate:
	default:
		return fmt.Errorf("cert step action %q: %w", st.Action, ErrUnsupported)
	}
	if r.desired == nil {
		return fmt.Errorf("certificate for %s: service %s is not desired", host, st.Service)
	}
	files, users, err := c.consumers(*r.desired, host)
	if err != nil {
		return err
	}
	created, err := c.ensure(ctx, host, st.Service, users, files, c.e.now(), false)
	if err != nil {
		return err
	}
	// A new service that fails later gets its new proxy files back out;
	// files under /srv/<service> stay (never deleted), as does the stored
	// certificate, which the retry reuses instead of asking the CA again.
	if len(created) > 0 {
		r.undoers = append(r.undoers, func(ctx context.Context) error {
			var errs []error
			for _, p := range created {
				if err := os.Remove(c.hostPath(p)); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		})
	}
	return nil
}

// consumers lists the files and users of host's certificate for service s.
func (c *certRunner) consumers(s spec.Service, host string) ([]CertFile, []CertUser, error) {
	var l4hosts []string
	for _, comp := range s.Components {
		for _, rt := range comp.Routes {
			if rt.Mode != spec.ModeL7 {
				l4hosts = append(l4hosts, strings.ToLower(rt.Hostname))
			}
		}
	}
	slices.Sort(l4hosts)
	l4hosts = slices.Compact(l4hosts)
	var (
		files   []CertFile
		l7      bool
		l4comps []string
		owner   *spec.Component
	)
	for i, comp := range s.Components {
		for _, rt := range comp.Routes {
			if strings.ToLower(rt.Hostname) != host {
				continue
			}
			if rt.Mode == spec.ModeL7 {
				l7 = true
			} else if !slices.Contains(l4comps, comp.Name) {
				l4comps = append(l4comps, comp.Name)
				if owner == nil {
					owner = &s.Components[i]
				}
			}
		}
	}
	var users []CertUser
	if l7 {
		chain, key := certs.L7Paths(c.proxyDir, host)
		files = append(files,
			CertFile{Path: chain, Role: roleChain, Service: s.Name, Mode: spec.ModeL7, UID: c.proxyUID, GID: c.proxyGID},
			CertFile{Path: key, Role: roleKey, Service: s.Name, Mode: spec.ModeL7, UID: c.proxyUID, GID: c.proxyGID})
		users = append(users, CertUser{Service: s.Name, Mode: spec.ModeL7})
	}
	if owner != nil {
		uid, gid, err := parseUser(owner.User)
		if err != nil {
			return nil, nil, fmt.Errorf("certificate for %s: component %s: %w", host, owner.Name, err)
		}
		chain, key, ca := certs.L4Paths("/srv", s.Name)
		if len(l4hosts) > 0 && l4hosts[0] != host {
			d := filepath.Join(filepath.Dir(chain), host)
			chain, key, ca = filepath.Join(d, "cert.pem"), filepath.Join(d, "key.pem"), filepath.Join(d, "ca.pem")
		}
		for _, f := range []CertFile{{Path: chain, Role: roleChain}, {Path: key, Role: roleKey}, {Path: ca, Role: roleCA}} {
			f.Service, f.Mode, f.UID, f.GID = s.Name, spec.ModeL4, uid, gid
			files = append(files, f)
		}
		slices.Sort(l4comps)
		users = append(users, CertUser{Service: s.Name, Mode: spec.ModeL4, Components: l4comps})
	}
	return files, users, nil
}

// parseUser reads a component's "uid:gid" (empty: root).
func parseUser(u string) (int, int, error) {
	if u == "" {
		return 0, 0, nil
	}
	us, gs, ok := strings.Cut(u, ":")
	uid, err1 := strconv.Atoi(us)
	gid, err2 := strconv.Atoi(gs)
	if !ok || err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		return 0, 0, fmt.Errorf("user %q is not uid:gid; certificate files need numeric owners", u)
	}
	return uid, gid, nil
}

func (c *certRunner) hostPath(p string) string {
	if root := c.e.hostRoot; root != "" && root != "/" {
		return filepath.Join(root, p)
	}
	return p
}

// ensure makes host's certificate valid and in place for service's users:
// the stored copy is reused unless it is missing, broken or inside the
// renewal window (or force is set); consumer files are (re)written when
// they differ. It returns the paths of consumer files that did not exist
// before. Nothing is written unless a complete, checked certificate is in
// hand.
func (c *certRunner) ensure(ctx context.Context, host, service string, users []CertUser, files []CertFile, now time.Time, force bool) ([]string, error) {
	rec, err := c.record(ctx, host)
	if err != nil {
		return nil, err
	}
	b, stored := c.loadBundle(host)
	renew := force || !stored || b.Check(host, now) != nil || b.NotAfter.Sub(now) < c.renewBefore
	if renew {
		nb, err := c.issue(ctx, host, now)
		if err != nil {
			return nil, err
		}
		b = nb
	}
	// Merge this service's users and files into the record; other
	// services' entries of the same hostname stay.
	rec.Hostname = host
	rec.Users = slices.DeleteFunc(rec.Users, func(u CertUser) bool { return u.Service == service })
	rec.Users = append(rec.Users, users...)
	old := map[string]CertFile{}
	for _, f := range rec.Files {
		old[f.Path] = f
	}
	rec.Files = slices.DeleteFunc(rec.Files, func(f CertFile) bool { return f.Service == service })
	written, created, changed, err := c.writeFiles(host, b, files, old)
	rec.Files = append(rec.Files, written...)
	if err != nil {
		return nil, err
	}
	if err := c.finish(ctx, &rec, b, renew, now); err != nil {
		return created, err
	}
	if changed {
		c.repoint(ctx, rec, service)
	}
	return created, nil
}

// issue asks the issuer, checks the answer and stores it in the state dir.
func (c *certRunner) issue(ctx context.Context, host string, now time.Time) (certs.Bundle, error) {
	b, err := c.issuer.Issue(ctx, host)
	if err != nil {
		return certs.Bundle{}, fmt.Errorf("certificate for %s: %w", host, err)
	}
	if err := b.Check(host, now); err != nil {
		return certs.Bundle{}, fmt.Errorf("certificate for %s: the issuer returned an unusable certificate: %w", host, err)
	}
	if err := c.saveBundle(host, b); err != nil {
		return certs.Bundle{}, fmt.Errorf("certificate for %s: %w", host, err)
	}
	c.e.log.Info("certificate issued", "hostname", host, "issuer", c.issuerName, "not_after", b.NotAfter.UTC().Format(time.RFC3339))
	return b, nil
}

// writeFiles writes the consumer files of one service, set by set (L7,
// L4), each set atomically. A set with a file mcp did not write is left
// alone and recorded as foreign. It reports the files as recorded, the
// paths it created and whether an existing consumer file was replaced.
func (c *certRunner) writeFiles(host string, b certs.Bundle, files []CertFile, old map[string]CertFile) (out []CertFile, created []string, changed bool, err error) {
	sets := map[string][]CertFile{}
	for _, f := range files {
		sets[f.Mode] = append(sets[f.Mode], f)
	}
	for _, mode := range slices.Sorted(maps.Keys(sets)) {
		set := sets[mode]
		var (
			writes  []certs.File
			foreign []string
			fresh   []string
		)
		for i := range set {
			f := &set[i]
			data := content(b, f.Role)
			f.SHA256 = sha(data)
			have, rerr := os.ReadFile(c.hostPath(f.Path))
			switch {
			case errors.Is(rerr, os.ErrNotExist):
				fresh = append(fresh, f.Path)
			case rerr != nil:
				return out, created, changed, fmt.Errorf("certificate for %s: read %s: %w", host, f.Path, rerr)
			case bytes.Equal(have, data):
				continue // already in place
			case old[f.Path].SHA256 == "" || old[f.Path].SHA256 != sha(have):
				foreign = append(foreign, f.Path)
				continue
			default:
				changed = true
			}
			writes = append(writes, certs.File{Path: c.hostPath(f.Path), Data: data, Mode: fileMode(f.Role), UID: f.UID, GID: f.GID})
		}
		if len(foreign) > 0 {
			c.e.log.Warn("leaving certificate files mcp did not write; the service keeps using them",
				"hostname", host, "mode", mode, "files", strings.Join(foreign, ", "))
			for _, f := range set {
				out = append(out, CertFile{Path: f.Path, Role: f.Role, Service: f.Service, Mode: f.Mode, UID: f.UID, GID: f.GID, Foreign: true})
			}
			continue
		}
		if len(writes) > 0 {
			if err := certs.WriteSet(writes); err != nil {
				return out, created, changed, fmt.Errorf("certificate for %s: %w", host, err)
			}
		}
		created = append(created, fresh...)
		out = append(out, set...)
	}
	return out, created, changed, nil
}

func content(b certs.Bundle, role string) []byte {
	switch role {
	case roleKey:
		return b.KeyPEM
	case roleCA:
		return b.CAPEM
	}
	return b.ChainPEM
}

func fileMode(role string) os.FileMode {
	if role == roleKey {
		return 0o600
	}
	return 0o644
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// finish stores the record with the certificate's identity.
func (c *certRunner) finish(ctx context.Context, rec *CertRecord, b certs.Bundle, issued bool, now time.Time) error {
	fp, err := b.Fingerprint()
	if err != nil {
		return err
	}
	if issued || rec.Fingerprint != fp {
		rec.IssuedAt = now.UTC()
	}
	rec.Fingerprint, rec.NotAfter, rec.Issuer = fp, b.NotAfter.UTC(), c.issuerName
	slices.SortFunc(rec.Users, func(a, b CertUser) int { return strings.Compare(a.Service+a.Mode, b.Service+b.Mode) })
	slices.SortFunc(rec.Files, func(a, b CertFile) int { return strings.Compare(a.Path, b.Path) })
	return c.putRecord(ctx, *rec)
}

// repoint tells the consumers of rec (of one service, or all when service
// is "") that the files changed. Failures are logged: the files are right,
// and the next renewal check or deploy tries again.
func (c *certRunner) repoint(ctx context.Context, rec CertRecord, service string) []string {
	var done []string
	for _, u := range rec.Users {
		if service != "" && u.Service != service {
			continue
		}
		if u.Mode == spec.ModeL7 && !slices.Contains(done, "proxy") {
			if err := c.reloadProxy(ctx, rec.Hostname); err != nil {
				c.e.log.Warn("proxy did not take the renewed certificate", "hostname", rec.Hostname, "err", err)
			} else {
				done = append(done, "proxy")
			}
			continue
		}
		ids, err := c.restartReaders(ctx, u)
		if err != nil {
			c.e.log.Warn("could not restart a container for its renewed certificate", "hostname", rec.Hostname, "service", u.Service, "err", err)
		}
		for _, id := range ids {
			done = append(done, "container "+id)
		}
	}
	return done
}

func (c *certRunner) reloadProxy(ctx context.Context, host string) error {
	var errs []error
	if rl, ok := c.e.kinds[planner.KindRoute].(certReloader); ok {
		errs = append(errs, rl.reloadCert(ctx, host))
	}
	if c.onRenew != nil {
		chain, key := certs.L7Paths(c.proxyDir, host)
		errs = append(errs, c.onRenew(ctx, host, c.hostPath(chain), c.hostPath(key)))
	}
	return errors.Join(errs...)
}

// restartReaders restarts the running containers of the components that
// read an L4 certificate, from the deployed spec: a TLS server reads its
// certificate at start.
func (c *certRunner) restartReaders(ctx context.Context, u CertUser) ([]string, error) {
	snap, err := c.e.store.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	d, ok := snap.Services[u.Service]
	if !ok || !d.Spec.Active {
		return nil, nil
	}
	list, err := c.e.rt.List(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, comp := range d.Spec.Components {
		if !slices.Contains(u.Components, comp.Name) {
			continue
		}
		st := d.Components[comp.Name]
		id := ContainerID(u.Service, comp.Name, st.ActiveSlot)
		if !slices.ContainsFunc(list, func(ct Container) bool { return ct.ID == id && ct.Status == StatusRunning }) {
			continue // not running: it reads the new files when it starts
		}
		cs, err := c.e.containerSpec(ctx, d.Spec, comp, st.ActiveSlot, st.ImageDigest, d.Commit)
		if err != nil {
			return ids, err
		}
		if err := c.e.rt.Remove(ctx, id, c.e.grace); err != nil {
			return ids, err
		}
		if err := c.e.rt.Start(ctx, cs); err != nil {
			return ids, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// remove drops service's use of host's certificate: the L7 files mcp
// wrote (and still hold what it wrote) are deleted when no other service
// reads them; L4 files under /srv/<service> are never deleted.
func (c *certRunner) remove(ctx context.Context, service, host string) error {
	rec, err := c.record(ctx, host)
	if err != nil {
		return err
	}
	rec.Users = slices.DeleteFunc(rec.Users, func(u CertUser) bool { return u.Service == service })
	l7Left := slices.ContainsFunc(rec.Users, func(u CertUser) bool { return u.Mode == spec.ModeL7 })
	var keep []CertFile
	for _, f := range rec.Files {
		if f.Service != service {
			keep = append(keep, f)
			continue
		}
		if f.Mode != spec.ModeL7 || f.Foreign || l7Left {
			continue
		}
		p := c.hostPath(f.Path)
		have, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("certificate for %s: %w", host, err)
		}
		if sha(have) != f.SHA256 {
			c.e.log.Warn("not deleting a certificate file changed since mcp wrote it", "hostname", host, "file", f.Path)
			continue
		}
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("certificate for %s: %w", host, err)
		}
	}
	rec.Files = keep
	if len(rec.Users) > 0 {
		return c.putRecord(ctx, rec)
	}
	if err := os.RemoveAll(filepath.Join(c.stateDir, host)); err != nil {
		return fmt.Errorf("certificate for %s: %w", host, err)
	}
	return c.deleteRecord(ctx, host)
}

// RenewCerts renews every certificate mcp manages whose remaining validity
// at now is below the renewal window, rewrites its files and re-points its
// consumers. A certificate outside the window is not touched and nothing
// is requested. A failed renewal leaves the previous certificate serving;
// its error is in the result. The agent calls this from its loop.
func (e *Executor) RenewCerts(ctx context.Context, now time.Time) ([]CertRenewal, error) {
	c, ok := e.kinds[planner.KindCert].(*certRunner)
	if !ok {
		return nil, nil
	}
	recs, err := c.records(ctx)
	if err != nil {
		return nil, err
	}
	var out []CertRenewal
	for _, rec := range recs {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		if rec.NotAfter.Sub(now) >= c.renewBefore {
			continue
		}
		if !slices.ContainsFunc(rec.Files, func(f CertFile) bool { return !f.Foreign }) {
			continue // only files mcp leaves alone: nothing to renew
		}
		res := CertRenewal{Hostname: rec.Hostname}
		fail := func(err error) {
			res.Err = err
			res.Repeated = c.failing[rec.Hostname] == err.Error()
			if c.failing == nil {
				c.failing = map[string]string{}
			}
			c.failing[rec.Hostname] = err.Error()
			out = append(out, res)
		}
		b, err := c.issue(ctx, rec.Hostname, now)
		if err != nil {
			fail(err)
			continue
		}
		old := map[string]CertFile{}
		var files []CertFile
		for _, f := range rec.Files {
			old[f.Path] = f
			if !f.Foreign {
				files = append(files, f)
			}
		}
		foreign := slices.DeleteFunc(slices.Clone(rec.Files), func(f CertFile) bool { return !f.Foreign })
		written, _, _, err := c.writeFiles(rec.Hostname, b, files, old)
		rec.Files = append(foreign, written...)
		if err == nil {
			err = c.finish(ctx, &rec, b, true, now)
		}
		if err != nil {
			fail(err)
			continue
		}
		delete(c.failing, rec.Hostname)
		res.NotAfter = b.NotAfter
		res.Repointed = c.repoint(ctx, rec, "")
		e.log.Info("certificate renewed", "hostname", rec.Hostname, "not_after", b.NotAfter.UTC().Format(time.RFC3339),
			"repointed", strings.Join(res.Repointed, ", "))
		out = append(out, res)
	}
	return out, nil
}

// Certs returns the certificate records, sorted by hostname (status).
func (e *Executor) Certs(ctx context.Context) ([]CertRecord, error) {
	c, ok := e.kinds[planner.KindCert].(*certRunner)
	if !ok {
		return nil, nil
	}
	return c.records(ctx)
}

// ReadCertRecords reads the certificate records from a registry, sorted by
// hostname; the agent's status uses it without an executor.
func ReadCertRecords(ctx context.Context, s interface {
	View(ctx context.Context, fn func(tx *registry.Tx) error) error
}) ([]CertRecord, error) {
	var out []CertRecord
	err := s.View(ctx, func(tx *registry.Tx) error {
		raw, err := tx.List(registry.StoreCerts)
		if err != nil {
			return err
		}
		for _, id := range slices.Sorted(maps.Keys(raw)) {
			var rec CertRecord
			if err := json.Unmarshal(raw[id], &rec); err != nil {
				return fmt.Errorf("decode certificate record %s: %w", id, err)
			}
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read certificate records: %w", err)
	}
	return out, nil
}

func (c *certRunner) store() (recordStore, error) {
	s, ok := c.e.store.(recordStore)
	if !ok {
		return nil, fmt.Errorf("the executor's store (%T) cannot keep certificate records", c.e.store)
	}
	return s, nil
}

func (c *certRunner) records(ctx context.Context) ([]CertRecord, error) {
	s, err := c.store()
	if err != nil {
		return nil, err
	}
	return ReadCertRecords(ctx, s)
}

// record returns host's record, or an empty one.
func (c *certRunner) record(ctx context.Context, host string) (CertRecord, error) {
	s, err := c.store()
	if err != nil {
		return CertRecord{}, err
	}
	var rec CertRecord
	err = s.View(ctx, func(tx *registry.Tx) error { return tx.Get(registry.StoreCerts, host, &rec) })
	if errors.Is(err, registry.ErrNotFound) {
		return CertRecord{Hostname: host}, nil
	}
	if err != nil {
		return CertRecord{}, fmt.Errorf("read certificate record %s: %w", host, err)
	}
	return rec, nil
}

func (c *certRunner) putRecord(ctx context.Context, rec CertRecord) error {
	s, err := c.store()
	if err != nil {
		return err
	}
	return s.Update(ctx, func(tx *registry.Tx) error { return tx.Put(registry.StoreCerts, rec.Hostname, rec) })
}

func (c *certRunner) deleteRecord(ctx context.Context, host string) error {
	s, err := c.store()
	if err != nil {
		return err
	}
	return s.Update(ctx, func(tx *registry.Tx) error { return tx.Delete(registry.StoreCerts, host) })
}

// loadBundle reads host's stored certificate; false when absent or torn.
func (c *certRunner) loadBundle(host string) (certs.Bundle, bool) {
	dir := filepath.Join(c.stateDir, host)
	chain, err1 := os.ReadFile(filepath.Join(dir, "chain.pem"))
	key, err2 := os.ReadFile(filepath.Join(dir, "key.pem"))
	ca, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err1 != nil || err2 != nil {
		return certs.Bundle{}, false
	}
	b := certs.Bundle{ChainPEM: chain, KeyPEM: key, CAPEM: ca}
	leaf, err := b.Leaf()
	if err != nil {
		return certs.Bundle{}, false
	}
	b.NotAfter = leaf.NotAfter
	return b, true
}

func (c *certRunner) saveBundle(host string, b certs.Bundle) error {
	if err := os.MkdirAll(c.stateDir, 0o700); err != nil {
		return err
	}
	dir := filepath.Join(c.stateDir, host)
	return certs.WriteSet([]certs.File{
		{Path: filepath.Join(dir, "chain.pem"), Data: b.ChainPEM, Mode: 0o600, UID: -1, GID: -1},
		{Path: filepath.Join(dir, "key.pem"), Data: b.KeyPEM, Mode: 0o600, UID: -1, GID: -1},
		{Path: filepath.Join(dir, "ca.pem"), Data: b.CAPEM, Mode: 0o600, UID: -1, GID: -1},
	})
}
