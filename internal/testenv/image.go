package testenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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

// TestImage builds the hello server (see hello/main.go) into a one-layer OCI
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

type layerBlob struct {
	gz     []byte // the layer as pushed (tar+gzip)
	diffID digest.Digest
}

var hello struct {
	once  sync.Once
	layer *layerBlob
	err   error
}

// helloLayer builds the hello binary once per test binary and packs it as
// an image layer; it is kept in memory, so nothing is left on disk.
func helloLayer(ctx context.Context) (*layerBlob, error) {
	hello.once.Do(func() {
		hello.layer, hello.err = buildHelloLayer(ctx)
	})
	return hello.layer, hello.err
}

func buildHelloLayer(ctx context.Context) (*layerBlob, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("the go command is needed to build the test image: %w", err)
	}
	dir, err := os.MkdirTemp("", "mcptest-hello-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "hello")
	// Static and reproducible: no cgo, no paths, no VCS stamp, so the same
	// source always yields the same layer digest.
	cmd := exec.CommandContext(ctx, gobin, "build", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w", "-o", out, "metacircular.net/mcp/internal/testenv/hello")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the hello test server: %v\n%s", err, b)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}

	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	epoch := time.Unix(0, 0)
	for _, h := range []*tar.Header{
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: epoch},
		{Name: "hello", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin)), ModTime: epoch},
	} {
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(bin); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	var gzBuf bytes.Buffer
	zw := gzip.NewWriter(&gzBuf) // no name or mtime in the header: reproducible
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return &layerBlob{gz: gzBuf.Bytes(), diffID: digest.FromBytes(tarBuf.Bytes())}, nil
}

func pushImage(ctx context.Context, registry, repo, tag string, layer *layerBlob, cfg imageConfig) (Image, error) {
	env := append([]string{"PATH=/", "VERSION=" + cfg.version}, cfg.env...)
	config, err := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		Config: ocispec.ImageConfig{
			Entrypoint: []string{"/hello"},
			Env:        env,
			StopSignal: "SIGTERM",
			Labels:     map[string]string{ocispec.AnnotationVersion: cfg.version},
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.diffID}},
	})
	if err != nil {
		return Image{}, err
	}
	configDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}
	layerDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(layer.gz), Size: int64(len(layer.gz))}
	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    []ocispec.Descriptor{layerDesc},
	})
	if err != nil {
		return Image{}, err
	}

	p := &pusher{
		base: "http://" + registry + "/v2/" + repo,
		user: cfg.user, pass: cfg.password,
		hc: &http.Client{Timeout: 2 * time.Minute},
	}
	if err := p.blob(ctx, layerDesc.Digest, layer.gz); err != nil {
		return Image{}, fmt.Errorf("layer: %w", err)
	}
	if err := p.blob(ctx, configDesc.Digest, config); err != nil {
		return Image{}, fmt.Errorf("config: %w", err)
	}
	dgst := digest.FromBytes(manifest)
	resp, err := p.do(ctx, http.MethodPut, p.base+"/manifests/"+tag, ocispec.MediaTypeImageManifest, manifest)
	if err != nil {
		return Image{}, fmt.Errorf("manifest: %w", err)
	}
	if err := expect(resp, http.StatusCreated); err != nil {
		return Image{}, fmt.Errorf("manifest: %w", err)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != dgst.String() {
		return Image{}, fmt.Errorf("manifest: registry stored digest %s, expected %s", got, dgst)
	}
	return Image{Ref: registry + "/" + repo + ":" + tag, Digest: dgst.String(), Version: cfg.version}, nil
}

// pusher speaks the Distribution API's push side with plain net/http.
type pusher struct {
	base       string // http://host:port/v2/<repo>
	user, pass string
	hc         *http.Client
}

func (p *pusher) do(ctx context.Context, method, u, contentType string, body []byte) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if p.user != "" {
		req.SetBasicAuth(p.user, p.pass)
	}
	return p.hc.Do(req)
}

// blob uploads one blob unless the registry has it already: a monolithic
// upload (POST to open a session, PUT with the digest to finish it).
func (p *pusher) blob(ctx context.Context, d digest.Digest, data []byte) error {
	resp, err := p.do(ctx, http.MethodHead, p.base+"/blobs/"+d.String(), "", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	resp, err = p.do(ctx, http.MethodPost, p.base+"/blobs/uploads/", "", nil)
	if err != nil {
		return err
	}
	if err := expect(resp, http.StatusAccepted); err != nil {
		return fmt.Errorf("start upload: %w", err)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		return fmt.Errorf("upload location: %w", err)
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	resp, err = p.do(ctx, http.MethodPut, loc.String(), "application/octet-stream", data)
	if err != nil {
		return err
	}
	if err := expect(resp, http.StatusCreated); err != nil {
		return fmt.Errorf("finish upload: %w", err)
	}
	return nil
}

// expect closes resp and returns an error naming the status and the
// registry's message unless the status is want.
func expect(resp *http.Response, want int) error {
	defer resp.Body.Close()
	if resp.StatusCode == want {
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return fmt.Errorf("%s %s: %s: %s", resp.Request.Method, redact(resp.Request.URL), resp.Status, bytes.TrimSpace(msg))
}

// redact drops the query (upload state) from URLs in errors.
func redact(u *url.URL) string {
	c := *u
	c.RawQuery = ""
	return c.String()
}
