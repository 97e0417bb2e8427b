package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"metacircular.net/mcp/api"
)

// renderRecords prints the DNS records table when any service has
// records: which names mcp published, with which values.
func renderRecords(w io.Writer, services []api.ServiceStatus) error {
	if !slices.ContainsFunc(services, func(s api.ServiceStatus) bool { return len(s.Records) > 0 }) {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	ew := &errWriter{w: tw}
	ew.printf("SERVICE\tNAME\tTYPE\tVALUES\tTTL\n")
	for _, svc := range services {
		for _, r := range svc.Records {
			ew.printf("%s\t%s\t%s\t%s\t%d\n", svc.Name, r.Name, r.Type, strings.Join(r.Values, ", "), r.TTL)
		}
	}
	if ew.err == nil {
		ew.err = tw.Flush()
	}
	return ew.err
}
