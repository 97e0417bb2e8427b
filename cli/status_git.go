package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"metacircular.net/mcp/statusnote"
)

// statusGitFlags are the flags of `mcp status` that read the status notes
// in Git instead of asking the local agent.
type statusGitFlags struct {
	repo string
	node string
}

func addStatusGitFlags(cmd *cobra.Command, f *statusGitFlags) {
	cmd.Flags().StringVar(&f.repo, "repo", "", "read every node's latest status note from this repository (URL, or a clone whose origin is fetched) instead of asking the local agent")
	cmd.Flags().StringVar(&f.node, "node", "", "with --repo: only this node")
}

// statusNow is the clock the ages are computed against (a variable for
// tests).
var statusNow = time.Now

// runStatusFromGit prints the latest status note of every node (or one),
// with its age.
func runStatusFromGit(cmd *cobra.Command, s streams, f statusGitFlags, asJSON bool) error {
	notes, err := statusnote.Open(cmd.Context(), f.repo)
	if err != nil {
		return err
	}
	nodes := notes.Nodes()
	if f.node != "" {
		nodes = []string{f.node}
	}
	if len(nodes) == 0 {
		return fmt.Errorf("no node has written status notes to %s yet (refs/notes/mcp/*)", f.repo)
	}
	var all []*statusnote.Record
	for i, node := range nodes {
		n, err := notes.Latest(node)
		if err != nil {
			return err
		}
		if asJSON {
			all = append(all, n.Record)
			continue
		}
		if i > 0 {
			fmt.Fprintln(s.out)
		}
		if err := renderNote(s.out, n); err != nil {
			return err
		}
	}
	if asJSON {
		return writeJSON(s.out, all)
	}
	return nil
}

func renderNote(w io.Writer, n *statusnote.Note) error {
	r := n.Record
	age := statusNow().Sub(r.Time).Round(time.Second)
	if _, err := fmt.Fprintf(w, "status note:     %s, %s ago (note on %s, %s)\n", r.Time.UTC().Format(time.RFC3339), age,
		shortCommit(n.Object.String()), statusnote.Ref(n.Node)); err != nil {
		return err
	}
	if err := renderStatus(w, r.Status); err != nil {
		return err
	}
	for _, q := range r.Quarantine {
		if _, err := fmt.Fprintf(w, "quarantined:     %s (definition %s) since %s: %s\n", q.Service, shortHash(q.SpecHash),
			q.Since.UTC().Format(time.RFC3339), q.Reason); err != nil {
			return err
		}
	}
	return nil
}
