package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"metacircular.net/mcp/api"
)

// renderRollout prints what the agent's continuous watch knows: each
// running component's health, the services held back by `after` and what
// they wait for, and the recent drift with whether it was repaired. Each
// part only when there is something to show.
func renderRollout(w io.Writer, services []api.ServiceStatus) error {
	pal := paletteFor(w)
	ew := &errWriter{w: w}
	if slices.ContainsFunc(services, func(s api.ServiceStatus) bool {
		return slices.ContainsFunc(s.Components, func(c api.ComponentStatus) bool { return c.Health != nil })
	}) {
		ew.printf("\n")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		tew := &errWriter{w: tw}
		tew.printf("SERVICE\tCOMPONENT\t%s\tSINCE\tCHECKS\tLAST ERROR\n", pal.paint(sgrPlain, "HEALTH"))
		for _, s := range services {
			for _, c := range s.Components {
				if c.Health == nil {
					continue
				}
				since := "-"
				if !c.Health.Since.IsZero() {
					since = formatTime(c.Health.Since)
				}
				tew.printf("%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, c.Name, pal.paint(healthColour(c.Health.State), c.Health.State),
					since, orDash(strings.Join(c.Health.Checks, "; ")), orDash(c.Health.LastError))
			}
		}
		if tew.err == nil {
			tew.err = tw.Flush()
		}
		if tew.err != nil {
			return tew.err
		}
	}
	for _, s := range services {
		if s.Waiting != "" {
			ew.printf("\n%s waits for %s\n", s.Name, s.Waiting)
		}
	}
	if ew.err != nil {
		return ew.err
	}
	if !slices.ContainsFunc(services, func(s api.ServiceStatus) bool { return len(s.Drift) > 0 }) {
		return nil
	}
	ew.printf("\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	tew := &errWriter{w: tw}
	tew.printf("SERVICE\tSEEN\tRESOURCE\tDRIFT\t%s\n", pal.paint(sgrPlain, "REPAIRED"))
	for _, s := range services {
		for _, d := range s.Drift {
			repaired := pal.paint(sgrGreen, "repaired")
			if !d.Repaired {
				repaired = pal.paint(sgrYellow, "no")
			}
			tew.printf("%s\t%s\t%s\t%s\t%s\n", s.Name, formatTime(d.Time), d.Resource, d.What, repaired)
		}
	}
	if tew.err == nil {
		tew.err = tw.Flush()
	}
	if ew.err != nil {
		return ew.err
	}
	return tew.err
}

func healthColour(state string) string {
	switch state {
	case "healthy":
		return sgrGreen
	case "unhealthy":
		return sgrRed
	case "starting":
		return sgrYellow
	}
	return sgrPlain
}

// driftLines is the drift the agent reports that is not repaired yet, for
// `mcp plan --socket`: drift is repaired at apply time by the converge pass
// and is not part of the plan or its hash.
func driftLines(st api.Status) []string {
	var out []string
	for _, s := range st.Services {
		for _, d := range s.Drift {
			if !d.Repaired {
				out = append(out, fmt.Sprintf("%s: %s: %s", s.Name, d.Resource, d.What))
			}
		}
		for _, c := range s.Components {
			if c.Health != nil && c.Health.State == "unhealthy" {
				out = append(out, fmt.Sprintf("%s: %s is unhealthy: %s", s.Name, c.Name, orDash(c.Health.LastError)))
			}
		}
		if s.Waiting != "" {
			out = append(out, fmt.Sprintf("%s: waits for %s", s.Name, s.Waiting))
		}
	}
	return out
}

// renewalLines are the certificate renewals that fall due by now: the
// agent renews them at apply time (not a plan step, so not in the hash),
// and an operator previewing a plan should see them coming.
func renewalLines(st api.Status, now time.Time) []string {
	var out []string
	for _, s := range st.Services {
		for _, c := range s.Certs {
			if c.RenewAt.IsZero() || now.Before(c.RenewAt) || len(c.Files) == 0 {
				continue
			}
			out = append(out, fmt.Sprintf("%s: renew cert %s: expires %s, inside its renewal window since %s",
				s.Name, c.Hostname, expiry(c.NotAfter, now), c.RenewAt.UTC().Format(time.DateOnly)))
		}
	}
	return out
}

// printDrift adds to `mcp plan --socket` the drift the agent sees and has
// not repaired yet. Drift is repaired at apply time by the converge pass,
// not by plan steps, so it is shown after the plan and stays out of the
// plan and its hash (which only covers the recorded state). A status that
// cannot be read only costs the section.
func printDrift(cmd interface{ Context() context.Context }, s streams, socket string) {
	st, err := api.NewClient(socket).Status(cmd.Context())
	if err != nil {
		fmt.Fprintf(s.err, "drift: the agent's status could not be read: %v\n", err)
		return
	}
	if lines := driftLines(st); len(lines) > 0 {
		fmt.Fprintln(s.out, "\nDrift the agent sees (repaired by its converge pass, not by this plan; not in the plan hash):")
		for _, l := range lines {
			fmt.Fprintln(s.out, "  ! "+l)
		}
	}
	if lines := renewalLines(st, time.Now()); len(lines) > 0 {
		fmt.Fprintln(s.out, "\nDue at apply time (renewed by the agent's loop; not in the plan hash):")
		for _, l := range lines {
			fmt.Fprintln(s.out, "  ~ "+l)
		}
	}
}
