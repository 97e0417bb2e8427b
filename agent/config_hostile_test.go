package agent

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var updateHostile = flag.Bool("update-hostile", false, "rewrite agent/testdata/hostile/*.golden")

// hostileConfigCategories are issue 8's categories that apply to the
// agent's own configuration (it has no env list and no repository links:
// it is the node admin's file, not input from the repository).
var hostileConfigCategories = []string{
	"syntax", "types", "huge", "nesting", "unicode", "traversal", "hostname",
	"ports", "privileged", "duplicate",
}

const hostileBase = "node = \"n1\"\nstate_dir = \"/var/lib/mcp\"\n\n[git]\nurl = \"/srv/git/desired.git\"\n"

// generatedConfigs are hostile configurations too big or too deep to
// commit.
var generatedConfigs = map[string]func() string{
	"huge-file": func() string {
		return hostileBase + strings.Repeat("# "+strings.Repeat("padding ", 15)+"\n", (MaxConfigSize/120)+10)
	},
	"huge-many-unknown-keys": func() string {
		var b strings.Builder
		b.WriteString(hostileBase)
		for i := range 5000 {
			b.WriteString("unknown_" + strconv.Itoa(i) + " = 1\n")
		}
		return b.String()
	},
	"nesting-arrays": func() string {
		return hostileBase + "branch = " + strings.Repeat("[", 17) + strings.Repeat("]", 17) + "\n"
	},
	"nesting-inline-tables": func() string {
		return hostileBase + "branch = " + strings.Repeat("{a=", 20000) + "1" + strings.Repeat("}", 20000) + "\n"
	},
	"nesting-unclosed": func() string {
		return hostileBase + "branch = " + strings.Repeat("[", 100000)
	},
	"nesting-dotted-keys": func() string {
		return hostileBase + "[containerd" + strings.Repeat(".a", 3000) + "]\nx = 1\n"
	},
	"nesting-registries": func() string {
		return hostileBase + "[[registries]]\nhost = " + strings.Repeat("[{h=", 10) + "1" + strings.Repeat("}]", 10) + "\n"
	},
}

// TestHostileConfig runs every hostile configuration through ParseConfig
// and LoadConfig: each is refused, every error names the file (and the
// key where there is one), and the messages are pinned in .golden files
// (go test ./agent -run TestHostileConfig -update-hostile).
func TestHostileConfig(t *testing.T) {
	files, err := filepath.Glob("testdata/hostile/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cases[strings.TrimSuffix(filepath.Base(f), ".toml")] = string(b)
	}
	for name, gen := range generatedConfigs {
		if _, dup := cases[name]; dup {
			t.Fatalf("%s is both committed and generated", name)
		}
		cases[name] = gen()
	}
	per := map[string]int{}
	for name := range cases {
		cat, _, _ := strings.Cut(name, "-")
		if !slices.Contains(hostileConfigCategories, cat) {
			t.Errorf("case %s: category %q is not one of %v", name, cat, hostileConfigCategories)
		}
		per[cat]++
	}
	for _, cat := range hostileConfigCategories {
		if per[cat] < 5 {
			t.Errorf("category %s has %d cases, want at least 5", cat, per[cat])
		}
	}
	dir := t.TempDir()
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			file := name + ".toml"
			_, err := ParseConfig(strings.NewReader(src), file)
			got := checkConfigRefused(t, err, file)

			// LoadConfig reads the same bytes from a file and must say
			// the same, naming the path it was given.
			path := filepath.Join(dir, file)
			if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			_, lerr := LoadConfig(path)
			if lgot := checkConfigRefused(t, lerr, path); strings.ReplaceAll(lgot, path, file) != got {
				t.Errorf("LoadConfig says other things than ParseConfig:\n%s\n---\n%s", lgot, got)
			}

			golden := filepath.Join("testdata/hostile", name+".golden")
			if *updateHostile {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./agent -run TestHostileConfig -update-hostile)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

// checkConfigRefused asserts err refuses the file with errors that name
// it, and renders them.
func checkConfigRefused(t *testing.T, err error, file string) string {
	t.Helper()
	var errs ConfigErrors
	if !errors.As(err, &errs) || len(errs) == 0 {
		t.Fatalf("accepted, or refused without ConfigErrors: %v", err)
	}
	if len(errs) > MaxConfigErrors+1 {
		t.Errorf("%d errors, more than the cap %d", len(errs), MaxConfigErrors)
	}
	for _, e := range errs {
		if e.File != file || e.Message == "" {
			t.Errorf("error without the file or a message: %#v", e)
		}
	}
	return errs.Error() + "\n"
}

// Reading a device or a FIFO as the configuration ends at once with a
// message instead of reading forever (or blocking in open).
func TestLoadConfigNotRegular(t *testing.T) {
	_, err := LoadConfig(os.DevNull)
	if err == nil || !strings.Contains(err.Error(), "is not a regular file") {
		t.Fatalf("LoadConfig(%s) = %v, want: is not a regular file", os.DevNull, err)
	}
}
