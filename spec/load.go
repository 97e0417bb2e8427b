package spec

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/BurntSushi/toml"
)

// Limits on the input, so that a hostile or broken repository cannot make
// the agent spend unbounded memory or time. Real definitions are a few
// hundred bytes and a platform has tens of services.
const (
	// MaxFileSize caps mcp.toml and each service file.
	MaxFileSize = 256 << 10
	// MaxServiceFiles caps the number of files in services/. Over it, no
	// file is read and every one is reported invalid (so nothing is
	// undeployed by mistake).
	MaxServiceFiles = 10000
)

// ServicesDir holds one definition per service: services/<name>.toml.
const ServicesDir = "services"

// UnusableError refuses a whole repository: nothing in it can be read
// safely, so a caller changes nothing (every service stays as deployed).
type UnusableError struct {
	File   string // relative to the repository root
	Reason string
}

func (e *UnusableError) Error() string { return e.File + ": " + e.Reason }

// LoadDir loads the repository checked out at dir.
func LoadDir(dir string) (*Repo, error) {
	return Load(os.DirFS(dir))
}

// Load reads mcp.toml and services/*.toml from fsys and resolves them.
// The error is for I/O failures that are not the input's fault, and an
// *UnusableError when the repository's layout leaves no definition that
// can be trusted (services/ is a symbolic link); every other problem with
// the input is a Diagnostic in the Repo.
//
// Files whose name starts with "." or does not end in ".toml" are not
// definitions and are skipped, as are subdirectories of services/. A
// definition or mcp.toml that is a symbolic link is refused: a link could
// make the agent read (and quote in diagnostics) any file on the node.
// Links are seen when fsys implements fs.ReadLinkFS or reports them in
// its directory entries, as os.DirFS and fstest.MapFS do.
func Load(fsys fs.FS) (*Repo, error) {
	repo := &Repo{PlatformValid: true}
	prep := &report{file: PlatformFile}
	data, err := readDefinition(fsys, PlatformFile, prep)
	if err != nil {
		return nil, err
	}
	if data != nil {
		repo.Platform = parsePlatform(prep, data)
	} else {
		repo.Platform = Platform{Defaults: Defaults{User: DefaultUser, Restart: DefaultRestart, Tier: DefaultTier}}
	}
	repo.PlatformValid = !prep.failed()
	repo.Diagnostics = append(repo.Diagnostics, prep.capped()...)

	files, listDiags, err := listServices(fsys)
	if err != nil {
		return nil, err
	}
	repo.Diagnostics = append(repo.Diagnostics, listDiags...)
	if len(listDiags) > 0 {
		// The list cannot be trusted: keep every service as it is.
		for _, f := range files {
			repo.Invalid = append(repo.Invalid, Invalid{Name: baseName(f), File: f, Diagnostics: listDiags})
		}
		finish(repo)
		return repo, nil
	}

	var all []*parsed
	for _, f := range files {
		// The file name, not the `name` key, is the service's identity: a
		// typo in `name` must not look like the service was removed.
		rep := &report{file: f, service: baseName(f)}
		data, err := readDefinition(fsys, f, rep)
		if err != nil {
			return nil, err
		}
		ps := &parsed{file: f, base: baseName(f), rep: rep}
		if data != nil {
			ps = parseService(f, ps.base, data, &repo.Platform, repo.PlatformValid)
		}
		if !repo.PlatformValid {
			ps.rep.errorf("", "not resolved: %s has errors, and no service can be resolved without it (%s)", PlatformFile, platformErrors(repo.Diagnostics))
		}
		all = append(all, ps)
	}
	checkAcross(all)
	checkAfter(all) // rollout.go
	for _, ps := range all {
		ps.rep.diags = ps.rep.capped()
		repo.Diagnostics = append(repo.Diagnostics, ps.rep.diags...)
		if ps.rep.failed() {
			repo.Invalid = append(repo.Invalid, ps.invalid())
			continue
		}
		repo.Services = append(repo.Services, ps.svc)
	}
	finish(repo)
	return repo, nil
}

