package planner

import "metacircular.net/mcp/spec"

// BindSecrets binds the node's secret digests (spec.BindSecrets) into the
// desired services of in, so that a changed secret value changes the
// definition: the plan shows the digest change and the plan hash moves,
// while no value ever reaches the planner. A service referencing a secret
// the node cannot provide becomes invalid: it is left as deployed, with a
// diagnostic naming the secret and the directory, and fails nothing else.
//
// ns nil means the secrets are unknown here (`mcp plan --registry` on a
// machine that is not the node): references stay unbound and show as
// "digest unknown". The agent, `mcp plan --socket` and `--from-git` pass
// the node's NodeSecrets, so they compute the agent's plan and hash. Call
// it right after InputFor, before HoldQuarantined (a quarantine is keyed
// by the bound definition's hash).
func BindSecrets(in *Input, ns *spec.NodeSecrets) {
	if ns == nil {
		return
	}
	out := in.Desired[:0:0]
	for _, s := range in.Desired {
		b, diags := spec.BindSecrets(s, ns)
		if len(diags) > 0 {
			in.Invalid = append(in.Invalid, spec.Invalid{Name: s.Name, File: s.File, Node: s.Node, Diagnostics: diags})
			continue
		}
		out = append(out, b)
	}
	in.Desired = out
}
