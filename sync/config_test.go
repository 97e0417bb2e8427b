package gitsync_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"metacircular.net/mcp/internal/testenv"
	gitsync "metacircular.net/mcp/sync"
)

func TestConfigErrorsNameTheKey(t *testing.T) {
	r := testenv.GitRepo(t)
	srv := testenv.GitSSHServer(t, r.Bare)
	cache := filepath.Join(t.TempDir(), "cache")
	pw := writeFile(t, "pw")
	missing := filepath.Join(t.TempDir(), "missing")

	crowded := t.TempDir()
	writeFileAt(t, filepath.Join(crowded, "registry.db"), "x")

	tests := []struct {
		name    string
		cfg     gitsync.Config
		key     string
		mention string
	}{
		{"no url", gitsync.Config{CacheDir: cache}, "url", "required"},
		{"no cache dir", gitsync.Config{URL: r.Bare}, "cache_dir", "required"},
		{"bad branch", gitsync.Config{URL: r.Bare, CacheDir: cache, Branch: "refs/heads/main"}, "branch", "short name"},
		{"branch with ..", gitsync.Config{URL: r.Bare, CacheDir: cache, Branch: "a..b"}, "branch", "not a valid"},
		{"unsupported scheme", gitsync.Config{URL: "ftp://host/repo", CacheDir: cache}, "url", "not supported"},
		{"password in url", gitsync.Config{URL: "https://u:hunter2@host/repo", CacheDir: cache}, "url", "password"},
		{"missing local repo", gitsync.Config{URL: missing, CacheDir: cache}, "url", "local repository"},
		{"ssh without key", gitsync.Config{URL: srv.URL, CacheDir: cache, KnownHostsFile: srv.KnownHostsFile}, "ssh_key_file", "required"},
		{"ssh key unreadable", gitsync.Config{URL: srv.URL, CacheDir: cache, SSHKeyFile: missing, KnownHostsFile: srv.KnownHostsFile}, "ssh_key_file", "cannot load"},
		{"ssh without known_hosts", gitsync.Config{URL: srv.URL, CacheDir: cache, SSHKeyFile: srv.KeyFile}, "known_hosts_file", "always checked"},
		{"scp-like without known_hosts", gitsync.Config{URL: "git@example.com:org/repo.git", CacheDir: cache, SSHKeyFile: srv.KeyFile}, "known_hosts_file", "required"},
		{"known_hosts missing", gitsync.Config{URL: srv.URL, CacheDir: cache, SSHKeyFile: srv.KeyFile, KnownHostsFile: missing}, "known_hosts_file", "cannot load"},
		{"http user without password", gitsync.Config{URL: "https://host/repo", CacheDir: cache, HTTPUsername: "u"}, "http_password_file", "required"},
		{"http password without user", gitsync.Config{URL: "https://host/repo", CacheDir: cache, HTTPPasswordFile: pw}, "http_username", "required"},
		{"http password file missing", gitsync.Config{URL: "https://host/repo", CacheDir: cache, HTTPUsername: "u", HTTPPasswordFile: missing}, "http_password_file", "no such file"},
		{"ssh key on http", gitsync.Config{URL: "https://host/repo", CacheDir: cache, SSHKeyFile: srv.KeyFile}, "ssh_key_file", "only used with ssh"},
		{"cache dir holds other files", gitsync.Config{URL: r.Bare, CacheDir: crowded}, "cache_dir", "directory of its own"},
		{"http auth on ssh", gitsync.Config{URL: srv.URL, CacheDir: cache, SSHKeyFile: srv.KeyFile, KnownHostsFile: srv.KnownHostsFile, HTTPUsername: "u"}, "http_username", "only used with http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := gitsync.New(tt.cfg)
			var ce *gitsync.ConfigError
			if !errors.As(err, &ce) || ce.Key != tt.key {
				t.Fatalf("New: %v; want a ConfigError for %s", err, tt.key)
			}
			if !strings.HasPrefix(err.Error(), "git."+tt.key+": ") || !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("message %q should start with git.%s and mention %q", err, tt.key, tt.mention)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("message leaks the password: %v", err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	r := testenv.GitRepo(t)
	for _, url := range []string{"https://host/repo.git", "http://user@host/repo.git", r.Bare, r.URL()} {
		src, err := gitsync.New(gitsync.Config{URL: url, CacheDir: filepath.Join(t.TempDir(), "c")})
		if err != nil {
			t.Fatalf("New(%s): %v", url, err)
		}
		if src.Config().Branch != gitsync.DefaultBranch {
			t.Errorf("default branch = %q", src.Config().Branch)
		}
	}
}

func TestParseHash(t *testing.T) {
	good := strings.Repeat("0123456789", 4)
	if h, err := gitsync.ParseHash(good); err != nil || h.String() != good {
		t.Fatalf("ParseHash(%s) = %s, %v", good, h, err)
	}
	for _, bad := range []string{"", "abc", good[:39], good + "0", strings.Repeat("z", 40)} {
		if _, err := gitsync.ParseHash(bad); err == nil {
			t.Errorf("ParseHash(%q) accepted", bad)
		}
	}
}

func writeFileAt(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
