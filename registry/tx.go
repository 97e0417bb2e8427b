package registry

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// Tx is one registry transaction. It is only valid inside the View or
// Update callback that handed it out; write methods fail with ErrReadOnly
// in a View.
type Tx struct {
	tx  *bolt.Tx
	cfg *config
}

// bucket returns a bucket that every migrated file has. A nil result means
// the file is damaged or was not migrated, which is reported rather than
// papered over.
func (t *Tx) bucket(name []byte) (*bolt.Bucket, error) {
	b := t.tx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("bucket %s is missing (damaged registry?)", name)
	}
	return b, nil
}

func (t *Tx) writable() error {
	if !t.tx.Writable() {
		return ErrReadOnly
	}
	return nil
}

func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("decode %s: %w", key, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Put(key, raw)
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func keySeq(k []byte) uint64 {
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

// --- meta --------------------------------------------------------------

// SchemaVersion is the file's schema version.
func (t *Tx) SchemaVersion() (int, error) { return schemaVersion(t.tx) }

func (t *Tx) metaString(key []byte) (string, error) {
	b, err := t.bucket(bucketMeta)
	if err != nil {
		return "", err
	}
	return string(b.Get(key)), nil
}

func (t *Tx) setMetaString(key []byte, v string) error {
	if err := t.writable(); err != nil {
		return err
	}
	b, err := t.bucket(bucketMeta)
	if err != nil {
		return err
	}
	if v == "" {
		return b.Delete(key)
	}
	return b.Put(key, []byte(v))
}

// Node is the node name recorded in the file ("" if never set).
func (t *Tx) Node() (string, error) { return t.metaString(keyNode) }

// SetNode records the node name.
func (t *Tx) SetNode(name string) error {
	if err := t.setMetaString(keyNode, name); err != nil {
		return fmt.Errorf("set node: %w", err)
	}
	return nil
}

// AppliedCommit is the desired-state commit last applied in full.
func (t *Tx) AppliedCommit() (string, error) { return t.metaString(keyAppliedCommit) }

// SetAppliedCommit moves the applied pointer. Call it only after a
// reconcile succeeded: it is what lets an unchanged commit be skipped.
func (t *Tx) SetAppliedCommit(commit string) error {
	if err := t.setMetaString(keyAppliedCommit, commit); err != nil {
		return fmt.Errorf("set applied commit: %w", err)
	}
	return nil
}

// --- services ----------------------------------------------------------

// Deployed returns the service as last applied; ErrNotFound if absent.
func (t *Tx) Deployed(name string) (Deployed, error) {
	var d Deployed
	b, err := t.bucket(bucketServices)
	if err != nil {
		return d, err
	}
	ok, err := getJSON(b, []byte(name), &d)
	if err != nil {
		return d, fmt.Errorf("get deployed %s: %w", name, err)
	}
	if !ok {
		return d, fmt.Errorf("get deployed %s: %w", name, ErrNotFound)
	}
	return d, nil
}

// Services returns every deployed service keyed by name.
func (t *Tx) Services() (map[string]Deployed, error) {
	b, err := t.bucket(bucketServices)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Deployed)
	err = b.ForEach(func(k, v []byte) error {
		var d Deployed
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("decode deployed %s: %w", k, err)
		}
		out[string(k)] = d
		return nil
	})
	return out, err
}

// PutDeployed records d under d.Spec.Name, replacing what was there.
func (t *Tx) PutDeployed(d Deployed) error {
	name := d.Spec.Name
	if name == "" {
		return errors.New("put deployed: service has no name")
	}
	if err := t.writable(); err != nil {
		return fmt.Errorf("put deployed %s: %w", name, err)
	}
	b, err := t.bucket(bucketServices)
	if err != nil {
		return err
	}
	if err := putJSON(b, []byte(name), d); err != nil {
		return fmt.Errorf("put deployed %s: %w", name, err)
	}
	return nil
}

// DeleteDeployed forgets a service. Deleting an absent one is not an error.
func (t *Tx) DeleteDeployed(name string) error {
	if err := t.writable(); err != nil {
		return fmt.Errorf("delete deployed %s: %w", name, err)
	}
	b, err := t.bucket(bucketServices)
	if err != nil {
		return err
	}
	return b.Delete([]byte(name))
}

// --- leases ------------------------------------------------------------

