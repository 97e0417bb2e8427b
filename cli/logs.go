package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"metacircular.net/mcp/api"
)

func newLogsCmd(s streams) *cobra.Command {
	var (
		socket string
		follow bool
		lines  int
	)
	cmd := &cobra.Command{
		Use:   "logs SERVICE [COMPONENT]",
		Short: "Print a component's output (stdout and stderr)",
		Long: `Logs prints what a component's container wrote to stdout and stderr, from
its log file on this node. COMPONENT defaults to the service's only (or
first) component. With -f, keeps printing new lines until interrupted
(Ctrl-C), following the file across rotations.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c := agentClient(socket)
			service := args[0]
			var component string
			if len(args) == 2 {
				component = args[1]
			} else {
				st, err := c.ServiceStatus(ctx, service)
				if err != nil {
					return err
				}
				svc, _ := st.Service(service)
				if len(svc.Components) == 0 {
					return fmt.Errorf("service %q has no components on node %s (state %s): nothing has logs", service, st.Node, svc.State)
				}
				component = svc.Components[0].Name
			}
			if lines < -1 {
				return fmt.Errorf("-n %d: give a number of lines, or -1 for all", lines)
			}
			rc, err := c.Logs(ctx, service, component, api.LogOptions{Lines: lines, Follow: follow})
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(s.out, rc)
			switch {
			case follow && ctx.Err() != nil:
				return nil // interrupting a follow is how it ends
			case err != nil:
				return fmt.Errorf("read logs of %s/%s: %w", service, component, err)
			case follow:
				return fmt.Errorf("the agent ended the log stream of %s/%s (is it shutting down?)", service, component)
			}
			return nil
		},
	}
	addSocketFlag(cmd, &socket)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines until interrupted")
	cmd.Flags().IntVarP(&lines, "lines", "n", -1, "print only the last N lines (-1: all)")
	return cmd
}
