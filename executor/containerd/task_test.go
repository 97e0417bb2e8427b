package containerd

import (
	"testing"

	"github.com/containerd/containerd/v2/client"
)

// loadTask returns the task of container id in d's namespace.
func loadTask(t *testing.T, d *Driver, id string) (client.Task, error) {
	t.Helper()
	ctx := d.nsCtx(t.Context())
	c, err := d.Client().LoadContainer(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.Task(ctx, nil)
}
