package registry

import (
	"encoding/json"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// Bucket and key names. They are the on-disk format: never rename one
// without a migration.
var (
	bucketMeta       = []byte("meta")
	bucketServices   = []byte("services")
	bucketLeases     = []byte("leases")
	bucketLeasePorts = []byte("lease_ports")
	bucketJournal    = []byte("journal")
	bucketQuarantine = []byte("quarantine")
	bucketHistory    = []byte("history")
	bucketEvents     = []byte("events")
	bucketCerts      = []byte("certs")
	bucketRoutes     = []byte("routes")
	bucketRecords    = []byte("records")

	keySchemaVersion = []byte("schema_version")
	keyNode          = []byte("node")
	keyAppliedCommit = []byte("applied_commit")
)

// migration moves the schema from version i to i+1, where i is its index
// in migrations. Each runs in its own transaction together with the
// schema_version bump, so a crash leaves the file at a whole version.
type migration struct {
	name string
	fn   func(*bolt.Tx) error
}

// migrations is append-only: shipped entries are never edited or reordered,
// because files in the field have already run them.
var migrations = []migration{
	{"create the buckets", migrateCreateBuckets},     // 0 -> 1
	{"index leases by port", migrateIndexLeasePorts}, // 1 -> 2
}

func currentVersion() int { return len(migrations) }

// migrateCreateBuckets lays out version 1.
func migrateCreateBuckets(tx *bolt.Tx) error {
	for _, b := range [][]byte{
		bucketMeta, bucketServices, bucketLeases, bucketJournal,
		bucketQuarantine, bucketHistory, bucketEvents,
		bucketCerts, bucketRoutes, bucketRecords,
	} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	return nil
}

// migrateIndexLeasePorts adds the port -> lease index that lets PutLease
// refuse a port already held and the allocator skip held ports without a
// full scan. Built from the leases already recorded.
func migrateIndexLeasePorts(tx *bolt.Tx) error {
	idx, err := tx.CreateBucketIfNotExists(bucketLeasePorts)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketLeasePorts, err)
	}
	return tx.Bucket(bucketLeases).ForEach(func(k, v []byte) error {
		var l Lease
		if err := json.Unmarshal(v, &l); err != nil {
			return fmt.Errorf("decode lease %s: %w", k, err)
		}
		pk := portKey(l.Port)
		if holder := idx.Get(pk); holder != nil {
			return fmt.Errorf("leases %s and %s both hold port %d", holder, k, l.Port)
		}
		return idx.Put(pk, k)
	})
}

// schemaVersion reads meta/schema_version; a file without it is version 0.
func schemaVersion(tx *bolt.Tx) (int, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, nil
	}
	v := meta.Get(keySchemaVersion)
	if v == nil {
		return 0, nil
	}
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("meta/schema_version %q is not a version number", v)
	}
	return n, nil
}

func checkNotNewer(version int) error {
	if version > currentVersion() {
		return fmt.Errorf("%w: file has schema version %d, this mcp knows up to %d; upgrade mcp (schemas are never migrated down)",
			ErrNewerSchema, version, currentVersion())
	}
	return nil
}

// migrate brings db up to currentVersion, one transaction per step.
func migrate(db *bolt.DB) error {
	// Check in a read transaction first: the common case (already current)
	// should not cost a write and an fsync on every start.
	var version int
	if err := db.View(func(tx *bolt.Tx) error {
		var err error
		version, err = schemaVersion(tx)
		return err
	}); err != nil {
		return err
	}
	if err := checkNotNewer(version); err != nil {
		return err
	}
	if version == currentVersion() {
		return nil
	}
	for {
		done := false
		err := db.Update(func(tx *bolt.Tx) error {
			v, err := schemaVersion(tx)
			if err != nil {
				return err
			}
			if err := checkNotNewer(v); err != nil {
				return err
			}
			if v == currentVersion() {
				done = true
				return nil
			}
			m := migrations[v]
			if err := m.fn(tx); err != nil {
				return fmt.Errorf("migrate schema %d -> %d (%s): %w", v, v+1, m.name, err)
			}
			meta, err := tx.CreateBucketIfNotExists(bucketMeta)
			if err != nil {
				return err
			}
			return meta.Put(keySchemaVersion, []byte(strconv.Itoa(v+1)))
		})
		if err != nil || done {
			return err
		}
	}
}

// portKey is the lease_ports key: zero-padded so byte order is port order.
func portKey(port int) []byte { return fmt.Appendf(nil, "%05d", port) }
