package planner

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"

	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// hashFormat names the canonical encoding below; bump it whenever the
// encoding changes, so an old hash can never be mistaken for a new one.
const hashFormat = "mcp-plan-v1"

// hashDoc is the canonical encoding of a plan's inputs. encoding/json writes
// struct fields in declaration order and every slice here is sorted, so the
// bytes depend only on the values. What is decided at apply time (the port
// a new lease gets, a digest not yet pulled, AppliedAt, drift observed in
// the runtime) is not an input to the planner and so cannot be in here.
type hashDoc struct {
	Format         string           `json:"format"`
	Planner        int              `json:"planner"`
	Node           string           `json:"node"`
	Domain         string           `json:"domain"`
	Features       Features         `json:"features"`
	AllowRemoveAll bool             `json:"allow_remove_all"`
	Desired        []hashService    `json:"desired"`
	Invalid        []hashInvalid    `json:"invalid"`
	Actual         []hashDeployed   `json:"actual"`
	Leases         []registry.Lease `json:"leases"`
	// Elsewhere only changes the plan through the remove-all guard, but
	// it does change it, so it is covered; omitted when empty so plans
	// that never needed it keep their hashes.
	Elsewhere []string `json:"elsewhere,omitempty"`
}

type hashService struct {
	Name     string `json:"name"`
	SpecHash string `json:"spec_hash"`
}

type hashInvalid struct {
	Name string `json:"name"`
	File string `json:"file"`
}

type hashDeployed struct {
	Name       string            `json:"name"`
	SpecHash   string            `json:"spec_hash"`
	Features   registry.Features `json:"features"`
	Components []hashComponent   `json:"components"`
}

type hashComponent struct {
	Name  string                  `json:"name"`
	State registry.ComponentState `json:"state"`
}

// Hash is the plan hash of in: sha256 over a canonical, versioned encoding
// of the planner version, the node, the features and domain, the guard
// setting, each desired service's spec.Hash, the names and files of the
// invalid services, and the recorded state (each deployed service's spec
// hash and component states, and every lease). The order of the slices in
// in does not matter. Compute sets Plan.Hash to it.
func Hash(in Input) string { return hashInput(&in, nil) }

// hashInput is Hash with the desired services' spec hashes already
// computed (index for index), or nil to compute them.
func hashInput(in *Input, specHashes []string) string {
	d := hashDoc{
		Format: hashFormat, Planner: Version, Node: in.Node, Domain: in.Domain,
		Features: in.Features, AllowRemoveAll: in.AllowRemoveAll,
		Desired: make([]hashService, 0, len(in.Desired)),
		Invalid: make([]hashInvalid, 0, len(in.Invalid)),
		Actual:  make([]hashDeployed, 0, len(in.Actual.Services)),
		Leases:  slices.Clone(in.Actual.Leases),
	}
	for i := range in.Desired {
		var h string
		if specHashes != nil {
			h = specHashes[i]
		} else {
			h = spec.Hash(in.Desired[i])
		}
		d.Desired = append(d.Desired, hashService{Name: in.Desired[i].Name, SpecHash: h})
	}
	slices.SortFunc(d.Desired, func(a, b hashService) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.SpecHash, b.SpecHash))
	})
	for _, inv := range in.Invalid {
		d.Invalid = append(d.Invalid, hashInvalid{Name: inv.Name, File: inv.File})
	}
	slices.SortFunc(d.Invalid, func(a, b hashInvalid) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.File, b.File))
	})
	for _, name := range sortedKeys(in.Actual.Services) {
		dep := in.Actual.Services[name]
		hd := hashDeployed{Name: name, SpecHash: dep.SpecHash, Features: dep.Features, Components: make([]hashComponent, 0, len(dep.Components))}
		for _, c := range sortedKeys(dep.Components) {
			hd.Components = append(hd.Components, hashComponent{Name: c, State: dep.Components[c]})
		}
		d.Actual = append(d.Actual, hd)
	}
	if len(in.Elsewhere) > 0 {
		d.Elsewhere = slices.Sorted(slices.Values(in.Elsewhere))
		d.Elsewhere = slices.Compact(d.Elsewhere)
	}
	slices.SortFunc(d.Leases, func(a, b registry.Lease) int {
		return cmp.Or(cmp.Compare(a.Key(), b.Key()), cmp.Compare(a.Port, b.Port), compareBool(a.Fixed, b.Fixed))
	})
	b, err := json.Marshal(d)
	if err != nil {
		// Only strings, ints and bools are encoded: this cannot happen.
		panic("planner: encoding the plan hash: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
