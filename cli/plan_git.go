package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/statusnote"
)

// snapshotFromGit reads the actual state the agent on node plans with from
// its latest status note: `mcp plan --from-git`. repo is the checkout
// whose origin holds the notes (or a repository holding them itself).
func snapshotFromGit(cmd *cobra.Command, s streams, repo, node string) (api.SnapshotResponse, error) {
	notes, err := statusnote.Open(cmd.Context(), repo)
	if err != nil {
		return api.SnapshotResponse{}, err
	}
	n, err := notes.Latest(node)
	if err != nil {
		return api.SnapshotResponse{}, err
	}
	if n.Record.Planner == nil {
		return api.SnapshotResponse{}, fmt.Errorf("the latest status note of %s (on %s) carries no planner state", node, shortCommit(n.Object.String()))
	}
	fmt.Fprintf(s.err, "actual state of %s from its status note of %s on %s\n", node,
		n.Record.Time.UTC().Format("2006-01-02T15:04:05Z"), shortCommit(n.Object.String()))
	return *n.Record.Planner, nil
}
