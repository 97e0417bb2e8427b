package cli

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"metacircular.net/mcp/api"
)

func newPsCmd(s streams) *cobra.Command {
	var (
		socket string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List the containers the agent manages",
		Long: `Ps lists the containers mcp runs on this node, as the container runtime
reports them: id, service, component, slot, version, status and process id.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cs, err := agentClient(socket).Containers(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if cs == nil {
					cs = []api.Container{}
				}
				return writeJSON(s.out, api.ContainerList{Containers: cs})
			}
			return renderContainers(s.out, cs)
		},
	}
	addSocketFlag(cmd, &socket)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the container list as JSON")
	return cmd
}

func renderContainers(w io.Writer, cs []api.Container) error {
	if len(cs) == 0 {
		_, err := fmt.Fprintln(w, "no containers")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	ew := &errWriter{w: tw}
	ew.printf("ID\tSERVICE\tCOMPONENT\tSLOT\tVERSION\tSTATUS\tPID\n")
	for _, c := range cs {
		pid := "-"
		if c.PID > 0 {
			pid = strconv.Itoa(c.PID)
		}
		ew.printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Service, c.Component, orDash(c.Slot), orDash(c.Version), c.Status, pid)
	}
	if ew.err != nil {
		return ew.err
	}
	return tw.Flush()
}
