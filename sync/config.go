package gitsync

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

// DefaultBranch is the branch followed when Config.Branch is empty.
const DefaultBranch = "main"

// Config says which repository and branch to follow and how to reach it.
// The toml tags match the agent's [git] table, and ConfigError names keys
// with the same spelling ("git.url"), so a message points at the line to
// fix.
type Config struct {
	// URL is a local path, file://, http(s)://, ssh:// or scp-like
	// "git@host:path". Passwords in the URL are refused: they would end up
	// in config files and logs; use HTTPPasswordFile.
	URL string `toml:"url"`
	// Branch is followed; DefaultBranch when empty.
	Branch string `toml:"branch"`
	// CacheDir holds the private bare clone: a directory of its own under
	// the agent's state dir (created if missing; an empty or missing one
	// is initialised).
	CacheDir string `toml:"cache_dir"`
	// SSHKeyFile is the private key for ssh URLs (unencrypted: the agent
	// runs unattended).
	SSHKeyFile string `toml:"ssh_key_file"`
	// KnownHostsFile lists the accepted host keys for ssh URLs. Required
	// for ssh: host keys are always checked.
	KnownHostsFile string `toml:"known_hosts_file"`
	// HTTPUsername and HTTPPasswordFile give basic auth for http(s) URLs.
	// The password file is read at every use, so rotating it needs no
	// restart.
	HTTPUsername     string `toml:"http_username"`
	HTTPPasswordFile string `toml:"http_password_file"`
	// AllowBackwards lets Check accept a branch that moved to an ancestor
	// of the applied commit (a deliberate rollback by force-push).
	AllowBackwards bool `toml:"allow_backwards"`
	// Timeout bounds one Fetch (ref list and pack together): a remote that
	// accepts connections and never answers fails the poll with
	// ErrUnreachable instead of holding it forever. DefaultTimeout when 0.
	Timeout time.Duration `toml:"timeout"`
}

// DefaultTimeout is Config.Timeout when none is set.
const DefaultTimeout = 2 * time.Minute

// ConfigError is a configuration mistake; Key is the agent config key.
type ConfigError struct {
	Key string
	Msg string
}

func (e *ConfigError) Error() string { return "git." + e.Key + ": " + e.Msg }

// scheme is how a URL is reached.
type scheme int

const (
	schemeFile scheme = iota
	schemeHTTP
	schemeSSH
)

// validate checks c and returns the parsed endpoint. It reads nothing but
// file metadata and the ssh key (to fail at start rather than at the first
// poll).
func (c *Config) validate() (*transport.Endpoint, scheme, error) {
	if c.URL == "" {
		return nil, 0, &ConfigError{"url", "is required"}
	}
	if c.Branch == "" {
		c.Branch = DefaultBranch
	}
	if strings.HasPrefix(c.Branch, "refs/") || strings.ContainsAny(c.Branch, " ~^:?*[\\") ||
		strings.Contains(c.Branch, "..") || strings.HasSuffix(c.Branch, "/") || strings.HasSuffix(c.Branch, ".lock") {
		return nil, 0, &ConfigError{"branch", fmt.Sprintf("%q is not a valid branch name (give the short name, e.g. \"main\")", c.Branch)}
	}
	if c.CacheDir == "" {
		return nil, 0, &ConfigError{"cache_dir", "is required"}
	}
	if u, err := url.Parse(c.URL); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			return nil, 0, &ConfigError{"url", "must not contain a password; put it in http_password_file"}
		}
	}
	ep, err := transport.NewEndpoint(c.URL)
	if err != nil {
		return nil, 0, &ConfigError{"url", fmt.Sprintf("cannot parse %q: %v", redactURL(c.URL), err)}
	}
	var sch scheme
	switch ep.Protocol {
	case "file":
		sch = schemeFile
	case "http", "https":
		sch = schemeHTTP
	case "ssh":
		sch = schemeSSH
	default:
		return nil, 0, &ConfigError{"url", fmt.Sprintf("scheme %q is not supported (use a path, file://, http(s)://, ssh:// or user@host:path)", ep.Protocol)}
	}

	if sch != schemeSSH && (c.SSHKeyFile != "" || c.KnownHostsFile != "") {
		key := "ssh_key_file"
		if c.SSHKeyFile == "" {
			key = "known_hosts_file"
		}
		return nil, 0, &ConfigError{key, "is only used with ssh URLs"}
	}
	if sch != schemeHTTP && (c.HTTPUsername != "" || c.HTTPPasswordFile != "") {
		key := "http_username"
		if c.HTTPUsername == "" {
			key = "http_password_file"
		}
		return nil, 0, &ConfigError{key, "is only used with http(s) URLs"}
	}

	switch sch {
	case schemeSSH:
		if c.SSHKeyFile == "" {
			return nil, 0, &ConfigError{"ssh_key_file", "is required for ssh URLs"}
		}
		if _, err := gitssh.NewPublicKeysFromFile("git", c.SSHKeyFile, ""); err != nil {
			return nil, 0, &ConfigError{"ssh_key_file", fmt.Sprintf("cannot load %s: %v", c.SSHKeyFile, err)}
		}
		// Never fall back to ignoring host keys: without known hosts
		// anyone on the path could serve the desired state.
		if c.KnownHostsFile == "" {
			return nil, 0, &ConfigError{"known_hosts_file", "is required for ssh URLs (host keys are always checked)"}
		}
		if _, err := gitssh.NewKnownHostsDb(c.KnownHostsFile); err != nil {
			return nil, 0, &ConfigError{"known_hosts_file", fmt.Sprintf("cannot load %s: %v", c.KnownHostsFile, err)}
		}
	case schemeHTTP:
		if (c.HTTPUsername == "") != (c.HTTPPasswordFile == "") {
			key := "http_password_file"
			if c.HTTPUsername == "" {
				key = "http_username"
			}
			return nil, 0, &ConfigError{key, "is required when the other of http_username/http_password_file is set"}
		}
		if c.HTTPPasswordFile != "" {
			// Only check it is readable now; the content is read at use.
			if _, err := readPasswordFile(c.HTTPPasswordFile); err != nil {
				return nil, 0, &ConfigError{"http_password_file", err.Error()}
			}
		}
	case schemeFile:
		if _, err := os.Stat(ep.Path); err != nil {
			return nil, 0, &ConfigError{"url", fmt.Sprintf("local repository: %v", err)}
		}
	}
	return ep, sch, nil
}

// readPasswordFile returns the password with one trailing newline removed
// (editors add one; passwords never end in one).
func readPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// redactURL removes any password from a URL so it can be logged. Config
// refuses passwords in URLs already; this is the second line of defence
// for error messages built from other strings.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// localGitDir returns the directory holding refs for a local repository:
// path/.git for a work tree, path itself for a bare repository.
func localGitDir(path string) string {
	dotgit := filepath.Join(path, ".git")
	if st, err := os.Stat(dotgit); err == nil && st.IsDir() {
		return dotgit
	}
	return path
}

// Option changes how a Source works, beyond what the config file says.
type Option func(*Source)

// WithVerifier makes Fetch call v on the head commit before it returns a
// Revision (see the package doc).
func WithVerifier(v Verifier) Option { return func(s *Source) { s.verifier = v } }

// WithLogger sets where the watcher reports problems (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Source) { s.log = l } }
