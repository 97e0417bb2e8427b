package planner

import (
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// HoldQuarantined leaves every quarantined (service, spec hash) of in as
// deployed: a desired service whose definition hash is quarantined is
// replaced by the definition recorded in in.Actual (so the plan has no
// step for it and removes nothing), or dropped when it was never
// deployed. It returns the services held. The agent, `mcp plan --socket`
// and `mcp plan --from-git` all call it with the same list, so they keep
// computing the same plan and hash.
func HoldQuarantined(in *Input, q []registry.Quarantine) []string {
	if len(q) == 0 {
		return nil
	}
	held := map[string]string{}
	for _, r := range q {
		held[r.Service+"\x00"+r.SpecHash] = r.Service
	}
	var names []string
	out := in.Desired[:0:0]
	for _, s := range in.Desired {
		if _, ok := held[s.Name+"\x00"+spec.Hash(s)]; !ok {
			out = append(out, s)
			continue
		}
		names = append(names, s.Name)
		if d, ok := in.Actual.Services[s.Name]; ok {
			out = append(out, d.Spec)
		}
	}
	in.Desired = out
	return names
}
