package executor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/spec"
)

// The /srv hold. A service's data lives in /srv/<service> on the node that
// runs it, and nothing moves it when the definition's node changes. The
// container runtime creates missing volume directories, so without a check
// the new node would start the service on an empty directory: a database
// that comes up empty and is then written to is worse than one that does
// not come up. So a service that is not recorded as deployed on this node,
// whose data directory is missing here, and whose definition placed it on
// another node before, is held: no step of it runs until the directory
// exists (the operator moved the data) or the definition sets
// [data] may_start_empty. A service that has never been anywhere else
// starts empty as before, and a service already deployed here is never
// held (its directory was made by its own deploy).

// DataOrigin names the node the definition of svc placed it on before,
// looking back from commit, or "" when it never named another node. It is
// asked only for a service about to be deployed on this node for the
// first time whose data directory is missing.
type DataOrigin func(ctx context.Context, svc spec.Service, commit string) (node string, err error)

// WithDataOrigin turns the /srv hold on; without it a missing data
// directory is created empty, as the runtime always did.
func WithDataOrigin(fn DataOrigin) Option { return func(e *Executor) { e.dataOrigin = fn } }

// WaitingForData is what a held service waits for, as
// ServiceResult.Waiting says it ("<service> waits for ..."): its data
// directory, where it ran before, and the two ways out.
func WaitingForData(service, from string) string {
	return fmt.Sprintf("%s to exist on this node (it ran on node %s before: move the data here, "+
		"or set [data] may_start_empty = true in services/%s.toml to start it empty)", spec.DataDir(service), from, service)
}

// holdForData says what the service of r waits for (WaitingForData) when
// it must wait for its data; it is asked before any of its steps run, so a
// held service has nothing to undo and is left exactly as it was (not
// deployed here). An error is a failure to tell (the directory cannot be
// examined, the history cannot be read).
func (e *Executor) holdForData(ctx context.Context, r *serviceRun, steps []planner.Step) (string, error) {
	if e.dataOrigin == nil || r.desired == nil || !r.desired.Active || r.desired.MayStartEmpty || r.deployed.Spec.Name != "" {
		return "", nil
	}
	starts := false
	for _, st := range steps {
		starts = starts || (st.Kind == planner.KindContainer && st.Action != planner.ActionRemove)
	}
	if !starts {
		return "", nil
	}
	dir := spec.DataDir(r.desired.Name)
	root := e.hostRoot
	if root == "" {
		root = "/"
	}
	switch _, err := os.Stat(filepath.Join(root, dir)); {
	case err == nil:
		return "", nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("check the data directory %s: %w", dir, err)
	}
	from, err := e.dataOrigin(ctx, *r.desired, r.commit)
	if err != nil {
		return "", fmt.Errorf("check where %s ran before: %w", r.desired.Name, err)
	}
	if from == "" {
		return "", nil
	}
	return WaitingForData(r.desired.Name, from), nil
}
