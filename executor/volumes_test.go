package executor

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"metacircular.net/mcp/spec"
)

func TestCheckVolumeLinks(t *testing.T) {
	root := t.TempDir()
	srv := filepath.Join(root, "srv", "web")
	for _, d := range []string{"data", "real"} {
		if err := os.MkdirAll(filepath.Join(srv, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	// What a container could plant in its own data directory.
	if err := os.Symlink("/", filepath.Join(srv, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(srv, "real"), filepath.Join(srv, "data", "inner")); err != nil {
		t.Fatal(err)
	}
	// An operator's link above the service directory is the host's business.
	if err := os.Symlink(filepath.Join(root, "srv"), filepath.Join(root, "srvlink")); err != nil {
		t.Fatal(err)
	}
	vol := func(host string) []spec.Volume { return []spec.Volume{{Host: host, Container: "/x"}} }
	tests := []struct {
		name string
		host string
		bad  bool
	}{
		{"the service's own directory", srv, false},
		{"a plain subdirectory", filepath.Join(srv, "data"), false},
		{"not there yet (the runtime creates it)", filepath.Join(srv, "new", "deeper"), false},
		{"a planted link", filepath.Join(srv, "escape"), true},
		{"below a planted link", filepath.Join(srv, "escape", "etc"), true},
		{"a link deeper down", filepath.Join(srv, "data", "inner", "x"), true},
		{"outside the service's directory", filepath.Join(root, "srvlink", "other"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkVolumeLinks(root, "web", vol(tt.host))
			if got := errors.Is(err, ErrVolumeLink); got != tt.bad {
				t.Fatalf("checkVolumeLinks(%s) = %v, want refused=%v", tt.host, err, tt.bad)
			}
		})
	}
}
