package agent

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"metacircular.net/mcp/spec"
)

// writeSecret puts a secret file the way an operator would (0600).
func writeSecret(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	// WriteFile keeps the mode of an existing file: make it what we say.
	if err := os.Chmod(filepath.Join(dir, name), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSecretStore(t *testing.T) {
	dir := t.TempDir()
	state := t.TempDir()
	writeSecret(t, dir, "pw", "hunter2\n")
	writeSecret(t, dir, "twolines", "a\nb\n\n")
	writeSecret(t, dir, "empty", "")
	writeSecret(t, dir, "same-as-pw", "hunter2")
	writeSecret(t, dir, "open", "x")
	if err := os.Chmod(filepath.Join(dir, "open"), 0o640); err != nil {
		t.Fatal(err)
	}
	writeSecret(t, dir, "big", strings.Repeat("x", MaxSecretSize+1))
	writeSecret(t, dir, "nul", "a\x00b")
	if err := os.Symlink(filepath.Join(dir, "pw"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeSecret(t, dir, ".hidden", "x")
	writeSecret(t, dir, "Upper", "x")

	s := newSecretStore(&Config{StateDir: state, Secrets: SecretsConfig{Dir: dir}})
	ctx := context.Background()
	for _, tc := range []struct {
		name, value, err string
	}{
		{name: "pw", value: "hunter2"},
		{name: "twolines", value: "a\nb\n"},
		{name: "empty", value: ""},
		{name: "open", err: "has mode 0640: readable or writable by group or others; chmod 600 it"},
		{name: "big", err: "is 65537 bytes, over the limit of 65536"},
		{name: "nul", err: "holds a NUL byte"},
		{name: "link", err: "is a symbolic link; secrets must be regular files"},
		{name: "sub", err: "is not a regular file"},
		{name: "nope", err: "not found"},
		{name: "../pw", err: `"../pw" is not a valid secret name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, d, err := s.Secret(ctx, tc.name)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || v != tc.value || !strings.HasPrefix(d, spec.DigestPrefix) || len(d) != len(spec.DigestPrefix)+64 {
				t.Fatalf("= %q, %q, %v; want %q", v, d, err, tc.value)
			}
		})
	}

	ns, err := s.scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	digests, errs := slices.Sorted(maps.Keys(ns.Digests)), slices.Sorted(maps.Keys(ns.Errors))
	if !slices.Equal(digests, []string{"empty", "pw", "same-as-pw", "twolines"}) ||
		!slices.Equal(errs, []string{"big", "link", "nul", "open", "sub"}) || ns.Dir != dir {
		t.Fatalf("scan: digests %v errors %v", digests, errs)
	}
	// Same value, different secrets: different digests.
	if ns.Digests["pw"] == ns.Digests["same-as-pw"] {
		t.Error("two secrets with one value share a digest")
	}
	// The key is kept in the state dir, 0600, and reused: a new store (an
	// agent restart) computes the same digests.
	fi, err := os.Stat(filepath.Join(state, secretKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != secretKeySize {
		t.Fatalf("key file: %v %v", fi, err)
	}
	again, _ := newSecretStore(&Config{StateDir: state, Secrets: SecretsConfig{Dir: dir}}).scan(ctx)
	if again.Digests["pw"] != ns.Digests["pw"] {
		t.Error("the digest changed across restarts")
	}
	// Another node (another key): another digest for the same value.
	other, _ := newSecretStore(&Config{StateDir: t.TempDir(), Secrets: SecretsConfig{Dir: dir}}).scan(ctx)
	if other.Digests["pw"] == ns.Digests["pw"] {
		t.Error("the digest does not depend on the node's key")
	}
	// A changed value: a changed digest.
	writeSecret(t, dir, "pw", "hunter3")
	changed, _ := s.scan(ctx)
	if changed.Digests["pw"] == ns.Digests["pw"] {
		t.Error("a changed value kept its digest")
	}
	// No directory configured: nothing, and no key is created.
	none := newSecretStore(&Config{StateDir: t.TempDir()})
	if ns, err := none.scan(ctx); err != nil || ns.Dir != "" || len(ns.Digests) != 0 {
		t.Fatalf("no dir: %+v %v", ns, err)
	}
}
