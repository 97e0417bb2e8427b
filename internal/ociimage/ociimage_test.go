package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestBinaryLayerIsReproducible(t *testing.T) {
	a, err := BinaryLayer("hello", []byte("binary"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := BinaryLayer("hello", []byte("binary"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest() != b.Digest() || a.diffID != b.diffID {
		t.Errorf("same input, different layers: %s vs %s", a.Digest(), b.Digest())
	}
	c, err := BinaryLayer("hello", []byte("other"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Digest() == a.Digest() {
		t.Error("different binaries gave the same layer digest")
	}

	zr, err := gzip.NewReader(bytes.NewReader(a.gz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == "hello" && h.Mode != 0o755 {
			t.Errorf("hello mode %o, want 755", h.Mode)
		}
	}
	if strings.Join(names, ",") != "tmp/,hello" {
		t.Errorf("layer entries %v, want [tmp/ hello]", names)
	}

	for _, bad := range []string{"", "a/b"} {
		if _, err := BinaryLayer(bad, nil); err == nil {
			t.Errorf("BinaryLayer(%q) succeeded", bad)
		}
	}
}

// fakeRegistry is the push half of the Distribution API, enough to check
// what Push sends: blobs by digest, manifests by tag, optional basic auth.
type fakeRegistry struct {
	mu        sync.Mutex
	blobs     map[string][]byte
	manifests map[string][]byte
	user      string
}

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.user != "" {
		if u, _, ok := r.BasicAuth(); !ok || u != f.user {
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
			return
		}
	}
	const prefix = "/v2/demo/hello/"
	p := strings.TrimPrefix(r.URL.Path, prefix)
	switch {
	case r.Method == http.MethodHead && strings.HasPrefix(p, "blobs/"):
		if _, ok := f.blobs[strings.TrimPrefix(p, "blobs/")]; !ok {
			w.WriteHeader(http.StatusNotFound)
		}
	case r.Method == http.MethodPost && p == "blobs/uploads/":
		w.Header().Set("Location", prefix+"blobs/uploads/1?state=x")
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPut && strings.HasPrefix(p, "blobs/uploads/"):
		b, _ := io.ReadAll(r.Body)
		f.blobs[r.URL.Query().Get("digest")] = b
		w.WriteHeader(http.StatusCreated)
	case r.Method == http.MethodPut && strings.HasPrefix(p, "manifests/"):
		b, _ := io.ReadAll(r.Body)
		f.manifests[strings.TrimPrefix(p, "manifests/")] = b
		w.WriteHeader(http.StatusCreated)
	default:
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
	}
}

func TestPush(t *testing.T) {
	reg := &fakeRegistry{blobs: map[string][]byte{}, manifests: map[string][]byte{}, user: "u"}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	layer, err := BinaryLayer("hello", []byte("binary"))
	if err != nil {
		t.Fatal(err)
	}
	target := Target{Registry: host, Repo: "demo/hello", Tag: "v1", PlainHTTP: true, Username: "u", Password: "p"}
	cfg := Config{Entrypoint: []string{"/hello"}, Env: []string{"VERSION=v1"}}
	img, err := Push(t.Context(), target, layer, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if img.Ref != host+"/demo/hello:v1" || !strings.HasPrefix(img.Digest, "sha256:") {
		t.Errorf("Push = %+v", img)
	}
	if len(reg.blobs) != 2 {
		t.Errorf("registry has %d blobs, want 2 (layer, config)", len(reg.blobs))
	}
	var m struct {
		Config struct{ Digest string }
	}
	if err := json.Unmarshal(reg.manifests["v1"], &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := reg.blobs[m.Config.Digest]; !ok {
		t.Errorf("manifest names config %s, which was not pushed", m.Config.Digest)
	}

	// Another version: same layer (not uploaded again), different digest.
	target.Tag = "v2"
	cfg.Env = []string{"VERSION=v2"}
	img2, err := Push(t.Context(), target, layer, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if img2.Digest == img.Digest {
		t.Error("v1 and v2 have the same digest")
	}
	if len(reg.blobs) != 3 {
		t.Errorf("registry has %d blobs, want 3 (one layer, two configs)", len(reg.blobs))
	}

	// Wrong credentials: an error naming the status.
	target.Username = "nobody"
	if _, err := Push(t.Context(), target, layer, cfg); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("push with wrong user: %v, want a 401 error", err)
	}
}
