package testenv

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"metacircular.net/mcp/internal/ociimage"
)

// Image is a test image pushed to a registry.
type Image struct {
	Ref     string // host:port/repo:tag
	Digest  string // manifest digest, sha256:...
	Version string // what GET / answers with
}

// ImageOption changes the image TestImage builds.
type ImageOption func(*imageConfig)

type imageConfig struct {
	version  string
	env      []string
	user     string
	password string
}

// WithVersion sets the version the server reports (default: the tag).
func WithVersion(v string) ImageOption { return func(c *imageConfig) { c.version = v } }

// WithEnv adds KEY=VALUE pairs to the image config's Env.
func WithEnv(kv ...string) ImageOption {
	return func(c *imageConfig) { c.env = append(c.env, kv...) }
}

// WithCrash makes a bad version that exits 1 as soon as it starts.
func WithCrash() ImageOption { return WithEnv("HELLO_MODE=crash") }

// WithNoListen makes a bad version that runs but never listens.
func WithNoListen() ImageOption { return WithEnv("HELLO_MODE=nolisten") }

// WithUnhealthy makes a version that serves / but fails /healthz (503).
func WithUnhealthy() ImageOption { return WithEnv("HELLO_MODE=unhealthy") }

// WithStartDelay makes the server wait d before it listens.
func WithStartDelay(d time.Duration) ImageOption {
	return WithEnv("HELLO_START_DELAY=" + d.String())
}

// WithCredentials pushes with HTTP basic auth.
func WithCredentials(user, password string) ImageOption {
	return func(c *imageConfig) { c.user, c.password = user, password }
}

// TestImage builds the hello server (see internal/hello/main.go) into a one-layer OCI
// image, pushes it to registry as repo:tag, and returns its reference
// host:port/repo:tag. The image's Env carries VERSION=<tag> (or
// WithVersion), so different tags have different digests, while the same
// tag and options always give the same digest (the build is reproducible),
// which makes pushing it twice harmless.
func TestImage(t testing.TB, registry, repo, tag string, opts ...ImageOption) string {
	t.Helper()
	return BuildImage(t, registry, repo, tag, opts...).Ref
}

// BuildImage is TestImage returning the digest and version too.
func BuildImage(t testing.TB, registry, repo, tag string, opts ...ImageOption) Image {
	t.Helper()
	cfg := imageConfig{version: tag}
	for _, o := range opts {
		o(&cfg)
	}
	layer, err := helloLayer(t.Context())
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	img, err := pushImage(t.Context(), registry, repo, tag, layer, cfg)
	if err != nil {
		t.Fatalf("testenv: push %s/%s:%s: %v", registry, repo, tag, err)
	}
	return img
}

// helloPackage is the import path of the test workload (see
// internal/hello/main.go).
const helloPackage = "metacircular.net/mcp/internal/hello"

var hello struct {
	once  sync.Once
	layer *ociimage.Layer
	err   error
}

// helloLayer builds the hello binary once per test binary and packs it as
// an image layer; it is kept in memory, so nothing is left on disk.
func helloLayer(ctx context.Context) (*ociimage.Layer, error) {
	hello.once.Do(func() {
		bin, err := ociimage.BuildGo(ctx, helloPackage)
		if err != nil {
			hello.err = fmt.Errorf("build the hello test server: %w", err)
			return
		}
		hello.layer, hello.err = ociimage.BinaryLayer("hello", bin)
	})
	return hello.layer, hello.err
}

func pushImage(ctx context.Context, registry, repo, tag string, layer *ociimage.Layer, cfg imageConfig) (Image, error) {
	img, err := ociimage.Push(ctx, ociimage.Target{
		Registry: registry, Repo: repo, Tag: tag, PlainHTTP: true,
		Username: cfg.user, Password: cfg.password,
	}, layer, ociimage.Config{
		Entrypoint: []string{"/hello"},
		Env:        append([]string{"PATH=/", "VERSION=" + cfg.version}, cfg.env...),
		StopSignal: "SIGTERM",
		Labels:     map[string]string{ocispec.AnnotationVersion: cfg.version},
	})
	if err != nil {
		return Image{}, err
	}
	return Image{Ref: img.Ref, Digest: img.Digest, Version: cfg.version}, nil
}
