package agent

import (
	"context"
	gosync "sync"

	"github.com/BurntSushi/toml"

	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/spec"
	gitsync "metacircular.net/mcp/sync"
)

// historyReader walks a file's versions back through the Git cache; the
// Git follower (gitsync.Source) has it.
type historyReader interface {
	FileVersions(ctx context.Context, head gitsync.Hash, path string, fn func(gitsync.Hash, []byte) bool) error
}

// dataHoldOptions turns on the /srv hold (executor/datahold.go) when the
// agent's source can read the repository's history, which is how the
// agent tells a service that moved here (its data is on another node)
// from one that is new to the platform (it may start empty).
func dataHoldOptions(src Source, node string) []executor.Option {
	h, ok := src.(historyReader)
	if !ok {
		return nil
	}
	return []executor.Option{executor.WithDataOrigin(dataOrigin(h, node))}
}

// dataOrigin answers "which other node did this service's definition name
// before?" from the definition file's history, newest version first: the
// repository is the one record every node shares of where a service ran,
// and it survives a node's state dir, its status notes being off, and
// the old node being down. The history is walked only for a service about
// to start here for the first time without its data directory, and the
// answer is kept for the commit being applied (a held service asks again
// at every reconcile).
func dataOrigin(h historyReader, node string) executor.DataOrigin {
	var mu gosync.Mutex
	var cachedFor string
	cache := map[string]string{} // definition file → other node, at cachedFor
	return func(ctx context.Context, svc spec.Service, commit string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if commit != cachedFor {
			clear(cache)
			cachedFor = commit
		}
		if from, ok := cache[svc.File]; ok {
			return from, nil
		}
		head, err := gitsync.ParseHash(commit)
		if err != nil {
			return "", err
		}
		from := ""
		err = h.FileVersions(ctx, head, svc.File, func(_ gitsync.Hash, data []byte) bool {
			var def struct {
				Node string `toml:"node"`
			}
			// A version that does not parse says nothing about where the
			// service ran (it was never deployed as such): skip it.
			if _, err := toml.Decode(string(data), &def); err != nil || def.Node == "" || def.Node == node {
				return true
			}
			from = def.Node
			return false
		})
		if err != nil {
			return "", err
		}
		cache[svc.File] = from
		return from, nil
	}
}
