package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"metacircular.net/mcp/api"
)

func newSyncCmd(s streams) *cobra.Command {
	var (
		socket string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Ask the agent to reconcile now and print the outcome",
		Long: `Sync asks the local agent to fetch the desired state and reconcile now (or
joins the reconcile already running), waits for it to finish, and prints its
outcome and the services as they stand after it.

Exit status: 0 when the reconcile succeeded or had nothing to do, 1 when it
failed or some service failed (or the agent could not be reached).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// A reconcile that pulls images can take minutes: show that
			// the command is waiting (stderr, terminals only).
			pr := startProgress(s.err, "waiting for the agent's reconcile", time.Second)
			res, err := agentClient(socket).Sync(cmd.Context())
			pr.stop()
			if err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(s.out, res); err != nil {
					return err
				}
			} else {
				ew := &errWriter{w: s.out}
				ew.printf("reconcile: %s\n", reconcileLine(res.Reconcile))
				if res.Reconcile.Error != "" {
					ew.printf("           %s\n", res.Reconcile.Error)
				}
				if ew.err != nil {
					return ew.err
				}
				if len(res.Services) > 0 {
					fmt.Fprintln(s.out)
					if err := renderServices(s.out, res.Services); err != nil {
						return err
					}
				}
			}
			switch res.Reconcile.Result {
			case api.ResultFailed, api.ResultPartial:
				return exitError{ExitError}
			}
			return nil
		},
	}
	addSocketFlag(cmd, &socket)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the reconcile's outcome as JSON")
	return cmd
}
