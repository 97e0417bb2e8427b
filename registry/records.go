package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// --- quarantine ----------------------------------------------------------

// Quarantine marks one (service, spec hash) as failing repeatedly: it is
// not retried until a newer definition changes the hash or an operator
// lifts it.
type Quarantine struct {
	Service  string    `json:"service"`
	SpecHash string    `json:"spec_hash"`
	Reason   string    `json:"reason"`
	Commit   string    `json:"commit,omitempty"`
	Failures int       `json:"failures,omitempty"`
	Since    time.Time `json:"since"`
	// RevertTo is the spec hash of the version the service goes back to
	// while SpecHash is quarantined (the deployed one's Previous), or ""
	// to keep what is deployed.
	RevertTo string `json:"revert_to,omitempty"`
}

func quarantineKey(service, specHash string) []byte {
	return []byte(service + "/" + specHash)
}

// PutQuarantine records q; Since defaults to now.
func (t *Tx) PutQuarantine(q Quarantine) error {
	if q.Service == "" || q.SpecHash == "" {
		return fmt.Errorf("put quarantine: service and spec hash are required")
	}
	if err := t.writable(); err != nil {
		return fmt.Errorf("put quarantine %s: %w", q.Service, err)
	}
	if q.Since.IsZero() {
		q.Since = t.cfg.now()
	}
	b, err := t.bucket(bucketQuarantine)
	if err != nil {
		return err
	}
	if err := putJSON(b, quarantineKey(q.Service, q.SpecHash), q); err != nil {
		return fmt.Errorf("put quarantine %s: %w", q.Service, err)
	}
	return nil
}

// Quarantined returns the record for (service, spec hash); ErrNotFound if
// that definition is not quarantined.
func (t *Tx) Quarantined(service, specHash string) (Quarantine, error) {
	var q Quarantine
	b, err := t.bucket(bucketQuarantine)
	if err != nil {
		return q, err
	}
	ok, err := getJSON(b, quarantineKey(service, specHash), &q)
	if err != nil {
		return q, fmt.Errorf("get quarantine %s: %w", service, err)
	}
	if !ok {
		return q, fmt.Errorf("get quarantine %s %s: %w", service, specHash, ErrNotFound)
	}
	return q, nil
}

// QuarantineList returns every record, ordered by service then spec hash.
func (t *Tx) QuarantineList() ([]Quarantine, error) {
	b, err := t.bucket(bucketQuarantine)
	if err != nil {
		return nil, err
	}
	var out []Quarantine
	err = b.ForEach(func(k, v []byte) error {
		var q Quarantine
		if err := json.Unmarshal(v, &q); err != nil {
			return fmt.Errorf("decode quarantine %s: %w", k, err)
		}
		out = append(out, q)
		return nil
	})
	// Key order puts "mcq-web/" before "mcq/"; callers want service order.
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].SpecHash < out[j].SpecHash
	})
	return out, err
}

// DeleteQuarantine lifts one record; absent is not an error.
func (t *Tx) DeleteQuarantine(service, specHash string) error {
	if err := t.writable(); err != nil {
		return fmt.Errorf("delete quarantine %s: %w", service, err)
	}
	b, err := t.bucket(bucketQuarantine)
	if err != nil {
		return err
	}
	return b.Delete(quarantineKey(service, specHash))
}

// DeleteServiceQuarantine lifts every record of a service (`mcp retry`).
func (t *Tx) DeleteServiceQuarantine(service string) (int, error) {
	if err := t.writable(); err != nil {
		return 0, fmt.Errorf("delete quarantine %s: %w", service, err)
	}
	b, err := t.bucket(bucketQuarantine)
	if err != nil {
		return 0, err
	}
	prefix := []byte(service + "/")
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, fmt.Errorf("delete quarantine %s: %w", k, err)
		}
	}
	return len(keys), nil
}

// --- bounded sequences (history, events) ---------------------------------