// ErrPortTaken is matched by a *PortTakenError.
var ErrPortTaken = errors.New("port already leased")

// PortTakenError says which lease already holds a port.
type PortTakenError struct {
	Port   int
	Holder Lease
}

func (e *PortTakenError) Error() string {
	return fmt.Sprintf("port %d is held by service %q (lease %s)", e.Port, e.Holder.Service, e.Holder.Key())
}

func (e *PortTakenError) Unwrap() error { return ErrPortTaken }

// Lease returns the lease with the given key; ErrNotFound if absent.
func (t *Tx) Lease(key string) (Lease, error) {
	var l Lease
	b, err := t.bucket(bucketLeases)
	if err != nil {
		return l, err
	}
	ok, err := getJSON(b, []byte(key), &l)
	if err != nil {
		return l, fmt.Errorf("get lease %s: %w", key, err)
	}
	if !ok {
		return l, fmt.Errorf("get lease %s: %w", key, ErrNotFound)
	}
	return l, nil
}

// LeaseByPort returns the lease holding port; ErrNotFound if none does.
func (t *Tx) LeaseByPort(port int) (Lease, error) {
	idx, err := t.bucket(bucketLeasePorts)
	if err != nil {
		return Lease{}, err
	}
	key := idx.Get(portKey(port))
	if key == nil {
		return Lease{}, fmt.Errorf("lease of port %d: %w", port, ErrNotFound)
	}
	return t.Lease(string(key))
}

// LeasedPorts returns the leased ports within [lo, hi], ascending. It walks
// the port index, so its cost follows the number of leases, not the range.
func (t *Tx) LeasedPorts(lo, hi int) ([]int, error) {
	idx, err := t.bucket(bucketLeasePorts)
	if err != nil {
		return nil, err
	}
	var out []int
	c := idx.Cursor()
	end := portKey(hi)
	for k, _ := c.Seek(portKey(lo)); k != nil && bytes.Compare(k, end) <= 0; k, _ = c.Next() {
		p, err := strconv.Atoi(string(k))
		if err != nil {
			return nil, fmt.Errorf("lease_ports key %q is not a port", k)
		}
		out = append(out, p)
	}
	return out, nil
}

// Leases returns every lease, sorted by Key().
func (t *Tx) Leases() ([]Lease, error) {
	b, err := t.bucket(bucketLeases)
	if err != nil {
		return nil, err
	}
	var out []Lease
	err = b.ForEach(func(k, v []byte) error {
		var l Lease
		if err := json.Unmarshal(v, &l); err != nil {
			return fmt.Errorf("decode lease %s: %w", k, err)
		}
		out = append(out, l)
		return nil
	})
	// bbolt already returns byte order, which is Key() order; sorting again
	// keeps the promise independent of that detail.
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out, err
}

// PutLease records l. A port is never held by two leases: if another key
// holds l.Port the result is a *PortTakenError. Changing an existing
// lease's port frees the old port in the same transaction.
func (t *Tx) PutLease(l Lease) error {
	key := l.Key()
	if l.Port < 1 || l.Port > 65535 {
		return fmt.Errorf("put lease %s: port %d is outside 1-65535", key, l.Port)
	}
	if err := t.writable(); err != nil {
		return fmt.Errorf("put lease %s: %w", key, err)
	}
	b, err := t.bucket(bucketLeases)
	if err != nil {
		return err
	}
	idx, err := t.bucket(bucketLeasePorts)
	if err != nil {
		return err
	}
	if holder := idx.Get(portKey(l.Port)); holder != nil && string(holder) != key {
		h, err := t.Lease(string(holder))
		if err != nil {
			return fmt.Errorf("put lease %s: port %d indexed to %s: %w", key, l.Port, holder, err)
		}
		return fmt.Errorf("put lease %s: %w", key, &PortTakenError{Port: l.Port, Holder: h})
	}
	var old Lease
	had, err := getJSON(b, []byte(key), &old)
	if err != nil {
		return fmt.Errorf("put lease %s: %w", key, err)
	}
	if had && old.Port != l.Port {
		if err := idx.Delete(portKey(old.Port)); err != nil {
			return fmt.Errorf("put lease %s: %w", key, err)
		}
	}
	if err := putJSON(b, []byte(key), l); err != nil {
		return fmt.Errorf("put lease %s: %w", key, err)
	}
	if err := idx.Put(portKey(l.Port), []byte(key)); err != nil {
		return fmt.Errorf("put lease %s: %w", key, err)
	}
	return nil
}

