package planner

import (
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// HoldQuarantined leaves every quarantined (service, spec hash) of in as
// deployed: a desired service whose definition hash is quarantined is
// replaced by the definition recorded in in.Actual (so the plan has no
// step for it and removes nothing), or dropped when it was never
// deployed. A quarantine with RevertTo (a version that crash-looped after
// its rollout) replaces it by the deployed service's Previous definition
// instead, while that is the version RevertTo names: the plan then goes
// back to it, and once it is deployed the service is left as it is. It
// returns the services held. The agent, `mcp plan --socket`
// and `mcp plan --from-git` all call it with the same list, so they keep
// computing the same plan and hash.
func HoldQuarantined(in *Input, q []registry.Quarantine) []string {
	if len(q) == 0 {
		return nil
	}
	held := map[string]registry.Quarantine{}
	for _, r := range q {
		held[r.Service+"\x00"+r.SpecHash] = r
	}
	var names []string
	out := in.Desired[:0:0]
	for _, s := range in.Desired {
		r, ok := held[s.Name+"\x00"+spec.Hash(s)]
		if !ok {
			out = append(out, s)
			continue
		}
		names = append(names, s.Name)
		d, ok := in.Actual.Services[s.Name]
		switch {
		case !ok:
		case r.RevertTo != "" && d.SpecHash != r.RevertTo && d.Previous != nil && d.Previous.SpecHash == r.RevertTo:
			// Back to the version the quarantined one replaced.
			out = append(out, d.Previous.Spec)
		default:
			out = append(out, d.Spec)
		}
	}
	in.Desired = out
	return names
}
