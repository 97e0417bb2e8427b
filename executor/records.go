package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"metacircular.net/mcp/executor/dns"
	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
)

// Record steps: a hostname in a managed zone (normally
// <service>.svc.mcp.<domain>) gets one A or AAAA record per address of the
// node. What mcp wrote is kept in the registry's records store (a
// RecordSet per hostname), so that removal deletes exactly those records
// and nothing else of the zone, and the converge pass can put back what
// was deleted behind mcp's back.

// ErrRecordAltered is returned when the records read back after a write
// are not the ones written.
var ErrRecordAltered = errors.New("the DNS server holds other records than mcp wrote")

// ErrNoZone is returned for a hostname in none of the configured zones.
var ErrNoZone = errors.New("hostname is in no DNS zone this node manages")

// ErrNoAddresses is returned when the node has no address to publish.
var ErrNoAddresses = errors.New("the node has no addresses in mcp.toml")

// RecordSet is what mcp keeps in the records store for one hostname: the
// records it wrote there, and who asked for them.
type RecordSet struct {
	Hostname string `json:"hostname"`
	Zone     string `json:"zone"`
	// Services are the services whose steps created the records.
	Services []string `json:"services"`
	// Records are exactly the records mcp wrote, sorted.
	Records []dns.Record `json:"records"`
	Written time.Time    `json:"written"`
}

// WithRecords makes the executor manage DNS records: record steps run,
// Features reports Records, and the converge pass repairs drift. zones say
// which provider serves which zone (the longest match wins); addresses
// returns this node's addresses as the desired state at commit declares
// them (mcp.toml's [[nodes]]), the values of its A and AAAA records. A
// record step asks with the commit being applied, the converge pass with
// the commit the owning service was deployed from. An error or an empty
// answer fails a record step; the converge pass then keeps what it
// recorded.
func WithRecords(zones []dns.Zone, addresses AddressFunc) Option {
	return func(e *Executor) {
		e.kinds[planner.KindRecord] = &recordRunner{e: e, zones: slices.Clone(zones), addresses: addresses}
	}
}

// AddressFunc returns the node's addresses in the desired state of commit.
type AddressFunc func(ctx context.Context, commit string) ([]string, error)

type recordRunner struct {
	e         *Executor
	zones     []dns.Zone
	addresses AddressFunc
}

func (rr *recordRunner) run(ctx context.Context, r *serviceRun, st planner.Step) error {
	host := dns.Fqdn(st.Hostname)
	switch st.Action {
	case planner.ActionRemove:
		return rr.remove(ctx, host)
	case planner.ActionCreate, planner.ActionUpdate:
	default:
		return fmt.Errorf("record step action %q: %w", st.Action, ErrUnsupported)
	}
	zone, ok := dns.Lookup(rr.zones, host)
	if !ok {
		return fmt.Errorf("%w: %s (zones: %s; see [[dns]] in the agent config)", ErrNoZone, host, rr.zoneNames())
	}
	want, err := rr.wanted(ctx, host, zone, r.commit)
	if err != nil {
		return err
	}
	prev, found, err := rr.get(ctx, host)
	if err != nil {
		return err
	}
	set := RecordSet{Hostname: host, Zone: zone.Name, Services: prev.Services, Records: want}
	if !slices.Contains(set.Services, st.Service) {
		set.Services = append(slices.Clone(set.Services), st.Service)
		slices.Sort(set.Services)
	}
	if err := rr.ensure(ctx, zone, set, prev.Records); err != nil {
		if !found {
			// Nothing of this host was mcp's before: whatever the failed
			// write left goes, and so does its record.
			rr.undoCreate(context.WithoutCancel(ctx), zone, set)
		} else {
			_ = rr.put(context.WithoutCancel(ctx), prev)
		}
		return err
	}
	r.undoers = append(r.undoers, func(ctx context.Context) error {
		if !found {
			return rr.deleteSet(ctx, zone, set)
		}
		// The hostname was mcp's before this step: put back what was there.
		return rr.ensure(ctx, zone, prev, set.Records)
	})
	return nil
}

