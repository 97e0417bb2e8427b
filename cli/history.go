package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"metacircular.net/mcp/registry"
)

type historyFlags struct {
	socket string
	json   bool
}

func newHistoryCmd(s streams) *cobra.Command {
	var f historyFlags
	cmd := &cobra.Command{
		Use:   "history [SERVICE]",
		Short: "Show the agent's last reconciles",
		Long: `History lists the reconciles the agent kept (the last 100): when, the commit,
the plan hash, the result, how long it took and why it failed. With SERVICE,
only the reconciles that concerned that service, with its own outcome.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := agentClient(f.socket).History(cmd.Context())
			if err != nil {
				return err
			}
			recs := h.Records
			if len(args) == 1 {
				recs = filterHistory(recs, args[0])
			}
			if f.json {
				return writeJSON(s.out, recs)
			}
			tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tCOMMIT\tPLAN\tRESULT\tDURATION\tERROR")
			for _, r := range recs {
				result, errMsg := r.Result, r.Error
				if len(args) == 1 {
					for _, o := range r.Services {
						if o.Service == args[0] {
							result, errMsg = o.Result, o.Error
						}
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.Local().Format(time.DateTime), orDash(shortCommit(r.Commit)),
					orDash(shortHash(r.PlanHash)), result, r.Duration.Round(time.Millisecond), errMsg)
			}
			return tw.Flush()
		},
	}
	addSocketFlag(cmd, &f.socket)
	cmd.Flags().BoolVar(&f.json, "json", false, "print the records as a JSON array")
	return cmd
}

// filterHistory keeps the records that name the service.
func filterHistory(recs []registry.HistoryRecord, service string) []registry.HistoryRecord {
	var out []registry.HistoryRecord
	for _, r := range recs {
		for _, o := range r.Services {
			if o.Service == service {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

func newRetryCmd(s streams) *cobra.Command {
	var socket string
	cmd := &cobra.Command{
		Use:   "retry SERVICE",
		Short: "Lift a service's quarantine so the agent tries it again",
		Long: `Retry lifts the quarantine of SERVICE: the definition that failed repeatedly
is tried again at the next reconcile (run mcp sync to reconcile now). A push
that changes the service lifts the quarantine as well.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := agentClient(socket).Retry(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if res.Lifted == 0 {
				fmt.Fprintf(s.out, "%s is not quarantined\n", res.Service)
				return nil
			}
			fmt.Fprintf(s.out, "quarantine of %s lifted; it is tried again at the next reconcile (mcp sync to run it now)\n", res.Service)
			return nil
		},
	}
	addSocketFlag(cmd, &socket)
	return cmd
}
