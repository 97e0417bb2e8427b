package spec

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden want.txt files of testdata/broken")

// TestBroken loads every repository under testdata/broken and pins its
// diagnostics. Each case also holds services/good.toml, valid on its own,
// which must survive the broken file next to it.
func TestBroken(t *testing.T) {
	dirs, err := filepath.Glob("../testdata/broken/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 15 {
		t.Fatalf("only %d broken cases", len(dirs))
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			repo, err := LoadDir(dir)
			if err != nil {
				t.Fatalf("LoadDir: %v", err)
			}
			if !repo.Diagnostics.HasErrors() {
				t.Errorf("no error reported")
			}
			got := repo.Diagnostics.Error() + "\n"
			golden := filepath.Join(dir, "want.txt")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./spec -run TestBroken -update)", err)
			}
			if got != string(want) {
				t.Errorf("diagnostics differ from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
			checkGoodSurvives(t, repo)
		})
	}
}

func checkGoodSurvives(t *testing.T, repo *Repo) {
	t.Helper()
	if !repo.PlatformValid {
		// Nothing can be resolved, but nothing may be lost either.
		for _, inv := range repo.Invalid {
			if inv.Name == "good" {
				return
			}
		}
		t.Errorf("good is neither valid nor listed as invalid: %+v", repo.Invalid)
		return
	}
	for _, s := range repo.Services {
		if s.Name == "good" {
			return
		}
	}
	var names []string
	for _, s := range repo.Services {
		names = append(names, s.Name)
	}
	t.Errorf("the valid service good was lost; services: %s", strings.Join(names, ", "))
}
