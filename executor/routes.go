package executor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// Route is one route as the node's proxy holds it: TLS for Hostname
// arriving on Listener goes to Backend, passed through untouched (l4) or
// terminated by the proxy with CertFile and KeyFile (l7).
type Route struct {
	// Listener is the address the proxy listens on, "host:port" or
	// ":port" (all addresses).
	Listener string `json:"listener"`
	// Hostname is matched exactly against the SNI (and, for l7, the Host
	// header), case-insensitively; it is kept in lower case.
	Hostname string `json:"hostname"`
	// Backend is the "host:port" the proxy connects to.
	Backend string `json:"backend"`
	// Mode is spec.ModeL4 or spec.ModeL7.
	Mode string `json:"mode"`
	// CertFile (full chain, leaf first) and KeyFile are what an l7 route
	// terminates TLS with; empty for l4.
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
	// BackendTLS re-encrypts from the proxy to the backend (l7 only).
	BackendTLS bool `json:"backend_tls,omitempty"`
}

// ID is what identifies a route in the proxy: a hostname on a listener.
func (r Route) ID() string { return RouteID(r.Listener, r.Hostname) }

// RouteID is the identity of the route for hostname on listener.
func RouteID(listener, hostname string) string {
	return listener + "/" + strings.ToLower(hostname)
}

func (r Route) String() string {
	s := r.Mode + " " + r.Hostname + " on " + r.Listener + " → " + r.Backend
	if r.BackendTLS {
		s += " (tls)"
	}
	return s
}

// Validate rejects what no proxy can hold. Drivers call it before writing
// and on what they read back, so an unknown mode is an error, never a guess.
func (r Route) Validate() error {
	var probs []string
	if _, port, err := net.SplitHostPort(r.Listener); err != nil {
		probs = append(probs, fmt.Sprintf("listener %q is not host:port or :port", r.Listener))
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		probs = append(probs, fmt.Sprintf("listener %q: port outside 1-65535", r.Listener))
	}
	if r.Hostname == "" || r.Hostname != strings.ToLower(r.Hostname) || strings.ContainsAny(r.Hostname, " \t/:|,") {
		probs = append(probs, fmt.Sprintf("hostname %q is not a lower-case DNS name", r.Hostname))
	}
	if h, port, err := net.SplitHostPort(r.Backend); err != nil || h == "" {
		probs = append(probs, fmt.Sprintf("backend %q is not host:port", r.Backend))
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		probs = append(probs, fmt.Sprintf("backend %q: port outside 1-65535", r.Backend))
	}
	switch r.Mode {
	case spec.ModeL7:
		if r.CertFile == "" || r.KeyFile == "" {
			probs = append(probs, "an l7 route needs cert_file and key_file")
		}
	case spec.ModeL4:
		if r.CertFile != "" || r.KeyFile != "" || r.BackendTLS {
			probs = append(probs, "an l4 route passes TLS through: no cert_file, key_file or backend_tls")
		}
	default:
		probs = append(probs, fmt.Sprintf("unknown mode %q (l4 or l7)", r.Mode))
	}
	if len(probs) > 0 {
		return fmt.Errorf("%w: %s: %s", ErrInvalidRoute, r.ID(), strings.Join(probs, "; "))
	}
	return nil
}

// Router is the node's TLS proxy as the executor drives it. Every method
// is idempotent; drivers: executor/haproxy, executor/mcproxy.
type Router interface {
	// Upsert adds the route, or replaces the one with the same listener
	// and hostname.
	Upsert(ctx context.Context, r Route) error
	// Remove deletes the route for hostname on listener; absent is not an
	// error.
	Remove(ctx context.Context, listener, hostname string) error
	// List returns every route the proxy serves, mcp's or not, as the
	// proxy reports them (not as they were asked for).
	List(ctx context.Context) ([]Route, error)
}

// Route errors.
var (
	// ErrInvalidRoute: an unknown mode or a malformed field.
	ErrInvalidRoute = errors.New("invalid route")
	// ErrRouteAltered: reading back after a write found something else
	// than what was written (e.g. an l7 route that became l4).
	ErrRouteAltered = errors.New("the proxy holds something else than what mcp wrote")
	// ErrForeignRoute: the hostname and listener are routed by someone
	// else than mcp, which never touches routes it does not own.
	ErrForeignRoute = errors.New("route is not mcp's")
	// ErrListener: the route's listener port is not one the proxy has.
	ErrListener = errors.New("the proxy does not listen on the route's port")
	// ErrCertificate: an l7 route's certificate chain is not in place.
	ErrCertificate = errors.New("certificate chain not in place")
	// ErrBackendDown: the backend did not accept a connection in time.
	ErrBackendDown = errors.New("backend does not accept connections")
)

