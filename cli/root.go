// Package cli builds mcp's command tree. Commands are constructed by
// functions (no package globals, nothing registered in init) so tests can
// run them in-process with their own output streams.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"metacircular.net/mcp/internal/version"
)

// Exit codes shared by every command (documented in the README).
const (
	ExitOK      = 0 // success; for plan: nothing to do
	ExitError   = 1 // failure; for validate: invalid definitions
	ExitChanges = 2 // plan: there are changes to apply
)

// exitError carries a specific exit code up to Main without printing
// anything more (the command already explained itself).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// streams are the command's standard streams, passed down explicitly.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

// Main runs the mcp command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	s := streams{in: stdin, out: stdout, err: stderr}
	root := newRoot(s)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(stderr, "mcp: %v\n", err)
	return ExitError
}

func newRoot(s streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "mcp",
		Short: "mcp deploys services from a Git repository of TOML definitions",
		Long: `mcp is a GitOps, pull-based deployer. The desired state is a Git repository
of service definitions; an agent on every node follows it and converges the
node: host ports, containers, routes, certificates and DNS records.`,
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newValidateCmd(s),
		newPlanCmd(s),
		newAgentCmd(s),
		newStatusCmd(s), newPsCmd(s), newLogsCmd(s), newSyncCmd(s),
		newEventsCmd(s), newVersionCmd(s),
		newHistoryCmd(s), newRetryCmd(s),
	)
	return root
}
