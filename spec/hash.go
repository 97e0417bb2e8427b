package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// hashVersion is bumped whenever the canonical encoding below changes.
const hashVersion = "mcp-spec-v1"

// Hash is a canonical, versioned digest of a resolved service. Two services
// with the same resolved fields have the same hash whatever their source
// file looked like (comments, key order, convention or explicit form).
func Hash(s Service) string {
	// encoding/json writes struct fields in declaration order and map keys
	// sorted, which makes the encoding canonical.
	b, err := json.Marshal(s)
	if err != nil {
		// Only Snapshot (free-form TOML, ignored by the agent) can hold a
		// value JSON cannot encode (nan, inf); fmt prints maps sorted, so
		// the fallback is still canonical.
		b = []byte(fmt.Sprintf("%#v", s))
	}
	h := sha256.New()
	h.Write([]byte(hashVersion))
	h.Write([]byte{0})
	h.Write(b)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