// Listener is one address the proxy listens on.
type Listener struct {
	Address string // "" or "0.0.0.0" for all addresses
	Port    int
}

// HostPort is the listener as a Route carries it: ":443" or "10.0.0.1:443".
func (l Listener) HostPort() string { return net.JoinHostPort(l.Address, strconv.Itoa(l.Port)) }

// Route defaults.
const (
	DefaultBackendHost = "127.0.0.1"
	DefaultCertDir     = "/srv/mc-proxy/certs"
	DefaultBackendWait = 30 * time.Second
)

// RouteOption configures the route runner.
type RouteOption func(*routeRunner)

// RouteBackendHost is the address the proxy reaches containers on:
// loopback when the proxy runs on the node, the node's address otherwise.
func RouteBackendHost(h string) RouteOption { return func(r *routeRunner) { r.backendHost = h } }

// RouteListeners declares the proxy's listeners; a route on a port none of
// them has fails. Without any, a route's listener is ":<port>".
func RouteListeners(ls ...Listener) RouteOption {
	return func(r *routeRunner) { r.listeners = append(r.listeners, ls...) }
}

// RouteCertDir is where l7 certificates live (<dir>/<hostname>.pem, full
// chain, and .key), resolved under the executor's host root.
func RouteCertDir(dir string) RouteOption { return func(r *routeRunner) { r.certDir = dir } }

// RouteBackendWait bounds the wait for a new backend to accept a TCP
// connection before its route is registered.
func RouteBackendWait(d time.Duration) RouteOption { return func(r *routeRunner) { r.wait = d } }

// WithRouter makes the executor manage proxy routes through router: route
// steps run, Features reports Routes, and the converge pass repairs routes.
func WithRouter(router Router, opts ...RouteOption) Option {
	return func(e *Executor) {
		rr := &routeRunner{e: e, router: router, backendHost: DefaultBackendHost, certDir: DefaultCertDir, wait: DefaultBackendWait}
		for _, o := range opts {
			o(rr)
		}
		e.kinds[planner.KindRoute] = rr
	}
}

type routeRunner struct {
	e           *Executor
	router      Router
	backendHost string
	listeners   []Listener
	certDir     string
	wait        time.Duration
}

// RouteRecord is what mcp keeps in the registry's route store for each
// route it registered: the ownership that lets it remove exactly its own.
type RouteRecord struct {
	Route     Route  `json:"route"`
	Service   string `json:"service"`
	Component string `json:"component"`
	// Key is the route's key in its component (spec.Route.Key()).
	Key string `json:"key"`
}

// recordStore is the part of the registry holding driver-owned records;
// the executor's Store is the registry in the agent.
type recordStore interface {
	View(ctx context.Context, fn func(tx *registry.Tx) error) error
	Update(ctx context.Context, fn func(tx *registry.Tx) error) error
}

func (rr *routeRunner) store() (recordStore, error) {
	s, ok := rr.e.store.(recordStore)
	if !ok {
		return nil, fmt.Errorf("the executor's store (%T) cannot keep route records", rr.e.store)
	}
	return s, nil
}

