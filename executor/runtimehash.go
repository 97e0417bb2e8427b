package executor

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"metacircular.net/mcp/spec"
)

// ErrRuntimeHashMismatch is returned (wrapped) by Runtime.Start when a
// container with the spec's ID exists but was created from a different
// runtime spec. The caller removes it and starts again.
var ErrRuntimeHashMismatch = errors.New("container exists with a different runtime hash")

// runtimeHashVersion names the encoding below. It changes only when the
// meaning of an existing field changes; adding a field does not need a new
// version as long as the field is omitted when empty (see runtimeView).
const runtimeHashVersion = "rt1"

// runtimeView is the canonical form hashed by RuntimeHash: only what the
// container runtime sees. Labels, versions, commits, the log path and
// anything else mcp may grow are deliberately absent, so that upgrading mcp
// restarts no container whose runtime spec did not change.
//
// Rule for future fields: tag them `omitempty` so that containers created
// before the field existed (zero value) keep their hash.
type runtimeView struct {
	Image   string      `json:"image"`
	Env     [][2]string `json:"env,omitempty"`
	Cmd     []string    `json:"cmd,omitempty"`
	User    string      `json:"user,omitempty"`
	Volumes []volume    `json:"volumes,omitempty"`
	Restart string      `json:"restart,omitempty"`
}

type volume struct {
	Host      string `json:"host"`
	Container string `json:"container"`
	ReadOnly  bool   `json:"ro,omitempty"`
}

// RuntimeHash is a canonical, versioned digest of the runtime-relevant
// fields of s: the image (its digest when known, else the reference), the
// environment, cmd, user, volumes and restart policy. The result looks like
// "rt1:<hex>" and is what drivers store under LabelRuntimeHash.
//
// Canonical means: the environment is compared as a set of keys (the last
// value of a repeated key wins, as in the runtime) and volumes by container
// path, so reordering a definition restarts nothing.
func RuntimeHash(s ContainerSpec) string {
	v := runtimeView{
		Image:   s.Image,
		Env:     canonicalEnv(s.Env, s.Secrets),
		Cmd:     s.Cmd,
		User:    s.User,
		Volumes: canonicalVolumes(s.Volumes),
		Restart: s.Restart,
	}
	if s.Digest != "" {
		v.Image = s.Digest
	}
	// encoding/json writes struct fields in declaration order; the slices
	// are already sorted, so the encoding is canonical. It cannot fail on
	// these types.
	b, _ := json.Marshal(v)
	h := sha256.New()
	h.Write([]byte(runtimeHashVersion))
	h.Write([]byte{0})
	h.Write(b)
	return runtimeHashVersion + ":" + hex.EncodeToString(h.Sum(nil))
}

// canonicalEnv is env as sorted pairs; a variable in secrets is
// represented by its secret's name and digest, never by its value.
func canonicalEnv(env []string, secrets map[string]string) [][2]string {
	if len(env) == 0 {
		return nil
	}
	last := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if ref, ok := secrets[k]; ok {
			v = ref
		}
		last[k] = v
	}
	out := make([][2]string, 0, len(last))
	for k, v := range last {
		out = append(out, [2]string{k, v})
	}
	slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return out
}

// SortVolumes returns vs ordered by container path, the order in which they
// are mounted (a parent directory before what is mounted inside it).
func SortVolumes(vs []spec.Volume) []spec.Volume {
	out := slices.Clone(vs)
	slices.SortStableFunc(out, func(a, b spec.Volume) int {
		if c := strings.Compare(a.Container, b.Container); c != 0 {
			return c
		}
		return strings.Compare(a.Host, b.Host)
	})
	return out
}

func canonicalVolumes(vs []spec.Volume) []volume {
	if len(vs) == 0 {
		return nil
	}
	var out []volume
	for _, v := range SortVolumes(vs) {
		out = append(out, volume{Host: v.Host, Container: v.Container, ReadOnly: v.ReadOnly})
	}
	return out
}
