package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"metacircular.net/mcp/api"
)

// renderCerts prints the certificates table when any service has
// certificates: which hostname, from which issuer, until when, and which
// files its consumers read. Files mcp found in place and leaves alone are
// named, since mcp does not renew them.
func renderCerts(w io.Writer, services []api.ServiceStatus, now time.Time) error {
	if !slices.ContainsFunc(services, func(s api.ServiceStatus) bool { return len(s.Certs) > 0 }) {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	ew := &errWriter{w: tw}
	ew.printf("SERVICE\tHOSTNAME\tISSUER\tEXPIRES\tFILES\n")
	for _, svc := range services {
		for _, c := range svc.Certs {
			files := strings.Join(c.Files, ", ")
			if len(c.Foreign) > 0 {
				files += " (not mcp's, left alone: " + strings.Join(c.Foreign, ", ") + ")"
			}
			exp := expiry(c.NotAfter, now)
			if !c.RenewAt.IsZero() && !now.Before(c.RenewAt) && len(c.Files) > 0 {
				exp += ", renewal due"
			}
			ew.printf("%s\t%s\t%s\t%s\t%s\n", svc.Name, c.Hostname, orDash(c.Issuer), exp, orDash(files))
		}
	}
	if ew.err == nil {
		ew.err = tw.Flush()
	}
	return ew.err
}

// expiry shows the date and how far away it is, which is what an operator
// looks for ("does anything expire soon?").
func expiry(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := t.Sub(now)
	switch {
	case d < 0:
		return t.UTC().Format(time.DateOnly) + " (expired)"
	case d < 48*time.Hour:
		return t.UTC().Format(time.DateOnly) + fmt.Sprintf(" (in %dh)", int(d.Hours()))
	default:
		return t.UTC().Format(time.DateOnly) + fmt.Sprintf(" (in %dd)", int(d.Hours()/24))
	}
}
