package spec

// Repo is what loading a desired-state repository yields. Loading never
// fails because of bad input: problems land in Diagnostics, and a service
// whose file has an error is listed in Invalid (so the planner can leave it
// as deployed) instead of Services.
type Repo struct {
	Platform Platform `json:"platform"`
	// PlatformValid is false when mcp.toml itself has errors; then every
	// service is in Invalid, because none can be resolved.
	PlatformValid bool `json:"platform_valid"`
	// Services are the valid services, sorted by name.
	Services []Service `json:"services"`
	// Invalid are the services whose definitions failed, sorted by name.
	Invalid []Invalid `json:"invalid,omitempty"`
	// Diagnostics holds every error and warning, sorted by file then path.
	Diagnostics Diagnostics `json:"diagnostics,omitempty"`
}

// Invalid is a service whose definition could not be accepted.
type Invalid struct {
	// Name is the service's name: the `name` key when it could be read,
	// otherwise the file's base name without ".toml".
	Name string `json:"name"`
	File string `json:"file"`
	// Node is the `node` key when it could be read, so that an agent knows
	// whether the broken file concerns it. Empty when unknown.
	Node        string      `json:"node,omitempty"`
	Diagnostics Diagnostics `json:"diagnostics"`
}

// ForNode returns the valid services placed on node and the invalid ones
// that are (or may be) placed on it: an invalid file whose node is unknown
// is reported to every node, so no agent silently ignores it.
func (r *Repo) ForNode(node string) ([]Service, []Invalid) {
	var svcs []Service
	for _, s := range r.Services {
		if s.Node == node {
			svcs = append(svcs, s)
		}
	}
	var inv []Invalid
	for _, i := range r.Invalid {
		if i.Node == "" || i.Node == node {
			inv = append(inv, i)
		}
	}
	return svcs, inv
}
