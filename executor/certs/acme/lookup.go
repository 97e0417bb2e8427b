package acme

import (
	"context"
	"fmt"
	"strings"

	mdns "github.com/miekg/dns"
)

// lookupTXT asks one server (normally the zone's primary) for the TXT
// records of name, without recursion and over TCP: a large or truncated
// answer then needs no retry, and the CA's resolvers ask the same
// authoritative servers.
func lookupTXT(ctx context.Context, server, name string) ([]string, error) {
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(name), mdns.TypeTXT)
	m.RecursionDesired = false
	cl := &mdns.Client{Net: "tcp"}
	in, _, err := cl.ExchangeContext(ctx, m, server)
	if err != nil {
		return nil, fmt.Errorf("query %s for TXT %s: %w", server, name, err)
	}
	if in.Rcode != mdns.RcodeSuccess && in.Rcode != mdns.RcodeNameError {
		return nil, fmt.Errorf("query %s for TXT %s: %s", server, name, mdns.RcodeToString[in.Rcode])
	}
	var out []string
	for _, rr := range in.Answer {
		if t, ok := rr.(*mdns.TXT); ok {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	return out, nil
}
