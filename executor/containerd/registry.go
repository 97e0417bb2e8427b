package containerd

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	remoteerrors "github.com/containerd/containerd/v2/core/remotes/errors"
)

// resolver builds a fresh resolver per pull: a new authorizer has no
// cached credentials, and credentials are read when the registry asks
// (a 401), so a rotated password file is always honoured.
func (d *Driver) resolver() remotes.Resolver {
	hosts := docker.ConfigureDefaultRegistries(
		docker.WithPlainHTTP(func(host string) (bool, error) {
			return d.registries[host].PlainHTTP, nil
		}),
		docker.WithAuthorizer(docker.NewDockerAuthorizer(
			docker.WithAuthCreds(d.credentials))),
	)
	return docker.NewResolver(docker.ResolverOptions{Hosts: hosts})
}

// credentials is the authorizer's callback, called on a 401 from host.
func (d *Driver) credentials(host string) (string, string, error) {
	r, ok := d.registries[host]
	if !ok || r.Username == "" {
		return "", "", nil
	}
	if r.PasswordFile == "" {
		return r.Username, "", nil
	}
	b, err := os.ReadFile(r.PasswordFile)
	if err != nil {
		return "", "", fmt.Errorf("registry %s: read password file: %w", host, err)
	}
	return r.Username, strings.TrimRight(string(b), "\r\n"), nil
}

// AuthError says a registry refused mcp's credentials (or wanted some and
// none are configured).
type AuthError struct {
	Ref, Host, User string
	Err             error
}

func (e *AuthError) Error() string {
	detail := e.Err.Error()
	var st remoteerrors.ErrUnexpectedStatus
	if errors.As(e.Err, &st) {
		detail = fmt.Sprintf("%s (%s %s)", st.Status, st.RequestMethod, st.RequestURL)
	}
	if e.User == "" {
		return fmt.Sprintf("pull %s: registry %s requires credentials and none are configured for it: %s", e.Ref, e.Host, detail)
	}
	return fmt.Sprintf("pull %s: registry %s refused credentials for user %s: %s", e.Ref, e.Host, e.User, detail)
}

func (e *AuthError) Unwrap() error { return e.Err }

// pullError turns the resolver's errors into one that says what to fix.
func (d *Driver) pullError(ref, host string, err error) error {
	var st remoteerrors.ErrUnexpectedStatus
	if (errors.As(err, &st) && st.StatusCode == http.StatusUnauthorized) ||
		errors.Is(err, docker.ErrInvalidAuthorization) {
		return &AuthError{Ref: ref, Host: host, User: d.registries[host].Username, Err: err}
	}
	return fmt.Errorf("pull %s: %w", ref, err)
}
