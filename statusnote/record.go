package statusnote

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"metacircular.net/mcp/api"
)

// SchemaVersion is the version of the Record format written.
const SchemaVersion = 1

// Record is one status note (see the package doc for the format).
type Record struct {
	SchemaVersion int `json:"schema_version"`
	// Time is when the record was written.
	Time time.Time `json:"time"`
	// PlanHash is the hash of the last plan the agent computed.
	PlanHash string `json:"plan_hash,omitempty"`
	// Status is the agent's local status; its fields are inlined.
	api.Status
	// Planner is what the agent plans with, for `mcp plan --from-git`.
	Planner *api.SnapshotResponse `json:"planner,omitempty"`
}

// Marshal encodes r as the note's content (indented: notes are read by
// people with git notes show).
func (r *Record) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode status record: %w", err)
	}
	return append(b, '\n'), nil
}

// Parse decodes a note. A record of a newer schema version is read as far
// as this version understands it.
func Parse(b []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode status record: %w", err)
	}
	if r.SchemaVersion < 1 {
		return nil, fmt.Errorf("decode status record: no schema_version (not an mcp status note)")
	}
	return &r, nil
}

// fingerprint identifies the content of a record apart from when it was
// written: two records with the same fingerprint differ only in their
// times (a liveness update).
func (r *Record) fingerprint() string {
	c := *r
	c.Time = time.Time{}
	c.LastReconcile.Started, c.LastReconcile.Finished = time.Time{}, time.Time{}
	b, err := json.Marshal(&c)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