// appendBounded stores v under the bucket's next sequence and drops the
// oldest records beyond limit. Returns the sequence used.
func appendBounded(b *bolt.Bucket, limit int, v func(seq uint64) any) (uint64, error) {
	seq, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	if err := putJSON(b, seqKey(seq), v(seq)); err != nil {
		return 0, err
	}
	// Sequences are dense apart from trimming, so everything at or below
	// seq-limit is out of bounds; delete from the oldest up to there.
	if seq <= uint64(limit) {
		return seq, nil
	}
	cut := seqKey(seq - uint64(limit))
	var old [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k, cut) <= 0; k, _ = c.Next() {
		old = append(old, append([]byte(nil), k...))
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return seq, nil
}

// HistoryRecord is one reconcile.
type HistoryRecord struct {
	Seq      uint64        `json:"seq"`
	Time     time.Time     `json:"time"` // when the reconcile started
	Commit   string        `json:"commit"`
	PlanHash string        `json:"plan_hash"`
	Result   string        `json:"result"` // "ok", "failed", "partial", "noop"
	Duration time.Duration `json:"duration_ns"`
	Error    string        `json:"error,omitempty"`
	// Services is the per-service outcome, sorted by name, so
	// `mcp history SERVICE` can filter.
	Services []ServiceOutcome `json:"services,omitempty"`
}

// ServiceOutcome is one service's part in a reconcile.
type ServiceOutcome struct {
	Service string `json:"service"`
	Result  string `json:"result"`
	Error   string `json:"error,omitempty"`
	// SpecHash is the definition the reconcile worked on (quarantine counts
	// failures per definition); FailedStep the step that failed.
	SpecHash   string `json:"spec_hash,omitempty"`
	FailedStep string `json:"failed_step,omitempty"`
}

// AppendHistory records a reconcile and keeps the last N (WithHistoryLimit).
func (t *Tx) AppendHistory(h HistoryRecord) (uint64, error) {
	if err := t.writable(); err != nil {
		return 0, fmt.Errorf("append history: %w", err)
	}
	b, err := t.bucket(bucketHistory)
	if err != nil {
		return 0, err
	}
	if h.Time.IsZero() {
		h.Time = t.cfg.now()
	}
	sort.Slice(h.Services, func(i, j int) bool { return h.Services[i].Service < h.Services[j].Service })
	seq, err := appendBounded(b, t.cfg.historyLimit, func(seq uint64) any { h.Seq = seq; return h })
	if err != nil {
		return 0, fmt.Errorf("append history: %w", err)
	}
	return seq, nil
}

// History returns the kept reconciles, oldest first.
func (t *Tx) History() ([]HistoryRecord, error) {
	b, err := t.bucket(bucketHistory)
	if err != nil {
		return nil, err
	}
	var out []HistoryRecord
	err = b.ForEach(func(k, v []byte) error {
		var h HistoryRecord
		if err := json.Unmarshal(v, &h); err != nil {
			return fmt.Errorf("decode history %d: %w", keySeq(k), err)
		}
		out = append(out, h)
		return nil
	})
	return out, err
}

// Event kinds the agent records. The field is a plain string so later
// issues can add kinds without a schema change.
const (
	EventDeploy     = "deploy"
	EventFailure    = "failure"
	EventDrift      = "drift"
	EventRevert     = "revert"
	EventQuarantine = "quarantine"
)

// Event is one entry of the bounded event history.
type Event struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	Service   string    `json:"service,omitempty"`
	Component string    `json:"component,omitempty"`
	// Commit and PlanHash tie the event to the desired-state commit and
	// the plan it happened under, when there is one.
	Commit   string `json:"commit,omitempty"`
	PlanHash string `json:"plan_hash,omitempty"`
	Message  string `json:"message"`
}

// AppendEvent records an event (Time defaults to now) and keeps the last N
// (WithEventLimit).
func (t *Tx) AppendEvent(e Event) (uint64, error) {
	if err := t.writable(); err != nil {
		return 0, fmt.Errorf("append event: %w", err)
	}
	b, err := t.bucket(bucketEvents)
	if err != nil {
		return 0, err
	}
	if e.Time.IsZero() {
		e.Time = t.cfg.now()
	}
	seq, err := appendBounded(b, t.cfg.eventLimit, func(seq uint64) any { e.Seq = seq; return e })
	if err != nil {
		return 0, fmt.Errorf("append event: %w", err)
	}
	return seq, nil
}

// Events returns the kept events with Seq > after, oldest first; pass 0
// for all. A follower (`mcp events -f`) passes the last Seq it saw.
func (t *Tx) Events(after uint64) ([]Event, error) {
	b, err := t.bucket(bucketEvents)
	if err != nil {
		return nil, err
	}
	var out []Event
	if after == math.MaxUint64 {
		return nil, nil
	}
	c := b.Cursor()
	for k, v := c.Seek(seqKey(after + 1)); k != nil; k, v = c.Next() {
		var e Event
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("decode event %d: %w", keySeq(k), err)
		}
		out = append(out, e)
	}
	return out, nil
}