// DeleteLease frees a lease. Deleting an absent one is not an error, so a
// release can be retried after a crash.
func (t *Tx) DeleteLease(key string) error {
	if err := t.writable(); err != nil {
		return fmt.Errorf("delete lease %s: %w", key, err)
	}
	b, err := t.bucket(bucketLeases)
	if err != nil {
		return err
	}
	idx, err := t.bucket(bucketLeasePorts)
	if err != nil {
		return err
	}
	var l Lease
	had, err := getJSON(b, []byte(key), &l)
	if err != nil {
		return fmt.Errorf("delete lease %s: %w", key, err)
	}
	if !had {
		return nil
	}
	// Only drop the index entry if it still points at this lease.
	if string(idx.Get(portKey(l.Port))) == key {
		if err := idx.Delete(portKey(l.Port)); err != nil {
			return fmt.Errorf("delete lease %s: %w", key, err)
		}
	}
	if err := b.Delete([]byte(key)); err != nil {
		return fmt.Errorf("delete lease %s: %w", key, err)
	}
	return nil
}

// DeleteServiceLeases frees every lease of a service and returns how many
// there were.
func (t *Tx) DeleteServiceLeases(service string) (int, error) {
	if err := t.writable(); err != nil {
		return 0, fmt.Errorf("delete leases of %s: %w", service, err)
	}
	b, err := t.bucket(bucketLeases)
	if err != nil {
		return 0, err
	}
	// Collect first: bbolt forbids deleting under a ForEach.
	var keys []string
	prefix := []byte(service + "/")
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, string(k))
	}
	for _, k := range keys {
		if err := t.DeleteLease(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// --- snapshot ----------------------------------------------------------

// Snapshot reads the state the planner needs.
func (t *Tx) Snapshot() (Snapshot, error) {
	var s Snapshot
	var err error
	if s.Node, err = t.Node(); err != nil {
		return s, fmt.Errorf("snapshot: %w", err)
	}
	if s.Services, err = t.Services(); err != nil {
		return s, fmt.Errorf("snapshot: %w", err)
	}
	if s.Leases, err = t.Leases(); err != nil {
		return s, fmt.Errorf("snapshot: %w", err)
	}
	return s, nil
}

// --- one-transaction wrappers -------------------------------------------

// PutDeployed records a service as applied.
func (r *Registry) PutDeployed(ctx context.Context, d Deployed) error {
	return r.Update(ctx, func(tx *Tx) error { return tx.PutDeployed(d) })
}

// DeleteDeployed forgets a service.
func (r *Registry) DeleteDeployed(ctx context.Context, name string) error {
	return r.Update(ctx, func(tx *Tx) error { return tx.DeleteDeployed(name) })
}

// Leases returns every lease sorted by key.
func (r *Registry) Leases(ctx context.Context) ([]Lease, error) {
	return viewValue(ctx, r, func(tx *Tx) ([]Lease, error) { return tx.Leases() })
}

// PutLease records a lease (see Tx.PutLease).
func (r *Registry) PutLease(ctx context.Context, l Lease) error {
	return r.Update(ctx, func(tx *Tx) error { return tx.PutLease(l) })
}

// DeleteLease frees a lease; absent is not an error.
func (r *Registry) DeleteLease(ctx context.Context, key string) error {
	return r.Update(ctx, func(tx *Tx) error { return tx.DeleteLease(key) })
}

// AppliedCommit is the commit last applied in full.
func (r *Registry) AppliedCommit(ctx context.Context) (string, error) {
	return viewValue(ctx, r, func(tx *Tx) (string, error) { return tx.AppliedCommit() })
}

// SetAppliedCommit moves the applied pointer (after success only).
func (r *Registry) SetAppliedCommit(ctx context.Context, commit string) error {
	return r.Update(ctx, func(tx *Tx) error { return tx.SetAppliedCommit(commit) })
}

// Node is the node name recorded in the file.
func (r *Registry) Node(ctx context.Context) (string, error) {
	return viewValue(ctx, r, func(tx *Tx) (string, error) { return tx.Node() })
}

// SetNode records the node name.
func (r *Registry) SetNode(ctx context.Context, name string) error {
	return r.Update(ctx, func(tx *Tx) error { return tx.SetNode(name) })
}