// wanted is the records host should have: one per node address.
func (rr *recordRunner) wanted(ctx context.Context, host string, zone dns.Zone, commit string) ([]dns.Record, error) {
	if rr.addresses == nil {
		return nil, fmt.Errorf("records for %s: %w (no address source)", host, ErrNoAddresses)
	}
	addrs, err := rr.addresses(ctx, commit)
	if err != nil {
		return nil, fmt.Errorf("records for %s: node addresses: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("records for %s: %w", host, ErrNoAddresses)
	}
	var out []dns.Record
	for _, a := range addrs {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return nil, fmt.Errorf("records for %s: node address %q: %w", host, a, err)
		}
		ip = ip.Unmap()
		typ := "A"
		if ip.Is6() {
			typ = "AAAA"
		}
		out = append(out, dns.Record{Name: host, Type: typ, Value: ip.String(), TTL: zone.TTL})
	}
	return sortRecords(out), nil
}

func sortRecords(rs []dns.Record) []dns.Record {
	slices.SortFunc(rs, func(a, b dns.Record) int {
		return strings.Compare(a.Type+" "+a.Value, b.Type+" "+b.Value)
	})
	return slices.CompactFunc(rs, func(a, b dns.Record) bool { return a.Type == b.Type && a.Value == b.Value })
}

// byType groups record values by type.
func byType(rs []dns.Record) map[string][]string {
	out := map[string][]string{}
	for _, r := range rs {
		out[r.Type] = append(out[r.Type], r.Value)
	}
	return out
}

// ensure makes the server hold set.Records: the set is recorded first (a
// crash after the write then still knows what mcp wrote), each type with
// values is Set, records of old that the set no longer has are deleted
// exactly, and everything is read back.
func (rr *recordRunner) ensure(ctx context.Context, zone dns.Zone, set RecordSet, old []dns.Record) error {
	set.Written = rr.e.now().UTC()
	if err := rr.put(ctx, set); err != nil {
		return err
	}
	want := byType(set.Records)
	for _, typ := range slices.Sorted(maps.Keys(want)) {
		if err := zone.Provider.Set(ctx, zone.Name, set.Hostname, typ, want[typ], zone.TTL); err != nil {
			return fmt.Errorf("set %s %s in %s: %w", set.Hostname, typ, zone.Name, err)
		}
	}
	var stale []dns.Record
	for _, o := range old {
		if !slices.ContainsFunc(set.Records, func(r dns.Record) bool { return r.Type == o.Type && r.Value == o.Value }) {
			stale = append(stale, o)
		}
	}
	if len(stale) > 0 {
		if err := zone.Provider.Delete(ctx, zone.Name, stale...); err != nil {
			return fmt.Errorf("delete old records of %s in %s: %w", set.Hostname, zone.Name, err)
		}
	}
	return rr.verify(ctx, zone, set.Hostname, set.Records, stale)
}

// verify reads host back: every type mcp wrote holds exactly its values,
// and none of gone is left.
func (rr *recordRunner) verify(ctx context.Context, zone dns.Zone, host string, want, gone []dns.Record) error {
	got, err := zone.Provider.List(ctx, zone.Name, host)
	if err != nil {
		return fmt.Errorf("read back %s in %s: %w", host, zone.Name, err)
	}
	have := byType(got)
	w := byType(want)
	for _, typ := range slices.Sorted(maps.Keys(w)) {
		if !dns.Equal(typ, have[typ], w[typ]) {
			return fmt.Errorf("read back %s %s in %s: %v, want %v: %w", host, typ, zone.Name, have[typ], w[typ], ErrRecordAltered)
		}
	}
	for _, g := range gone {
		if slices.Contains(have[g.Type], g.Value) {
			return fmt.Errorf("read back %s in %s: %s %s is still there after its deletion: %w", host, zone.Name, g.Type, g.Value, ErrRecordAltered)
		}
	}
	return nil
}

