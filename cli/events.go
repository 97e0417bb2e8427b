package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"metacircular.net/mcp/api"
)

func newEventsCmd(s streams) *cobra.Command {
	var (
		socket  string
		follow  bool
		asJSON  bool
		last    int
		after   uint64
		service string
	)
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Show the node's event history: deploys, failures, drift repairs, restarts",
		Long: `Events prints the agent's bounded event history, oldest first: deploys and
removals, failures (each reported once, not at every retry), invalid
definitions, drift repaired by the converge pass, container restarts and
crash loops, and (with the features that add them) reverts and quarantines.
With -f, keeps printing new events until interrupted (Ctrl-C).

--json prints one JSON object per line (the API's shape: seq, time, kind,
service, component, commit, plan_hash, message), suitable for jq -c.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if last < -1 {
				return fmt.Errorf("-n %d: give a number of events, or -1 for all", last)
			}
			stream, err := agentClient(socket).Events(ctx, api.EventOptions{After: after, Last: last, Follow: follow})
			if err != nil {
				return err
			}
			defer stream.Close()
			pal := paletteFor(s.out)
			for {
				e, err := stream.Next()
				switch {
				case follow && ctx.Err() != nil:
					return nil // interrupting a follow is how it ends
				case errors.Is(err, io.EOF) && follow:
					return fmt.Errorf("the agent ended the event stream (is it shutting down?)")
				case errors.Is(err, io.EOF):
					return nil
				case err != nil:
					return err
				}
				if service != "" && e.Service != service {
					continue
				}
				if asJSON {
					if err := writeJSONLine(s.out, e); err != nil {
						return err
					}
					continue
				}
				if err := renderEvent(s.out, e, pal); err != nil {
					return err
				}
			}
		},
	}
	addSocketFlag(cmd, &socket)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events until interrupted")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each event as one JSON object per line")
	cmd.Flags().IntVarP(&last, "lines", "n", -1, "print only the last N events (-1: all kept)")
	cmd.Flags().Uint64Var(&after, "after", 0, "print only events with a sequence number above this")
	cmd.Flags().StringVar(&service, "service", "", "print only this service's events")
	return cmd
}

// renderEvent prints one event on one line:
// "  12  2026-11-27 09:34:44 UTC  drift  web/web  372b6efd33d1  drift repaired: ...".
// Columns are aligned per line with fixed widths (a follow cannot know
// later widths).
func renderEvent(w io.Writer, e api.Event, pal palette) error {
	who := orDash(e.Service)
	if e.Component != "" && e.Component != e.Service {
		who += "/" + e.Component
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	kind := fmt.Sprintf("%-10s", e.Kind)
	_, err := fmt.Fprintf(tw, "%6d  %s  %s  %-20s  %-12s  %s\n", e.Seq, formatTime(e.Time), pal.paint(eventColour(e.Kind), kind),
		who, orDash(shortCommit(e.Commit)), strings.TrimSpace(e.Message))
	if err != nil {
		return err
	}
	return tw.Flush()
}

// writeJSONLine prints v as one compact JSON line (streams, for jq -c).
func writeJSONLine(w io.Writer, v any) error {
	b, err := jsonMarshal(v)
	if err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}
