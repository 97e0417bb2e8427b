package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"metacircular.net/mcp/spec"
)

func newValidateCmd(s streams) *cobra.Command {
	return &cobra.Command{
		Use:   "validate [DIR]",
		Short: "Check a desired-state repository's definitions",
		Long: `Validate loads mcp.toml and services/*.toml from DIR (default ".") and
reports every problem with its file, key path and what is allowed.
Exit status: 0 when valid, 1 when not. Warnings do not fail validation.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			repo, err := spec.LoadDir(dir)
			if err != nil {
				return fmt.Errorf("load %s: %w", dir, err)
			}
			for _, d := range repo.Diagnostics {
				fmt.Fprintln(s.err, d.Error())
			}
			if repo.Diagnostics.HasErrors() {
				fmt.Fprintf(s.err, "%d invalid service(s), %d valid\n", len(repo.Invalid), len(repo.Services))
				return exitError{ExitError}
			}
			fmt.Fprintf(s.out, "ok: %d service(s) on %d node(s)\n", len(repo.Services), len(repo.Platform.Nodes))
			return nil
		},
	}
}