// remove deletes exactly the records mcp wrote for host, then forgets them.
func (rr *recordRunner) remove(ctx context.Context, host string) error {
	set, found, err := rr.get(ctx, host)
	if err != nil || !found {
		return err // never written (or already removed): nothing of mcp's there
	}
	zone, ok := rr.zone(set)
	if !ok {
		return fmt.Errorf("remove records of %s: %w: %s is no longer configured", host, ErrNoZone, set.Zone)
	}
	return rr.deleteSet(ctx, zone, set)
}

// zone is the configured zone a recorded set was written to.
func (rr *recordRunner) zone(set RecordSet) (dns.Zone, bool) {
	for _, z := range rr.zones {
		if dns.Fqdn(z.Name) == dns.Fqdn(set.Zone) {
			return z, true
		}
	}
	return dns.Zone{}, false
}

func (rr *recordRunner) deleteSet(ctx context.Context, zone dns.Zone, set RecordSet) error {
	if err := zone.Provider.Delete(ctx, zone.Name, set.Records...); err != nil {
		return fmt.Errorf("delete records of %s in %s: %w", set.Hostname, zone.Name, err)
	}
	if err := rr.verify(ctx, zone, set.Hostname, nil, set.Records); err != nil {
		return err
	}
	return rr.forget(ctx, set.Hostname)
}

// undoCreate removes what a failed first write may have left.
func (rr *recordRunner) undoCreate(ctx context.Context, zone dns.Zone, set RecordSet) {
	if err := zone.Provider.Delete(ctx, zone.Name, set.Records...); err != nil {
		rr.e.log.Warn("undo records: the converge pass will retry", "hostname", set.Hostname, "err", err)
		return
	}
	if err := rr.forget(ctx, set.Hostname); err != nil {
		rr.e.log.Warn("undo records: forget", "hostname", set.Hostname, "err", err)
	}
}

func (rr *recordRunner) zoneNames() string {
	if len(rr.zones) == 0 {
		return "none"
	}
	names := make([]string, len(rr.zones))
	for i, z := range rr.zones {
		names[i] = z.Name
	}
	return strings.Join(names, ", ")
}

// --- the records store ---------------------------------------------------

func (rr *recordRunner) store() (recordStore, error) {
	s, ok := rr.e.store.(recordStore)
	if !ok {
		return nil, fmt.Errorf("the executor's store (%T) cannot keep DNS records", rr.e.store)
	}
	return s, nil
}

func (rr *recordRunner) get(ctx context.Context, host string) (RecordSet, bool, error) {
	s, err := rr.store()
	if err != nil {
		return RecordSet{}, false, err
	}
	var set RecordSet
	err = s.View(ctx, func(tx *registry.Tx) error { return tx.Get(registry.StoreRecords, host, &set) })
	if errors.Is(err, registry.ErrNotFound) {
		return RecordSet{Hostname: host}, false, nil
	}
	if err != nil {
		return RecordSet{}, false, fmt.Errorf("read DNS record set %s: %w", host, err)
	}
	return set, true, nil
}

func (rr *recordRunner) put(ctx context.Context, set RecordSet) error {
	s, err := rr.store()
	if err != nil {
		return err
	}
	return s.Update(ctx, func(tx *registry.Tx) error { return tx.Put(registry.StoreRecords, set.Hostname, set) })
}

func (rr *recordRunner) forget(ctx context.Context, host string) error {
	s, err := rr.store()
	if err != nil {
		return err
	}
	return s.Update(ctx, func(tx *registry.Tx) error { return tx.Delete(registry.StoreRecords, host) })
}

