package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"metacircular.net/mcp/spec"
)

// validateResult is `mcp validate --json`.
type validateResult struct {
	Valid       bool               `json:"valid"`
	Services    []string           `json:"services"`
	Invalid     []string           `json:"invalid,omitempty"`
	Nodes       int                `json:"nodes"`
	Diagnostics []validateDiagnose `json:"diagnostics,omitempty"`
}

type validateDiagnose struct {
	spec.Diagnostic
	Severity string `json:"severity"`
	Text     string `json:"text"` // as printed without --json
}

func newValidateCmd(s streams) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
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
			if asJSON {
				res := validateResult{Valid: !repo.Diagnostics.HasErrors(), Services: []string{}, Nodes: len(repo.Platform.Nodes)}
				for _, svc := range repo.Services {
					res.Services = append(res.Services, svc.Name)
				}
				for _, inv := range repo.Invalid {
					res.Invalid = append(res.Invalid, inv.Name)
				}
				for _, d := range repo.Diagnostics {
					res.Diagnostics = append(res.Diagnostics, validateDiagnose{Diagnostic: d, Severity: d.Severity.String(), Text: d.Error()})
				}
				if err := writeJSON(s.out, res); err != nil {
					return err
				}
				if !res.Valid {
					return exitError{ExitError}
				}
				return nil
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
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result and every diagnostic as one JSON object on stdout")
	return cmd
}
