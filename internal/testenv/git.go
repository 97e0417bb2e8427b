package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

// GitBranch is the branch GitRepo creates and pushes.
const GitBranch = "main"

// Repo is a bare repository (the "remote") and a work clone that commits
// and pushes to it, both driven by the real git CLI.
type Repo struct {
	t testing.TB
	// Bare is the bare repository's directory: a plain path that is also
	// a valid local URL.
	Bare string
	// Work is the work clone's directory.
	Work string
}

// GitRepo creates an empty bare repository and a work clone in
// t.TempDir(). Nothing is pushed until the first Push.
func GitRepo(t testing.TB) *Repo {
	t.Helper()
	dir := t.TempDir()
	r := &Repo{t: t, Bare: filepath.Join(dir, "remote.git"), Work: filepath.Join(dir, "work")}
	Git(t, dir, "init", "--quiet", "--bare", "--initial-branch="+GitBranch, r.Bare)
	Git(t, dir, "init", "--quiet", "--initial-branch="+GitBranch, r.Work)
	Git(t, r.Work, "remote", "add", "origin", r.Bare)
	return r
}

// URL is the bare repository as a file:// URL.
func (r *Repo) URL() string { return "file://" + filepath.ToSlash(r.Bare) }

// Commit writes files (path relative to the work tree → content) and
// commits them, even when nothing changed. It does not push.
func (r *Repo) Commit(files map[string]string, msg string) plumbing.Hash {
	r.t.Helper()
	for _, name := range sortedKeys(files) {
		p := filepath.Join(r.Work, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(files[name]), 0o644); err != nil {
			r.t.Fatal(err)
		}
		Git(r.t, r.Work, "add", "--", name)
	}
	return r.commit(msg)
}

// Remove deletes paths from the work tree and commits.
func (r *Repo) Remove(paths []string, msg string) plumbing.Hash {
	r.t.Helper()
	Git(r.t, r.Work, append([]string{"rm", "--quiet", "-r", "--"}, paths...)...)
	return r.commit(msg)
}

// Symlink commits a symbolic link at name pointing to target.
func (r *Repo) Symlink(name, target, msg string) plumbing.Hash {
	r.t.Helper()
	p := filepath.Join(r.Work, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		r.t.Fatal(err)
	}
	Git(r.t, r.Work, "add", "--", name)
	return r.commit(msg)
}

func (r *Repo) commit(msg string) plumbing.Hash {
	r.t.Helper()
	Git(r.t, r.Work, "commit", "--quiet", "--allow-empty", "--no-verify", "-m", msg)
	return r.Rev("HEAD")
}

// Push pushes the work clone's branch to the bare repository.
func (r *Repo) Push() {
	r.t.Helper()
	Git(r.t, r.Work, "push", "--quiet", "origin", GitBranch)
}

// ForcePush points the bare repository's branch at commit to (any commit
// in the work clone, older or on another line), and resets the work clone
// there so later commits build on it.
func (r *Repo) ForcePush(to plumbing.Hash) {
	r.t.Helper()
	Git(r.t, r.Work, "reset", "--quiet", "--hard", to.String())
	Git(r.t, r.Work, "push", "--quiet", "--force", "origin", GitBranch)
}

// Head is the bare repository's branch head.
func (r *Repo) Head() plumbing.Hash {
	r.t.Helper()
	return plumbing.NewHash(strings.TrimSpace(Git(r.t, r.Bare, "rev-parse", "refs/heads/"+GitBranch)))
}

// Rev resolves a revision in the work clone.
func (r *Repo) Rev(rev string) plumbing.Hash {
	r.t.Helper()
	return plumbing.NewHash(strings.TrimSpace(Git(r.t, r.Work, "rev-parse", "--verify", rev+"^{commit}")))
}

// gitEnv isolates git from the machine's and the user's configuration:
// tests must behave the same everywhere, and must never read or write the
// global config.
func gitEnv(home string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "GIT_") || strings.HasPrefix(kv, "HOME=")
	})
	return append(env,
		"HOME="+home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+os.DevNull,
		"GIT_AUTHOR_NAME=mcp test",
		"GIT_AUTHOR_EMAIL=test@mcp.invalid",
		"GIT_COMMITTER_NAME=mcp test",
		"GIT_COMMITTER_EMAIL=test@mcp.invalid",
		"GIT_TERMINAL_PROMPT=0",
	)
}

// gitFlags are passed before every subcommand for the same reason.
var gitFlags = []string{
	"-c", "commit.gpgsign=false",
	"-c", "tag.gpgsign=false",
	"-c", "core.hooksPath=" + os.DevNull,
	"-c", "protocol.file.allow=always",
	"-c", "init.defaultBranch=" + GitBranch,
	"-c", "core.symlinks=true",
}

// GitCommand returns an isolated `git args...` command run in dir.
func GitCommand(t testing.TB, dir string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("git", append(slices.Clone(gitFlags), args...)...)
	cmd.Dir = dir
	cmd.Env = gitEnv(t.TempDir())
	return cmd
}

// Git runs `git args...` in dir and returns its stdout; it fails the test
// with git's stderr on error.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := GitCommand(t, dir, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, stderr.String())
	}
	return stdout.String()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