// ReadRecordSets reads every recorded set from a registry, sorted by
// hostname; the agent's status uses it without an executor.
func ReadRecordSets(ctx context.Context, s interface {
	View(ctx context.Context, fn func(tx *registry.Tx) error) error
}) ([]RecordSet, error) {
	var out []RecordSet
	err := s.View(ctx, func(tx *registry.Tx) error {
		raw, err := tx.List(registry.StoreRecords)
		if err != nil {
			return err
		}
		for _, id := range slices.Sorted(maps.Keys(raw)) {
			var set RecordSet
			if err := json.Unmarshal(raw[id], &set); err != nil {
				return fmt.Errorf("decode DNS record set %s: %w", id, err)
			}
			out = append(out, set)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read DNS record sets: %w", err)
	}
	return out, nil
}

// --- converge --------------------------------------------------------------

// convergeRecords repairs DNS drift on every pass: a recorded set whose
// records are missing or altered on the server is written again (with the
// node's current addresses when they changed in mcp.toml), and a set no
// deployed service claims any more (left by a crash between the write and
// the registry) is deleted, exactly its records.
func (e *Executor) convergeRecords(ctx context.Context, snap registry.Snapshot, repairs []Repair, errs []error) ([]Repair, []error) {
	rr, ok := e.kinds[planner.KindRecord].(*recordRunner)
	if !ok {
		return repairs, errs
	}
	s, err := rr.store()
	if err != nil {
		return repairs, append(errs, err)
	}
	sets, err := ReadRecordSets(ctx, s)
	if err != nil {
		return repairs, append(errs, err)
	}
	for _, set := range sets {
		zone, ok := rr.zone(set)
		if !ok {
			errs = append(errs, fmt.Errorf("records of %s: %w: %s is no longer configured", set.Hostname, ErrNoZone, set.Zone))
			continue
		}
		owner, commit := claimant(snap, set)
		if owner == "" {
			if err := rr.deleteSet(ctx, zone, set); err != nil {
				errs = append(errs, fmt.Errorf("remove orphan records of %s: %w", set.Hostname, err))
				continue
			}
			repairs = append(repairs, Repair{Service: strings.Join(set.Services, ","), Resource: "dns:" + set.Hostname,
				What: "deleted DNS records that no deployed service claims"})
			continue
		}
		want := set
		if w, err := rr.wanted(ctx, set.Hostname, zone, commit); err == nil {
			want.Records = w
		}
		valuesChanged := !slices.Equal(want.Records, set.Records)
		if !valuesChanged {
			if err := rr.verify(ctx, zone, set.Hostname, set.Records, nil); err == nil {
				continue
			} else if !errors.Is(err, ErrRecordAltered) {
				errs = append(errs, fmt.Errorf("check records of %s: %w", set.Hostname, err))
				continue
			}
		}
		// Records someone keeps deleting or rewriting (another tool
		// managing the zone) are backed off like any other flapping
		// resource; a change of the node's addresses is mcp's own.
		if !valuesChanged {
			if err := e.gate.allow("dns:"+set.Hostname, e.now()); err != nil { // flap.go
				errs = append(errs, err)
				continue
			}
		}
		if err := rr.ensure(ctx, zone, want, set.Records); err != nil {
			errs = append(errs, fmt.Errorf("repair records of %s: %w", set.Hostname, err))
			continue
		}
		what := "restored DNS records missing or altered on the server"
		if valuesChanged {
			what = "rewrote DNS records: the node's addresses or the zone's TTL changed"
		}
		repairs = append(repairs, Repair{Service: owner, Resource: "dns:" + set.Hostname, What: what})
	}
	return repairs, errs
}

// claimant is a deployed, active service among set's owners that still
// routes its hostname, or "", and the commit it was deployed from.
func claimant(snap registry.Snapshot, set RecordSet) (string, string) {
	for _, name := range set.Services {
		d, ok := snap.Services[name]
		if !ok || !d.Spec.Active {
			continue
		}
		for _, c := range d.Spec.Components {
			for _, r := range c.Routes {
				if dns.Fqdn(r.Hostname) == set.Hostname {
					return name, d.Commit
				}
			}
		}
	}
	return "", ""
}

// Records returns the recorded DNS record sets, sorted by hostname.
func (e *Executor) Records(ctx context.Context) ([]RecordSet, error) {
	rr, ok := e.kinds[planner.KindRecord].(*recordRunner)
	if !ok {
		return nil, nil
	}
	s, err := rr.store()
	if err != nil {
		return nil, err
	}
	return ReadRecordSets(ctx, s)
}
