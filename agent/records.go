package agent

import (
	"context"
	"fmt"
	"slices"
	gosync "sync"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/executor/dns"
	"metacircular.net/mcp/spec"
	gitsync "metacircular.net/mcp/sync"
)

// revisionReader reads a fetched commit from the agent's Git cache.
type revisionReader interface {
	Revision(ctx context.Context, h gitsync.Hash) (*gitsync.Revision, error)
}

// recordOptions are the executor options for DNS records: none without
// [[dns]] zones (the node then plans no record steps), otherwise record
// steps whose values are this node's addresses in mcp.toml at the commit
// being applied, read from the Git cache.
func recordOptions(zones []dns.Zone, src revisionReader, node string) []executor.Option {
	if len(zones) == 0 {
		return nil
	}
	return []executor.Option{executor.WithRecords(zones, nodeAddresses(src, node))}
}

// nodeAddresses reads node's addresses from mcp.toml at a commit. A commit
// never changes, so each is read once.
func nodeAddresses(src revisionReader, node string) executor.AddressFunc {
	var mu gosync.Mutex
	cache := map[string][]string{}
	return func(ctx context.Context, commit string) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		if addrs, ok := cache[commit]; ok {
			return slices.Clone(addrs), nil
		}
		h, err := gitsync.ParseHash(commit)
		if err != nil {
			return nil, err
		}
		rev, err := src.Revision(ctx, h)
		if err != nil {
			return nil, fmt.Errorf("read commit %s: %w", short(commit), err)
		}
		repo, err := spec.Load(rev.Tree)
		if err != nil {
			return nil, fmt.Errorf("read commit %s: %w", short(commit), err)
		}
		n, ok := repo.Platform.Node(node)
		if !ok {
			return nil, fmt.Errorf("node %q is not declared in mcp.toml [[nodes]] at commit %s", node, short(commit))
		}
		cache[commit] = slices.Clone(n.Addresses)
		return n.Addresses, nil
	}
}

// recordStatus adds each service's DNS records, as mcp recorded writing
// them (the converge pass keeps the server in line with that record).
func (a *Agent) recordStatus(ctx context.Context, services []api.ServiceStatus) {
	sets, err := executor.ReadRecordSets(ctx, a.reg)
	if err != nil {
		a.log.Warn("status: DNS records", "err", err)
		return
	}
	for i := range services {
		for _, set := range sets {
			if !slices.Contains(set.Services, services[i].Name) {
				continue
			}
			var rs []api.RecordStatus
			for _, r := range set.Records {
				j := slices.IndexFunc(rs, func(s api.RecordStatus) bool { return s.Type == r.Type })
				if j < 0 {
					rs = append(rs, api.RecordStatus{Name: set.Hostname, Type: r.Type, TTL: r.TTL, Zone: set.Zone})
					j = len(rs) - 1
				}
				rs[j].Values = append(rs[j].Values, r.Value)
			}
			services[i].Records = append(services[i].Records, rs...)
		}
	}
}