// platformErrors lists mcp.toml's errors for the diagnostic of every
// service it leaves unresolved: a node shows its services' diagnostics
// (outcome, status, history), and "mcp.toml has errors" alone would not
// say which.
func platformErrors(ds Diagnostics) string {
	const show = 10
	var out []string
	n := 0
	for _, d := range ds {
		if d.File != PlatformFile || d.Severity != SeverityError {
			continue
		}
		if n++; n <= show {
			out = append(out, d.Error())
		}
	}
	if n > show {
		out = append(out, fmt.Sprintf("and %d more", n-show))
	}
	return strings.Join(out, "; ")
}

func (ps *parsed) invalid() Invalid {
	ds := append(Diagnostics(nil), ps.rep.diags...)
	sortDiagnostics(ds)
	return Invalid{Name: ps.base, File: ps.file, Node: ps.node, Diagnostics: ds}
}

func baseName(file string) string {
	return strings.TrimSuffix(path.Base(file), ".toml")
}

// listServices returns the definition files under services/, sorted.
func listServices(fsys fs.FS) ([]string, Diagnostics, error) {
	var diags Diagnostics
	fi, err := fs.Lstat(fsys, ServicesDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("spec: stat %s: %w", ServicesDir, err)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		// Listing through the link would read (and name in diagnostics)
		// a directory outside the repository; not listing would make
		// every deployed service look removed. Neither can be trusted,
		// so the whole commit is refused and nothing changes.
		return nil, nil, &UnusableError{File: ServicesDir, Reason: "is a symbolic link; services/ must be a directory of the repository itself, so no definition was read and nothing is changed"}
	case !fi.IsDir():
		return nil, Diagnostics{{File: ServicesDir, Message: "is not a directory; service definitions live in services/<name>.toml"}}, nil
	}
	entries, err := fs.ReadDir(fsys, ServicesDir)
	if err != nil {
		return nil, nil, fmt.Errorf("spec: list %s: %w", ServicesDir, err)
	}
	var files []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".toml") {
			continue
		}
		// A directory named *.toml is kept: reading it reports it invalid.
		files = append(files, ServicesDir+"/"+n)
	}
	if len(files) > MaxServiceFiles {
		diags = append(diags, Diagnostic{File: ServicesDir, Message: fmt.Sprintf("holds %d service files, more than the limit of %d; no definition was read", len(files), MaxServiceFiles)})
	}
	return files, diags, nil
}

// readDefinition reads one file, refusing links, non-regular files and
// files over MaxFileSize. It returns nil data when the file is unusable
// (reported in r) and an error only for I/O failures.
func readDefinition(fsys fs.FS, name string, r *report) ([]byte, error) {
	fi, err := fs.Lstat(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		if name == PlatformFile {
			r.errorf("", "missing: the repository root needs %s with at least domain and [[nodes]]", PlatformFile)
		} else {
			r.errorf("", "vanished while loading")
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("spec: stat %s: %w", name, err)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		r.errorf("", "is a symbolic link, which is refused: definitions must be regular files of the repository")
		return nil, nil
	case fi.IsDir():
		r.errorf("", "is a directory; a service definition is a file")
		return nil, nil
	case !fi.Mode().IsRegular():
		// Reading a FIFO or a device could block or never end.
		r.errorf("", "is not a regular file")
		return nil, nil
	case fi.Size() > MaxFileSize:
		r.errorf("", "is %d bytes, more than the limit of %d", fi.Size(), MaxFileSize)
		return nil, nil
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("spec: open %s: %w", name, err)
	}
	defer f.Close()
	// The size from Stat can be stale or made up; trust only what is read.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("spec: read %s: %w", name, err)
	}
	if len(data) > MaxFileSize {
		r.errorf("", "is more than the limit of %d bytes", MaxFileSize)
		return nil, nil
	}
	return data, nil
}

// decode parses a TOML document into a table ready to be checked.
func decode(r *report, data []byte) (*table, bool) {
	if d := nestingDepth(data); d > MaxNesting {
		r.errorf("", "keys, arrays and inline tables nest %d deep, more than the limit of %d", d, MaxNesting)
		return nil, false
	}
	var m map[string]any
	if _, err := toml.Decode(string(data), &m); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			r.errorf("", "invalid TOML at line %d: %s", pe.Position.Line, pe.Message)
		} else {
			r.errorf("", "invalid TOML: %v", err)
		}
		return nil, false
	}
	checkText(r, "", m) // text.go
	return newTable(r, "", m), true
}
