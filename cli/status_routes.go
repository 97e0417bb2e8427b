package cli

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"metacircular.net/mcp/api"
)

// renderRoutes prints the routes table when any service has proxy routes:
// where each hostname is served, to which backend, and whether the proxy
// confirmed it when read back.
func renderRoutes(w io.Writer, services []api.ServiceStatus) error {
	if !slices.ContainsFunc(services, func(s api.ServiceStatus) bool { return len(s.Routes) > 0 }) {
		return nil
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	ew := &errWriter{w: tw}
	ew.printf("SERVICE\tCOMPONENT\tLISTENER\tHOSTNAME\tMODE\tBACKEND\tPROXY\n")
	for _, svc := range services {
		for _, r := range svc.Routes {
			proxy := "confirmed"
			if !r.Confirmed {
				proxy = "not confirmed: " + orDash(r.Problem)
			}
			ew.printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\n", svc.Name, r.Component, orDash(r.Listener), orDash(r.Hostname),
				orDash(r.Mode), orDash(r.Backend), proxy)
		}
	}
	if ew.err == nil {
		ew.err = tw.Flush()
	}
	return ew.err
}
