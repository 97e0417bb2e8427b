// Package registry is the node's recorded state, kept in one bbolt file:
// what the agent applied, the host ports it holds, the step journal that
// makes a crash recoverable, and the operational records around them
// (quarantine, reconcile history, events, and room for certificates,
// proxy routes and DNS records).
//
// Only one process may hold the file at a time (bbolt takes an flock), so a
// second Open fails fast with ErrLocked instead of hanging. Every access goes
// through a transaction: Registry.View and Registry.Update hand callers a
// typed *Tx, and the Registry's own methods are one-transaction wrappers over
// Tx methods. The transaction is always passed explicitly, never through a
// context.
//
// # Bucket layout (schema version 2)
//
// All values are JSON unless said otherwise. Sequence keys are 8-byte
// big-endian uint64s taken from the bucket's own bbolt sequence, so a cursor
// walks them oldest first.
//
//	meta/
//	  schema_version   decimal ASCII, e.g. "2"; absent in an empty file (= 0)
//	  node             the node name, raw string
//	  applied_commit   the desired-state commit last applied in full, raw string
//	services/
//	  <service name>   Deployed
//	leases/
//	  <LeaseKey>       Lease            ("svc/comp/route/a")
//	lease_ports/                        index over leases, kept in the same
//	  <port>           LeaseKey         transaction; port as 5 zero-padded
//	                                    decimal digits ("08443") so keys sort
//	journal/
//	  <seq>            Entry
//	quarantine/
//	  <service>/<spec hash>  Quarantine
//	history/
//	  <seq>            HistoryRecord    (last N reconciles, default 100)
//	events/
//	  <seq>            Event            (last N events, default 1000)
//	certs/   <id>      JSON chosen by the certificate driver
//	routes/  <id>      JSON chosen by the proxy driver
//	records/ <id>      JSON chosen by the DNS driver
//
// # Migrations
//
// The schema moves forward through the ordered list in migrations.go, one
// bbolt transaction per step, starting from 0 (a file with no buckets). A
// file whose schema_version is newer than this binary knows is refused with
// ErrNewerSchema: there is no migrating down. A read-only Open of an older
// file never writes to it; it migrates a private temporary copy instead, so a
// newer `mcp plan --registry FILE` can still read an older agent's file.
//
// # Journal
//
// Before the executor runs a step it records an Entry in phase intent
// (JournalBegin); afterwards it moves the entry to done, failed or undone
// (JournalFinish). Entries still in intent after a restart are exactly the
// steps that were in flight at the crash (JournalOpen); recovery finishes or
// undoes them and then finishes or clears their entries. Finished entries are
// kept only as a short tail for debugging: the oldest are trimmed so the
// journal holds at most N entries (default 256); entries in intent are never
// trimmed.
package registry
