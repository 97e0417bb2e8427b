package containerd

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/opencontainers/go-digest"

	"metacircular.net/mcp/internal/testenv"
)

// deleteImages removes every image of d's namespace from containerd, and
// waits for the content to go, as if containerd had lost them.
func deleteImages(t *testing.T, d *Driver) {
	t.Helper()
	ctx := d.nsCtx(t.Context())
	is := d.Client().ImageService()
	imgs, err := is.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		if err := is.Delete(ctx, img.Name, images.SynchronousDelete()); err != nil {
			t.Fatalf("delete image %s: %v", img.Name, err)
		}
	}
}

func archiveOf(d *Driver, dg string) string {
	return filepath.Join(d.imagesDir(), digest.Digest(dg).Encoded()+".tar")
}

func TestEnsureImageRestoresFromArchiveWithRegistryDown(t *testing.T) {
	r := testenv.StartRegistry(t)
	ref := testenv.TestImage(t, r.Addr, testenv.UniqueRepo("ctrd/offline"), "v1")
	d := newDriver(t, plainHTTP(r.Addr))
	ctx := t.Context()

	dg := ensure(t, d, ref)
	if _, err := os.Stat(archiveOf(d, dg)); err != nil {
		t.Fatalf("no archive after pull: %v", err)
	}
	// Present locally: no registry needed at all.
	r.Stop()
	if again := ensure(t, d, ref); again != dg {
		t.Fatalf("digest changed: %s then %s", dg, again)
	}

	// containerd lost the image and the registry is down: mcp's copy.
	deleteImages(t, d)
	if got := ensure(t, d, ref); got != dg {
		t.Fatalf("restored digest %s, want %s", got, dg)
	}
	s, port := helloSpec(t, "hello.hello.0", ref, dg)
	if err := d.Start(ctx, s); err != nil {
		t.Fatalf("Start from restored image: %v", err)
	}
	if body := httpGet(t, port, "/", 15*time.Second); !strings.Contains(body, "version=v1") {
		t.Fatalf("GET / = %q", body)
	}
	if err := d.Remove(ctx, s.ID, time.Second); err != nil {
		t.Fatal(err)
	}

	// By digest reference too.
	deleteImages(t, d)
	byDigest := ref[:strings.LastIndex(ref, ":")] + "@" + dg
	if got := ensure(t, d, byDigest); got != dg {
		t.Fatalf("restored by digest: %s, want %s", got, dg)
	}

	// No copy and no registry: the pull error says so.
	other := r.Addr + "/ctrd/never:v1"
	if _, err := d.EnsureImage(ctx, other); err == nil || !strings.Contains(err.Error(), "pull "+other) {
		t.Fatalf("EnsureImage with nothing to restore: %v", err)
	}
}

func TestEnsureImageBasicAuth(t *testing.T) {
	const user, pass = "mcp", "s3cret"
	host := testenv.RegistryWithAuth(t, user, pass)
	repo := testenv.UniqueRepo("ctrd/auth")
	ref1 := testenv.TestImage(t, host, repo, "v1", testenv.WithCredentials(user, pass))
	ref2 := testenv.TestImage(t, host, repo, "v2", testenv.WithCredentials(user, pass))

	pwFile := filepath.Join(t.TempDir(), "password")
	write := func(p string) {
		if err := os.WriteFile(pwFile, []byte(p+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("wrong")
	d := newDriver(t, map[string]Registry{host: {Username: user, PasswordFile: pwFile, PlainHTTP: true}})
	ctx := t.Context()

	_, err := d.EnsureImage(ctx, ref1)
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("wrong password: %v, want an *AuthError", err)
	}
	t.Logf("wrong password: %v", err)
	want := "pull " + ref1 + ": registry " + host + " refused credentials for user " + user + ": 401"
	if !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("wrong password error:\n %s\nwant it to start with\n %s", err, want)
	}

	// The file is read again at the next 401: a fixed password works
	// without a new driver.
	write(pass)
	ensure(t, d, ref1)

	// Rotated again (to a wrong one): read again, refused again.
	write("rotated-away")
	if _, err := d.EnsureImage(ctx, ref2); !errors.As(err, &ae) {
		t.Fatalf("after rotation: %v, want an *AuthError", err)
	}
	write(pass)
	ensure(t, d, ref2)

	// No credentials configured for a registry that wants them.
	anon := newDriver(t, plainHTTP(host))
	if _, err := anon.EnsureImage(ctx, ref1); err == nil || !strings.Contains(err.Error(), "requires credentials and none are configured") {
		t.Fatalf("no credentials: %v", err)
	}
}

func TestPlainHTTPOnlyForListedHosts(t *testing.T) {
	reg := testenv.Registry(t)
	ref := testenv.TestImage(t, reg, testenv.UniqueRepo("ctrd/https"), "v1")
	d := newDriver(t, nil) // the host is not listed: https only
	_, err := d.EnsureImage(t.Context(), ref)
	if err == nil {
		t.Fatal("pulled over plain HTTP from a host not listed for it")
	}
	t.Logf("refused as expected: %v", err)
}

func TestPruneImages(t *testing.T) {
	reg := testenv.Registry(t)
	repo := testenv.UniqueRepo("ctrd/prune")
	ref1 := testenv.TestImage(t, reg, repo, "v1")
	ref2 := testenv.TestImage(t, reg, repo, "v2")
	ref3 := testenv.TestImage(t, reg, repo, "v3")
	d := newDriver(t, plainHTTP(reg))
	ctx := t.Context()
	dg1, dg2, dg3 := ensure(t, d, ref1), ensure(t, d, ref2), ensure(t, d, ref3)

	// v1 runs, so it stays even though keep does not name it.
	s, _ := helloSpec(t, "hello.hello.0", ref1, dg1)
	if err := d.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := d.PruneImages(ctx, []string{dg2}); err != nil {
		t.Fatalf("PruneImages: %v", err)
	}
	exists := func(dg string) bool { _, err := os.Stat(archiveOf(d, dg)); return err == nil }
	if !exists(dg1) || !exists(dg2) || exists(dg3) {
		t.Fatalf("archives after prune: v1 %v v2 %v v3 %v, want true true false", exists(dg1), exists(dg2), exists(dg3))
	}
	is := d.Client().ImageService()
	if _, err := is.Get(d.nsCtx(ctx), ref3); err == nil {
		t.Fatal("v3 image still in containerd")
	}
	if _, err := is.Get(d.nsCtx(ctx), ref2); err != nil {
		t.Fatalf("v2 image pruned: %v", err)
	}

	if err := d.Remove(ctx, s.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.PruneImages(ctx, []string{dg2}); err != nil {
		t.Fatalf("PruneImages: %v", err)
	}
	if exists(dg1) {
		t.Fatal("v1 archive kept after its container went")
	}
	if err := d.PruneImages(ctx, []string{"not-a-digest"}); err == nil {
		t.Fatal("PruneImages accepted a bad digest")
	}
}
