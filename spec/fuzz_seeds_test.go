package spec

import (
	"os"
	"path/filepath"
	"testing"
)

// addCorpusSeeds adds every committed broken and hostile case to FuzzLoad's
// seeds: its mcp.toml (or _base's) and its first two service files, so
// the fuzzer starts from inputs that reach every check.
func addCorpusSeeds(f *testing.F) {
	base, _ := os.ReadFile(filepath.Join(hostileDir, "_base", PlatformFile))
	var dirs []string
	for _, pattern := range []string{"../testdata/broken/*", hostileDir + "/*"} {
		m, _ := filepath.Glob(pattern)
		dirs = append(dirs, m...)
	}
	for _, dir := range dirs {
		platform, err := os.ReadFile(filepath.Join(dir, PlatformFile))
		if err != nil {
			platform = base
		}
		files, _ := filepath.Glob(filepath.Join(dir, ServicesDir, "*.toml"))
		var svc [2][]byte
		for i := 0; i < len(files) && i < 2; i++ {
			svc[i], _ = os.ReadFile(files[i])
		}
		if svc[0] == nil {
			svc[0] = []byte{}
		}
		if svc[1] == nil {
			svc[1] = []byte{}
		}
		f.Add(platform, svc[0], svc[1])
	}
}
