package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// Resolver returns an image resolver that talks plain HTTP to registries on
// loopback (the test registries) and HTTPS elsewhere, with basic auth when
// user is not empty.
func Resolver(user, password string) remotes.Resolver {
	ropts := []docker.RegistryOpt{docker.WithPlainHTTP(docker.MatchLocalhost)}
	if user != "" {
		ropts = append(ropts, docker.WithAuthorizer(docker.NewDockerAuthorizer(
			docker.WithAuthCreds(func(string) (string, string, error) { return user, password, nil }),
		)))
	}
	return docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(ropts...)})
}

// RawRun is what a deployer does at the very least, with the raw containerd
// client and nothing else: pull and unpack ref, create a container with
// host networking and PORT=port, and start it. It is the reference that
// benchmarks compare mcp against, and a check that test images run. ctx
// must carry a containerd namespace. stop kills the task (SIGTERM, then
// SIGKILL after 10s) and removes the task, the container and its snapshot;
// the image stays until the namespace is cleaned.
func RawRun(ctx context.Context, c *client.Client, ref string, port int) (stop func(context.Context) error, err error) {
	img, err := c.Pull(ctx, ref, client.WithPullUnpack, client.WithResolver(Resolver("", "")))
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	id := "raw-" + RandomID(6)
	ctr, err := c.NewContainer(ctx, id,
		client.WithImage(img),
		client.WithNewSnapshot(id, img),
		client.WithNewSpec(
			oci.WithImageConfig(img),
			oci.WithHostNamespace(specs.NetworkNamespace),
			oci.WithHostHostsFile,
			oci.WithHostResolvconf,
			oci.WithEnv([]string{"PORT=" + strconv.Itoa(port)}),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("create container for %s: %w", ref, err)
	}
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		_ = ctr.Delete(context.WithoutCancel(ctx), client.WithSnapshotCleanup)
		return nil, fmt.Errorf("create task for %s: %w", ref, err)
	}
	exited, err := task.Wait(ctx)
	if err == nil {
		err = task.Start(ctx)
	}
	if err != nil {
		_, _ = task.Delete(context.WithoutCancel(ctx), client.WithProcessKill)
		_ = ctr.Delete(context.WithoutCancel(ctx), client.WithSnapshotCleanup)
		return nil, fmt.Errorf("start %s: %w", ref, err)
	}
	return func(ctx context.Context) error {
		var errs []error
		if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("kill: %w", err))
		}
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = task.Kill(ctx, syscall.SIGKILL)
			<-exited
		case <-ctx.Done():
			errs = append(errs, ctx.Err())
		}
		if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete task: %w", err))
		}
		if err := ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete container: %w", err))
		}
		if len(errs) > 0 {
			return fmt.Errorf("stop %s (%s): %w", id, ref, errors.Join(errs...))
		}
		return nil
	}, nil
}

// WaitHTTP polls url until it answers 200 with a body containing want, and
// returns that body; it gives up when ctx is done, saying what it last saw.
func WaitHTTP(ctx context.Context, url, want string) (string, error) {
	hc := &http.Client{Timeout: 2 * time.Second}
	var last string // what the server answered last, for the error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return "", err
		}
		resp, err := hc.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			body := string(b)
			if resp.StatusCode == http.StatusOK && strings.Contains(body, want) {
				return body, nil
			}
			last = fmt.Sprintf("%s: %q", resp.Status, body)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("GET %s: no 200 containing %q before %w; last: %s", url, want, ctx.Err(), last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
