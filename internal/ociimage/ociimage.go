// Package ociimage builds small one-layer OCI images from a static binary
// and pushes them to a registry over the Distribution API, with nothing but
// net/http: no Docker, no BuildKit, no containerd. mcp's tests (through
// internal/testenv) and the demo use it to produce the hello workload.
//
// Builds are reproducible: the same files and config always give the same
// layer, config and manifest digests, so pushing an image twice is harmless
// and two images differ exactly when their inputs do.
package ociimage

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
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Layer is one image layer, kept in memory as pushed (tar+gzip).
type Layer struct {
	gz     []byte
	diffID digest.Digest // digest of the uncompressed tar, for the config
}

// Digest is the layer's blob digest (of the compressed bytes).
func (l *Layer) Digest() digest.Digest { return digest.FromBytes(l.gz) }

// BinaryLayer packs one executable as /name, plus a world-writable /tmp
// (programs expect one, and the image has no other files). Times and
// owners are fixed so the layer depends on name and bin alone.
func BinaryLayer(name string, bin []byte) (*Layer, error) {
	if name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("ociimage: binary name %q must be a plain file name", name)
	}
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	epoch := time.Unix(0, 0)
	for _, h := range []*tar.Header{
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: epoch},
		{Name: name, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin)), ModTime: epoch},
	} {
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("ociimage: tar header %s: %w", h.Name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(bin); err != nil {
				return nil, fmt.Errorf("ociimage: tar %s: %w", h.Name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("ociimage: tar: %w", err)
	}
	var gzBuf bytes.Buffer
	zw := gzip.NewWriter(&gzBuf) // no name or mtime in the header: reproducible
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		return nil, fmt.Errorf("ociimage: gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("ociimage: gzip: %w", err)
	}
	return &Layer{gz: gzBuf.Bytes(), diffID: digest.FromBytes(tarBuf.Bytes())}, nil
}

// BuildGo compiles the Go package pkg (an import path or a ./ path,
// resolved from the current directory's module) into a static Linux binary
// for this machine's architecture and returns it. The build is
// reproducible: no cgo, no file paths, no VCS stamp, stripped.
func BuildGo(ctx context.Context, pkg string) ([]byte, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("ociimage: the go command is needed to build %s: %w", pkg, err)
	}
	dir, err := os.MkdirTemp("", "mcp-ociimage-")
	if err != nil {
		return nil, fmt.Errorf("ociimage: %w", err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "bin")
	cmd := exec.CommandContext(ctx, gobin, "build", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ociimage: go build %s: %w\n%s", pkg, err, b)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("ociimage: %w", err)
	}
	return bin, nil
}

// Config is the part of the image config a caller chooses.
type Config struct {
	Entrypoint []string
	Env        []string          // KEY=VALUE
	Labels     map[string]string // e.g. org.opencontainers.image.version
	StopSignal string            // e.g. SIGTERM; empty leaves it unset
}

// Target says where an image goes.
type Target struct {
	Registry  string // host[:port]
	Repo      string // path in the registry, e.g. demo/hello
	Tag       string
	PlainHTTP bool   // http:// instead of https://
	Username  string // basic auth when set
	Password  string
}

// Ref is host[:port]/repo:tag.
func (t Target) Ref() string { return t.Registry + "/" + t.Repo + ":" + t.Tag }

// Image is what Push pushed.
type Image struct {
	Ref    string // host[:port]/repo:tag
	Digest string // manifest digest, sha256:...
}

// Push writes an image of the one layer and cfg to the target: the blobs
// the registry lacks, then the manifest under the tag. It checks that the
// registry stored the manifest under the digest computed here.
func Push(ctx context.Context, t Target, layer *Layer, cfg Config) (Image, error) {
	config, err := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		Config: ocispec.ImageConfig{
			Entrypoint: cfg.Entrypoint,
			Env:        cfg.Env,
			StopSignal: cfg.StopSignal,
			Labels:     cfg.Labels,
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.diffID}},
	})
	if err != nil {
		return Image{}, fmt.Errorf("ociimage: config: %w", err)
	}
	configDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}
	layerDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: layer.Digest(), Size: int64(len(layer.gz))}
	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    []ocispec.Descriptor{layerDesc},
	})
	if err != nil {
		return Image{}, fmt.Errorf("ociimage: manifest: %w", err)
	}

	scheme := "https://"
	if t.PlainHTTP {
		scheme = "http://"
	}
	p := &pusher{
		base: scheme + t.Registry + "/v2/" + t.Repo,
		user: t.Username, pass: t.Password,
		hc: &http.Client{Timeout: 2 * time.Minute},
	}
	if err := p.blob(ctx, layerDesc.Digest, layer.gz); err != nil {
		return Image{}, fmt.Errorf("ociimage: push %s: layer: %w", t.Ref(), err)
	}
	if err := p.blob(ctx, configDesc.Digest, config); err != nil {
		return Image{}, fmt.Errorf("ociimage: push %s: config: %w", t.Ref(), err)
	}
	dgst := digest.FromBytes(manifest)
	resp, err := p.do(ctx, http.MethodPut, p.base+"/manifests/"+t.Tag, ocispec.MediaTypeImageManifest, manifest)
	if err != nil {
		return Image{}, fmt.Errorf("ociimage: push %s: manifest: %w", t.Ref(), err)
	}
	if err := expect(resp, http.StatusCreated); err != nil {
		return Image{}, fmt.Errorf("ociimage: push %s: manifest: %w", t.Ref(), err)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != dgst.String() {
		return Image{}, fmt.Errorf("ociimage: push %s: registry stored digest %s, expected %s", t.Ref(), got, dgst)
	}
	return Image{Ref: t.Ref(), Digest: dgst.String()}, nil
}

// pusher speaks the Distribution API's push side with plain net/http.
type pusher struct {
	base       string // scheme://host:port/v2/<repo>
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
