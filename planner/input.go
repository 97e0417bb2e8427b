package planner

import (
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// InputFor builds the planner's input for node from a loaded repository.
// The agent and `mcp plan` both call it, so the plan an operator previews
// is computed from exactly the inputs the agent uses.
func InputFor(repo *spec.Repo, node string, actual registry.Snapshot, f Features, allowRemoveAll bool) Input {
	desired, invalid := repo.ForNode(node)
	var elsewhere []string
	for _, s := range repo.Services {
		if s.Node != node {
			elsewhere = append(elsewhere, s.Name)
		}
	}
	return Input{
		Elsewhere:      elsewhere,
		Node:           node,
		Domain:         repo.Platform.Domain,
		Desired:        desired,
		Invalid:        invalid,
		Actual:         actual,
		Features:       f,
		AllowRemoveAll: allowRemoveAll,
	}
}
