package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

type planFlags struct {
	repo           string
	node           string
	registry       string
	socket         string
	json           bool
	allowRemoveAll bool
	fromGit        bool // plan_git.go
}

func newPlanCmd(s streams) *cobra.Command {
	var f planFlags
	cmd := &cobra.Command{
		Use:   "plan --repo DIR --node NODE",
		Short: "Show what the agent on NODE would do (a dry run)",
		Long: `Plan reads the desired state from the working tree of DIR (uncommitted edits
included) and the actual state from a registry file (a missing file means
nothing is deployed), and prints the plan the agent would execute: the same
planner, the same inputs, the same hash.

Exit status: 0 when there is nothing to do, 2 when there are changes, 1 on
error (invalid definitions are reported and the plan of the valid services
is still printed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPlan(cmd, s, f)
		},
	}
	cmd.Flags().StringVar(&f.repo, "repo", ".", "desired-state repository (working tree)")
	cmd.Flags().StringVar(&f.node, "node", "", "node to plan for (required)")
	cmd.Flags().StringVar(&f.registry, "registry", "", "registry file holding the node's actual state")
	cmd.Flags().StringVar(&f.socket, "socket", "", "read the actual state from the agent listening on this socket (plans exactly as the agent does)")
	cmd.Flags().BoolVar(&f.json, "json", false, "print the plan as one JSON object")
	cmd.Flags().BoolVar(&f.allowRemoveAll, "allow-remove-all", false, "allow a plan that removes every deployed service")
	cmd.Flags().BoolVar(&f.fromGit, "from-git", false, "read the actual state from the node's latest status note (refs/notes/mcp/NODE, fetched from the checkout's origin)")
	_ = cmd.MarkFlagRequired("node")
	return cmd
}

func runPlan(cmd *cobra.Command, s streams, f planFlags) error {
	repo, err := spec.LoadDir(f.repo)
	if err != nil {
		return fmt.Errorf("load %s: %w", f.repo, err)
	}
	if repo.PlatformValid {
		if _, ok := repo.Platform.Node(f.node); !ok {
			return fmt.Errorf("node %q is not declared in %s/mcp.toml (declared: %s)", f.node, f.repo, nodeNames(repo.Platform))
		}
	}
	actual := registry.Snapshot{Node: f.node}
	var features planner.Features
	var quarantine []registry.Quarantine // held as deployed, as the agent does
	var secrets *spec.NodeSecrets        // the node's secret digests; nil: unknown here
	allowRemoveAll := f.allowRemoveAll
	switch {
	case f.fromGit && (f.registry != "" || f.socket != ""):
		return fmt.Errorf("--from-git, --registry and --socket are sources of the actual state: give one")
	case f.fromGit:
		resp, err := snapshotFromGit(cmd, s, f.repo, f.node)
		if err != nil {
			return err
		}
		actual, features, quarantine, secrets = resp.Snapshot, resp.Features, resp.Quarantine, resp.Secrets
		allowRemoveAll = allowRemoveAll || resp.AllowRemoveAll
	case f.registry != "" && f.socket != "":
		return fmt.Errorf("--registry and --socket are two sources of the actual state: give one")
	case f.registry != "":
		actual, err = readSnapshot(cmd, f.registry)
		if err != nil {
			return err
		}
	case f.socket != "":
		// The agent's snapshot and features (and its allow_remove_all),
		// so the plan and its hash are the ones the agent computes.
		resp, err := api.NewClient(f.socket).Snapshot(cmd.Context())
		if err != nil {
			return err
		}
		if resp.Snapshot.Node != "" && resp.Snapshot.Node != f.node {
			return fmt.Errorf("the agent on %s runs node %q, not %q", f.socket, resp.Snapshot.Node, f.node)
		}
		actual, features, quarantine, secrets = resp.Snapshot, resp.Features, resp.Quarantine, resp.Secrets
		allowRemoveAll = allowRemoveAll || resp.AllowRemoveAll
	}
	in := planner.InputFor(repo, f.node, actual, features, allowRemoveAll)
	planner.BindSecrets(&in, secrets)
	planner.HoldQuarantined(&in, quarantine)
	p := planner.Compute(in)
	for _, d := range repo.Diagnostics {
		if d.Severity == spec.SeverityWarning {
			fmt.Fprintln(s.err, d.Error())
		}
	}
	if f.json {
		enc := json.NewEncoder(s.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(p); err != nil {
			return fmt.Errorf("write plan: %w", err)
		}
	} else {
		// Rendered into a buffer so the symbols can be coloured on a
		// terminal (color.go); the renderer stays colourless.
		var buf bytes.Buffer
		if err := planner.Render(&buf, p); err != nil {
			return fmt.Errorf("write plan: %w", err)
		}
		if _, err := s.out.Write(paletteFor(s.out).plan(buf.Bytes())); err != nil {
			return fmt.Errorf("write plan: %w", err)
		}
		if f.socket != "" {
			printDrift(cmd, s, f.socket) // status_rollout.go
		}
	}
	switch {
	case len(p.Errors) > 0 || p.Refused != "":
		return exitError{ExitError}
	case !p.IsNoOp():
		return exitError{ExitChanges}
	}
	return nil
}

// readSnapshot reads the actual state from a registry file; a missing file
// is a node with nothing deployed.
func readSnapshot(cmd *cobra.Command, path string) (registry.Snapshot, error) {
	reg, err := registry.Open(path, registry.ReadOnly())
	if errors.Is(err, registry.ErrNotExist) {
		return registry.Snapshot{}, nil
	}
	if err != nil {
		return registry.Snapshot{}, err
	}
	defer reg.Close()
	snap, err := reg.Snapshot(cmd.Context())
	if err != nil {
		return registry.Snapshot{}, fmt.Errorf("read registry %s: %w", path, err)
	}
	return snap, nil
}

func nodeNames(p spec.Platform) string {
	names := ""
	for i, n := range p.Nodes {
		if i > 0 {
			names += ", "
		}
		names += n.Name
	}
	if names == "" {
		return "none"
	}
	return names
}
