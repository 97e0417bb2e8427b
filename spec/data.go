package spec

// This file holds what a definition says about the service's data on the
// host: the [data] table. The data of a service lives in /srv/<service> on
// the node that runs it and does not follow the service when its node
// changes; the agent on the new node holds the first deploy until the
// directory is there (executor/datahold.go), unless the definition says
// the service may start without it.

// DataDir is the host directory holding a service's data: the host side
// of its conventional volume, and the root every declared volume lies in.
func DataDir(service string) string { return defaultVolume(service).Host }

// parseData reads the [data] table:
//
//	[data]
//	may_start_empty = true   # a node without /srv/<service> may start it empty
//
// The resolved field is left out of the JSON when false, so existing
// definitions keep their spec hash.
func (ps *parsed) parseData(root *table) {
	d, ok := root.sub("data")
	if !ok {
		return
	}
	if v, ok := d.boolean("may_start_empty"); ok {
		ps.svc.MayStartEmpty = v
	}
	d.done()
}
