package agent

import (
	"fmt"

	"metacircular.net/mcp/registry"
	gitsync "metacircular.net/mcp/sync"
	"metacircular.net/mcp/trust"
)

// syncOptions are the gitsync options that come from the [trust] table: a
// verifier for any policy but off. The all policy reads the applied
// commit from the registry, where it moves only after a commit was
// applied.
func (c *Config) syncOptions(reg *registry.Registry) ([]gitsync.Option, error) {
	v, err := trust.New(trust.Config{
		Policy:             c.Trust.Policy,
		AllowedSignersFile: c.Trust.AllowedSignersFile,
		KeyringFile:        c.Trust.KeyringFile,
	}, reg.AppliedCommit)
	if err != nil {
		return nil, fmt.Errorf("%s: trust: %w", c.File, err)
	}
	if v == nil {
		return nil, nil
	}
	return []gitsync.Option{gitsync.WithVerifier(v)}, nil
}
