package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
)

func TestMain(m *testing.M) { Main(m) }

// The reference path: an image built and pushed here is pulled and run by
// the raw containerd client and answers over HTTP with its version.
func TestRawRunServesImage(t *testing.T) {
	reg := Registry(t)
	c, ctx := ContainerdClient(t)
	ref := TestImage(t, reg, UniqueRepo("testenv/hello"), "v1")

	port := FreePort(t)
	stop, err := RawRun(ctx, c, ref, port)
	if err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	body, err := WaitHTTP(waitCtx, base+"/", "version=v1")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("GET / = %q", body)
	if _, err := WaitHTTP(waitCtx, base+"/healthz", "ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := WaitHTTP(waitCtx, base+"/env/PORT", strconv.Itoa(port)); err != nil {
		t.Fatal(err)
	}
	if err := stop(ctx); err != nil {
		t.Fatal(err)
	}
	ctrs, err := c.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ctrs) != 0 {
		t.Fatalf("%d containers left after stop", len(ctrs))
	}
	if resp, err := http.Get(base + "/"); err == nil {
		resp.Body.Close()
		t.Fatal("server still answers after stop")
	}
}

func TestImageDigests(t *testing.T) {
	reg := Registry(t)
	repo := UniqueRepo("testenv/digests")
	v1 := BuildImage(t, reg, repo, "v1")
	v2 := BuildImage(t, reg, repo, "v2")
	again := BuildImage(t, reg, repo, "v1")
	bad := BuildImage(t, reg, repo, "v1-crash", WithCrash())
	if v1.Digest == v2.Digest || v1.Digest == bad.Digest {
		t.Errorf("different images share a digest: v1 %s, v2 %s, crash %s", v1.Digest, v2.Digest, bad.Digest)
	}
	if v1.Digest != again.Digest {
		t.Errorf("pushing v1 twice gave %s then %s; the build should be reproducible", v1.Digest, again.Digest)
	}
	if want := reg + "/" + repo + ":v2"; v2.Ref != want {
		t.Errorf("ref = %q, want %q", v2.Ref, want)
	}
	// The registry serves the manifest under the digest we computed.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodHead, "http://"+reg+"/v2/"+repo+"/manifests/"+v2.Digest, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD manifest by digest: %s", resp.Status)
	}
}

func TestRegistryWithAuth(t *testing.T) {
	reg := RegistryWithAuth(t, "alice", "s3cret")
	repo := UniqueRepo("testenv/auth")

	layer, err := helloLayer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pushImage(t.Context(), reg, repo, "v1", layer, imageConfig{version: "v1"}); err == nil ||
		!strings.Contains(err.Error(), "401") {
		t.Fatalf("push without credentials: err = %v, want a 401", err)
	}
	ref := TestImage(t, reg, repo, "v1", WithCredentials("alice", "s3cret"))

	c, ctx := ContainerdClient(t)
	if _, err := c.Pull(ctx, ref, client.WithResolver(Resolver("alice", "wrong"))); err == nil {
		t.Fatal("pull with a wrong password succeeded")
	} else {
		t.Logf("wrong password: %v", err)
	}
	img, err := c.Pull(ctx, ref, client.WithPullUnpack, client.WithResolver(Resolver("alice", "s3cret")))
	if err != nil {
		t.Fatalf("pull with the right password: %v", err)
	}
	if img.Name() != ref {
		t.Errorf("pulled %q, want %q", img.Name(), ref)
	}
}

// Everything a test leaves in its namespace is gone once it ends.
func TestNamespaceCleanup(t *testing.T) {
	address, _ := Containerd(t) // skips here if there is no containerd
	reg := Registry(t)
	ref := TestImage(t, reg, UniqueRepo("testenv/cleanup"), "v1")
	var ns string
	t.Run("leave things behind", func(t *testing.T) {
		c, ctx := ContainerdClient(t)
		ns, _ = namespaces.Namespace(ctx)
		// A running container, its image, content and snapshots, all left
		// for the cleanup.
		if _, err := RawRun(ctx, c, ref, FreePort(t)); err != nil {
			t.Fatal(err)
		}
	})
	if ns == "" {
		t.Fatal("subtest did not run")
	}
	c, err := client.New(address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	list, err := c.NamespaceService().List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(list, ns) {
		t.Fatalf("namespace %s (on %s) still exists after the test ended", ns, address)
	}
}

// A private daemon survives a restart with its containers running, and
// keeps runc's state in its own runc root.
func TestStartContainerdRestart(t *testing.T) {
	reg := Registry(t)
	ref := TestImage(t, reg, UniqueRepo("testenv/restart"), "v1")
	d := StartContainerd(t)
	c, err := client.New(d.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := namespaces.WithNamespace(t.Context(), "restart-test")

	port := FreePort(t)
	stop, err := RawRun(ctx, c, ref, port)
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := WaitHTTP(wctx, url, "version=v1"); err != nil {
		t.Fatal(err)
	}
	states, _ := filepath.Glob(filepath.Join(d.RuncRoot, "restart-test", "*", "state.json"))
	if len(states) != 1 {
		t.Errorf("runc state under %s: %v, want one container", d.RuncRoot, states)
	}

	if err := d.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := WaitHTTP(wctx, url, "version=v1"); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if err := stop(ctx); err != nil {
		t.Fatalf("stop after restart: %v", err)
	}
	// Left for Close: an image and a container that it must tear down.
	if _, err := RawRun(ctx, c, ref, FreePort(t)); err != nil {
		t.Fatal(err)
	}
}

// The hello program itself, run as a plain process: needs only Go.
func TestHelloProgram(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "hello")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, helloPackage)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}

	t.Run("serves and stops on SIGTERM", func(t *testing.T) {
		p1, p2 := FreePort(t), FreePort(t)
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "VERSION=v7", "PORT="+strconv.Itoa(p1), "PORT_ADMIN="+strconv.Itoa(p2))
		var out strings.Builder
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		for _, p := range []int{p1, p2} {
			if _, err := WaitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/", p), "version=v7 port="+strconv.Itoa(p)); err != nil {
				_ = cmd.Process.Kill()
				t.Fatal(err)
			}
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
		if !strings.Contains(out.String(), "GET / 200 version=v7") {
			t.Errorf("no request log line in stdout:\n%s", out.String())
		}
	})

	t.Run("crash", func(t *testing.T) {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "HELLO_MODE=crash", "PORT="+strconv.Itoa(FreePort(t)))
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("crash mode: %v, want exit status 1", err)
		}
	})

	t.Run("unhealthy", func(t *testing.T) {
		p := FreePort(t)
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "HELLO_MODE=unhealthy", "PORT="+strconv.Itoa(p))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		if _, err := WaitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/", p), "version="); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", p))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("/healthz = %s, want 503", resp.Status)
		}
	})
}