// --- opaque records for later drivers (certs, routes, records) ----------

// Store names a bucket of driver-owned JSON records keyed by id.
type Store string

// The stores later issues fill.
const (
	StoreCerts   Store = "certs"
	StoreRoutes  Store = "routes"
	StoreRecords Store = "records"
)

func (t *Tx) store(s Store) (*bolt.Bucket, error) {
	switch s {
	case StoreCerts, StoreRoutes, StoreRecords:
		return t.bucket([]byte(s))
	default:
		return nil, fmt.Errorf("unknown store %q", s)
	}
}

// Put stores v (JSON-encoded) under id in store s.
func (t *Tx) Put(s Store, id string, v any) error {
	if err := t.writable(); err != nil {
		return fmt.Errorf("put %s/%s: %w", s, id, err)
	}
	b, err := t.store(s)
	if err != nil {
		return err
	}
	if err := putJSON(b, []byte(id), v); err != nil {
		return fmt.Errorf("put %s/%s: %w", s, id, err)
	}
	return nil
}

// Get decodes the record id of store s into v; ErrNotFound if absent.
func (t *Tx) Get(s Store, id string, v any) error {
	b, err := t.store(s)
	if err != nil {
		return err
	}
	ok, err := getJSON(b, []byte(id), v)
	if err != nil {
		return fmt.Errorf("get %s/%s: %w", s, id, err)
	}
	if !ok {
		return fmt.Errorf("get %s/%s: %w", s, id, ErrNotFound)
	}
	return nil
}

// Delete removes a record; absent is not an error.
func (t *Tx) Delete(s Store, id string) error {
	if err := t.writable(); err != nil {
		return fmt.Errorf("delete %s/%s: %w", s, id, err)
	}
	b, err := t.store(s)
	if err != nil {
		return err
	}
	return b.Delete([]byte(id))
}

// List returns every record of store s as raw JSON keyed by id.
func (t *Tx) List(s Store) (map[string]json.RawMessage, error) {
	b, err := t.store(s)
	if err != nil {
		return nil, err
	}
	out := make(map[string]json.RawMessage)
	err = b.ForEach(func(k, v []byte) error {
		out[string(k)] = append(json.RawMessage(nil), v...)
		return nil
	})
	return out, err
}

// --- one-transaction wrappers -------------------------------------------

// PutQuarantine records a quarantined definition.
func (r *Registry) PutQuarantine(ctx context.Context, q Quarantine) error {
	return r.Update(ctx, func(tx *Tx) error { return tx.PutQuarantine(q) })
}

// QuarantineList returns every quarantined definition.
func (r *Registry) QuarantineList(ctx context.Context) ([]Quarantine, error) {
	return viewValue(ctx, r, func(tx *Tx) ([]Quarantine, error) { return tx.QuarantineList() })
}

// DeleteQuarantine lifts one quarantined definition.
func (r *Registry) DeleteQuarantine(ctx context.Context, service, specHash string) error {
	return r.Update(ctx, func(tx *Tx) error { return tx.DeleteQuarantine(service, specHash) })
}

// AppendHistory records a reconcile.
func (r *Registry) AppendHistory(ctx context.Context, h HistoryRecord) (uint64, error) {
	var seq uint64
	err := r.Update(ctx, func(tx *Tx) error {
		var err error
		seq, err = tx.AppendHistory(h)
		return err
	})
	return seq, err
}

// History returns the kept reconciles, oldest first.
func (r *Registry) History(ctx context.Context) ([]HistoryRecord, error) {
	return viewValue(ctx, r, func(tx *Tx) ([]HistoryRecord, error) { return tx.History() })
}

// AppendEvent records an event.
func (r *Registry) AppendEvent(ctx context.Context, e Event) (uint64, error) {
	var seq uint64
	err := r.Update(ctx, func(tx *Tx) error {
		var err error
		seq, err = tx.AppendEvent(e)
		return err
	})
	return seq, err
}

// Events returns the kept events after a sequence number.
func (r *Registry) Events(ctx context.Context, after uint64) ([]Event, error) {
	return viewValue(ctx, r, func(tx *Tx) ([]Event, error) { return tx.Events(after) })
}