func (rr *routeRunner) records(ctx context.Context) (map[string]RouteRecord, error) {
	s, err := rr.store()
	if err != nil {
		return nil, err
	}
	out := map[string]RouteRecord{}
	err = s.View(ctx, func(tx *registry.Tx) error {
		raw, err := tx.List(registry.StoreRoutes)
		if err != nil {
			return err
		}
		for id, v := range raw {
			var rec RouteRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode route record %s: %w", id, err)
			}
			out[id] = rec
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read route records: %w", err)
	}
	return out, nil
}

func (rr *routeRunner) putRecord(ctx context.Context, rec RouteRecord) error {
	s, err := rr.store()
	if err != nil {
		return err
	}
	return s.Update(ctx, func(tx *registry.Tx) error { return tx.Put(registry.StoreRoutes, rec.Route.ID(), rec) })
}

func (rr *routeRunner) deleteRecord(ctx context.Context, id string) error {
	s, err := rr.store()
	if err != nil {
		return err
	}
	return s.Update(ctx, func(tx *registry.Tx) error { return tx.Delete(registry.StoreRoutes, id) })
}

// listener maps a definition's listener port to the proxy's listener.
func (rr *routeRunner) listener(port int) (string, error) {
	if len(rr.listeners) == 0 {
		return Listener{Port: port}.HostPort(), nil
	}
	ports := make([]string, 0, len(rr.listeners))
	for _, l := range rr.listeners {
		if l.Port == port {
			return l.HostPort(), nil
		}
		ports = append(ports, strconv.Itoa(l.Port))
	}
	return "", fmt.Errorf("%w: port %d (this node's proxy listens on %s; see [proxy] listeners in the agent config)",
		ErrListener, port, strings.Join(ports, ", "))
}

// certFiles are where an l7 hostname's certificate is expected, on the host.
func (rr *routeRunner) certFiles(hostname string) (cert, key string) {
	dir := rr.certDir
	if root := rr.e.hostRoot; root != "" && root != "/" {
		dir = filepath.Join(root, dir)
	}
	return filepath.Join(dir, hostname+".pem"), filepath.Join(dir, hostname+".key")
}

// build is the proxy route for one route of a component whose backend
// listens on port.
func (rr *routeRunner) build(rt spec.Route, port int) (Route, error) {
	ln, err := rr.listener(rt.Port)
	if err != nil {
		return Route{}, err
	}
	r := Route{
		Listener: ln,
		Hostname: strings.ToLower(rt.Hostname),
		Backend:  net.JoinHostPort(rr.backendHost, strconv.Itoa(port)),
		Mode:     rt.Mode,
	}
	if rt.Mode == spec.ModeL7 {
		r.CertFile, r.KeyFile = rr.certFiles(r.Hostname)
	}
	return r, r.Validate()
}

// checkChain refuses an l7 route whose certificate is missing or is a
// bare leaf: a leaf-only certificate makes handshakes fail silently.
func checkChain(r Route) error {
	if r.Mode != spec.ModeL7 {
		return nil
	}
	pair, err := tls.LoadX509KeyPair(r.CertFile, r.KeyFile)
	if err != nil {
		return fmt.Errorf("%w for %s: %w", ErrCertificate, r.Hostname, err)
	}
	if len(pair.Certificate) < 2 {
		return fmt.Errorf("%w for %s: %s holds only the leaf; the proxy needs the full chain (leaf and issuers)",
			ErrCertificate, r.Hostname, r.CertFile)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("%w for %s: %w", ErrCertificate, r.Hostname, err)
	}
	if err := leaf.VerifyHostname(r.Hostname); err != nil {
		return fmt.Errorf("%w for %s: %s: %w", ErrCertificate, r.Hostname, r.CertFile, err)
	}
	return nil
}

// CertChainLen counts the certificates in a PEM file; drivers and tests
// use it to check a chain.
func CertChainLen(pemBytes []byte) int {
	n := 0
	for {
		var b *pem.Block
		b, pemBytes = pem.Decode(pemBytes)
		if b == nil {
			return n
		}
		if b.Type == "CERTIFICATE" {
			n++
		}
	}
}

// waitBackend waits until the backend accepts a TCP connection: a route is
// registered only once its container answers, so the proxy never sends
// traffic to a port nobody listens on yet.
func (rr *routeRunner) waitBackend(ctx context.Context, backend string) error {
	ctx, cancel := context.WithTimeout(ctx, rr.wait)
	defer cancel()
	var d net.Dialer
	var last error
	for {
		c, err := d.DialContext(ctx, "tcp", backend)
		if err == nil {
			return c.Close()
		}
		last = err
		select {
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
				return fmt.Errorf("%w: %s did not accept a TCP connection within %s (last: %w)", ErrBackendDown, backend, rr.wait, last)
			}
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// run executes one route step.
func (rr *routeRunner) run(ctx context.Context, r *serviceRun, st planner.Step) error {
	switch st.Action {
	case planner.ActionRemove:
		old, ok := specRoute(r.deployed.Spec, st.Component, st.Route)
		if !ok {
			return nil // never recorded: nothing of mcp's to remove
		}
		ln, err := rr.listener(old.Port)
		if err != nil {
			// The listener is gone from the config; the record still
			// knows which listener mcp wrote to.
			return rr.removeOwnedHost(ctx, old.Hostname)
		}
		return rr.removeOwned(ctx, RouteID(ln, old.Hostname))
	case planner.ActionCreate, planner.ActionUpdate:
	default:
		return fmt.Errorf("route step action %q: %w", st.Action, ErrUnsupported)
	}
	comp, err := r.component(st.Component)
	if err != nil {
		return err
	}
	rt, ok := specRoute(*r.desired, st.Component, st.Route)
	if !ok {
		return fmt.Errorf("route %q is not in component %s", st.Route, comp.Name)
	}
	// Leasing is idempotent: this is the port the container got.
	port, err := rr.e.ports.Lease(ctx, st.Service, st.Component, st.Route, r.slot(st.Component))
	if err != nil {
		return fmt.Errorf("port of route %s: %w", st.Route, err)
	}
	want, err := rr.build(rt, port)
	if err != nil {
		return err
	}
	if err := checkChain(want); err != nil {
		return err
	}
	if err := rr.waitBackend(ctx, want.Backend); err != nil {
		return err
	}
	records, err := rr.records(ctx)
	if err != nil {
		return err
	}
	prev, owned := records[want.ID()]
	if err := rr.ensure(ctx, RouteRecord{Route: want, Service: st.Service, Component: st.Component, Key: st.Route}, records); err != nil {
		return err
	}
	// A later failure in this service puts back what served before at
	// once (a blue-green switch whose old slot still runs), rather than
	// leaving traffic on containers the undo removes.
	switch {
	case !owned:
		r.undoers = append(r.undoers, func(ctx context.Context) error { return rr.removeOwned(ctx, want.ID()) })
	case prev.Route != want:
		r.undoers = append(r.undoers, func(ctx context.Context) error { return rr.restore(ctx, prev) })
	}
	// A listener or hostname change leaves the old route behind: remove
	// it once the new one serves, so clients always have one of the two.
	if old, ok := specRoute(r.deployed.Spec, st.Component, st.Route); ok && st.Action == planner.ActionUpdate {
		if ln, err := rr.listener(old.Port); err == nil && RouteID(ln, old.Hostname) != want.ID() {
			oldRec, had := records[RouteID(ln, old.Hostname)]
			if err := rr.removeOwned(ctx, RouteID(ln, old.Hostname)); err != nil {
				return err
			}
			if had {
				r.undoers = append(r.undoers, func(ctx context.Context) error { return rr.restore(ctx, oldRec) })
			}
		}
	}
	return nil
}

// restore registers a route mcp owned before this run again.
func (rr *routeRunner) restore(ctx context.Context, rec RouteRecord) error {
	records, err := rr.records(ctx)
	if err != nil {
		return err
	}
	return rr.ensure(ctx, rec, records)
}

func specRoute(s spec.Service, component, key string) (spec.Route, bool) {
	for _, c := range s.Components {
		if c.Name != component {
			continue
		}
		for _, rt := range c.Routes {
			if rt.Key() == key {
				return rt, true
			}
		}
	}
	return spec.Route{}, false
}

// ensure makes the proxy hold rec.Route and the registry record it as
// mcp's. The record is written before the proxy so a crash in between
// leaves an owned route the converge pass can finish or remove, never a
// route nobody owns.
func (rr *routeRunner) ensure(ctx context.Context, rec RouteRecord, records map[string]RouteRecord) error {
	want := rec.Route
	list, err := rr.router.List(ctx)
	if err != nil {
		return fmt.Errorf("list proxy routes: %w", err)
	}
	cur, present := findRoute(list, want.ID())
	if _, owned := records[want.ID()]; !owned && present && !sameRoute(cur, want) {
		return fmt.Errorf("%w: %s is routed to %s (%s) by someone else; mcp does not overwrite it", ErrForeignRoute, want.ID(), cur.Backend, cur.Mode)
	}
	if old, ok := records[want.ID()]; !ok || old != rec {
		if err := rr.putRecord(ctx, rec); err != nil {
			return fmt.Errorf("record route %s: %w", want.ID(), err)
		}
		records[want.ID()] = rec
	}
	if present && sameRoute(cur, want) {
		return nil
	}
	if err := rr.router.Upsert(ctx, want); err != nil {
		return fmt.Errorf("register route %s: %w", want, err)
	}
	return rr.verify(ctx, want)
}

// verify reads the routes back after a write: what the proxy holds must be
// exactly what was written.
func (rr *routeRunner) verify(ctx context.Context, want Route) error {
	list, err := rr.router.List(ctx)
	if err != nil {
		return fmt.Errorf("read back route %s: %w", want.ID(), err)
	}
	got, ok := findRoute(list, want.ID())
	if !ok {
		return fmt.Errorf("%w: %s is missing after it was written", ErrRouteAltered, want.ID())
	}
	if err := got.Validate(); err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	if d := routeDiff(want, got); d != "" {
		return fmt.Errorf("%w: %s: %s", ErrRouteAltered, want.ID(), d)
	}
	return nil
}

func (rr *routeRunner) removeOwned(ctx context.Context, id string) error {
	records, err := rr.records(ctx)
	if err != nil {
		return err
	}
	rec, owned := records[id]
	if !owned {
		return nil // not mcp's: never touched
	}
	return rr.remove(ctx, rec.Route)
}

// removeOwnedHost removes every route mcp owns for hostname, whatever the
// listener: for a route whose listener left the configuration.
func (rr *routeRunner) removeOwnedHost(ctx context.Context, hostname string) error {
	records, err := rr.records(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(records)) {
		if rec := records[id]; strings.EqualFold(rec.Route.Hostname, hostname) {
			errs = append(errs, rr.remove(ctx, rec.Route))
		}
	}
	return errors.Join(errs...)
}

// remove takes an owned route out of the proxy, checks it is gone, then
// drops the record.
func (rr *routeRunner) remove(ctx context.Context, r Route) error {
	if err := rr.router.Remove(ctx, r.Listener, r.Hostname); err != nil {
		return fmt.Errorf("remove route %s: %w", r.ID(), err)
	}
	list, err := rr.router.List(ctx)
	if err != nil {
		return fmt.Errorf("read back after removing %s: %w", r.ID(), err)
	}
	if _, still := findRoute(list, r.ID()); still {
		return fmt.Errorf("%w: %s is still there after it was removed", ErrRouteAltered, r.ID())
	}
	if err := rr.deleteRecord(ctx, r.ID()); err != nil {
		return fmt.Errorf("forget route %s: %w", r.ID(), err)
	}
	return nil
}

func findRoute(list []Route, id string) (Route, bool) {
	for _, r := range list {
		if r.ID() == id {
			return r, true
		}
	}
	return Route{}, false
}

func sameRoute(a, b Route) bool { return routeDiff(a, b) == "" }

// routeDiff says how got differs from want ("" when equal), in the words
// an operator needs: "mode l7 became l4".
func routeDiff(want, got Route) string {
	var d []string
	f := func(name, w, g string) {
		if w != g {
			d = append(d, fmt.Sprintf("%s %q became %q", name, w, g))
		}
	}
	f("mode", want.Mode, got.Mode)
	f("backend", want.Backend, got.Backend)
	f("cert_file", want.CertFile, got.CertFile)
	f("key_file", want.KeyFile, got.KeyFile)
	f("backend_tls", strconv.FormatBool(want.BackendTLS), strconv.FormatBool(got.BackendTLS))
	return strings.Join(d, ", ")
}

// desiredRoute is a route the recorded services want, with its owner.
type desiredRoute struct {
	rec RouteRecord
	err error // why it cannot be built (no lease, undeclared listener)
}

// desired derives the routes the registry's services want. Only services
// applied while routes were managed have them; backends are the leases of
// each component's active slot.
func (rr *routeRunner) desired(snap registry.Snapshot) map[string]desiredRoute {
	leases := map[string]int{}
	for _, l := range snap.Leases {
		leases[l.Key()] = l.Port
	}
	out := map[string]desiredRoute{}
	for _, name := range slices.Sorted(maps.Keys(snap.Services)) {
		d := snap.Services[name]
		if !d.Spec.Active || !d.Features.Routes {
			continue
		}
		for _, comp := range d.Spec.Components {
			st, ok := d.Components[comp.Name]
			if !ok || st.ImageDigest == "" {
				continue // never started: its route was never registered
			}
			for _, rt := range comp.Routes {
				rec := RouteRecord{Service: name, Component: comp.Name, Key: rt.Key()}
				port, ok := leases[registry.LeaseKey(name, comp.Name, rt.Key(), st.ActiveSlot)]
				var err error
				if !ok {
					err = fmt.Errorf("no port lease for route %s of %s/%s", rt.Key(), name, comp.Name)
				} else {
					rec.Route, err = rr.build(rt, port)
				}
				id := rec.Route.ID()
				if err != nil {
					id = "?" + name + "/" + comp.Name + "/" + rt.Key()
				}
				out[id] = desiredRoute{rec: rec, err: err}
			}
		}
	}
	return out
}

// convergeRoutes is the converge pass for routes: a route a recorded
// service wants but the proxy lacks (removed by hand, proxy restarted with
// an older state) is restored; one that differs is rewritten; a route mcp
// owns that no service wants is removed. Routes mcp did not write are
// never touched.
func (e *Executor) convergeRoutes(ctx context.Context, snap registry.Snapshot, repairs []Repair, errs []error) ([]Repair, []error) {
	k, ok := e.kinds[planner.KindRoute]
	if !ok {
		return repairs, errs
	}
	rr := k.(*routeRunner)
	want := rr.desired(snap)
	records, err := rr.records(ctx)
	if err != nil {
		return repairs, append(errs, err)
	}
	list, err := rr.router.List(ctx)
	if err != nil {
		return repairs, append(errs, fmt.Errorf("list proxy routes: %w", err))
	}
	for _, id := range slices.Sorted(maps.Keys(want)) {
		w := want[id]
		if w.err != nil {
			errs = append(errs, fmt.Errorf("route of %s/%s: %w", w.rec.Service, w.rec.Component, w.err))
			continue
		}
		cur, present := findRoute(list, id)
		if present && sameRoute(cur, w.rec.Route) {
			if rec, ok := records[id]; !ok || rec != w.rec {
				if err := rr.putRecord(ctx, w.rec); err != nil {
					errs = append(errs, fmt.Errorf("record route %s: %w", id, err))
				}
			}
			continue
		}
		if err := checkChain(w.rec.Route); err != nil {
			errs = append(errs, fmt.Errorf("route %s: %w", id, err))
			continue
		}
		if err := e.gate.allow("route "+id, e.now()); err != nil { // flap.go
			errs = append(errs, err)
			continue
		}
		if err := rr.ensure(ctx, w.rec, records); err != nil {
			errs = append(errs, fmt.Errorf("converge route %s: %w", id, err))
			continue
		}
		what := "restored a route missing from the proxy"
		if present {
			what = "rewrote a route that differed in the proxy (" + routeDiff(w.rec.Route, cur) + ")"
		}
		repairs = append(repairs, Repair{Service: w.rec.Service, Component: w.rec.Component, Resource: "route " + id, What: what})
	}
	for _, id := range slices.Sorted(maps.Keys(records)) {
		if _, wanted := want[id]; wanted {
			continue
		}
		rec := records[id]
		if err := rr.remove(ctx, rec.Route); err != nil {
			errs = append(errs, fmt.Errorf("remove orphan route %s: %w", id, err))
			continue
		}
		repairs = append(repairs, Repair{Service: rec.Service, Component: rec.Component, Resource: "route " + id,
			What: "removed a route mcp owns that no deployed service claims"})
	}
	return repairs, errs
}

// RouteState is one route a deployed service wants, and whether the proxy
// confirmed it (holds exactly that route).
type RouteState struct {
	Route     Route
	Service   string
	Component string
	Key       string
	Confirmed bool
	// Problem says why it is not confirmed.
	Problem string
}

// Routes reports the routes the recorded services want and what the proxy
// holds of them; nil when this executor manages no routes.
func (e *Executor) Routes(ctx context.Context) ([]RouteState, error) {
	k, ok := e.kinds[planner.KindRoute]
	if !ok {
		return nil, nil
	}
	rr := k.(*routeRunner)
	snap, err := e.store.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("read registry: %w", err)
	}
	want := rr.desired(snap)
	list, listErr := rr.router.List(ctx)
	out := make([]RouteState, 0, len(want))
	for _, id := range slices.Sorted(maps.Keys(want)) {
		w := want[id]
		s := RouteState{Route: w.rec.Route, Service: w.rec.Service, Component: w.rec.Component, Key: w.rec.Key}
		cur, present := findRoute(list, id)
		switch {
		case w.err != nil:
			s.Problem = w.err.Error()
		case listErr != nil:
			s.Problem = "proxy unreachable: " + listErr.Error()
		case !present:
			s.Problem = "missing from the proxy"
		case !sameRoute(cur, w.rec.Route):
			s.Problem = "differs in the proxy: " + routeDiff(w.rec.Route, cur)
		default:
			s.Confirmed = true
		}
		out = append(out, s)
	}
	return out, nil
}
