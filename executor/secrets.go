package executor

import (
	"context"
	"errors"
	"fmt"

	"metacircular.net/mcp/spec"
)

// SecretSource gives the executor the value of a node-local secret, only
// when it builds a container's environment. The agent implements it over
// its secrets directory.
type SecretSource interface {
	// Secret returns the current value of the secret name and its keyed
	// digest (spec.DigestPrefix + hex), the same digest the agent bound
	// into the definition before planning.
	Secret(ctx context.Context, name string) (value, digest string, err error)
}

// WithSecrets lets definitions reference node-local secrets
// ("KEY=secret:NAME"). Without it such a container cannot be built.
func WithSecrets(s SecretSource) Option { return func(e *Executor) { e.secrets = s } }

// ErrSecretChanged is returned (wrapped) when a secret's value is not the
// one the plan was made with: the container is not built with a value
// its runtime hash does not describe, and the next reconcile plans the
// change.
var ErrSecretChanged = errors.New("secret changed since the plan was made")

// secretError marks a secret whose value could not be given: the
// container spec is complete but for that value, so its runtime hash
// (which covers digests only) can still be compared, but the container
// cannot be started.
type secretError struct{ err error }

func (e *secretError) Error() string { return e.err.Error() }
func (e *secretError) Unwrap() error { return e.err }

func isSecretError(err error) bool {
	var s *secretError
	return errors.As(err, &s)
}

// envValue is the value a declared variable gets in the container. A
// secret's value is read here and nowhere else; errors name the secret
// and the variable, never the value.
func (e *Executor) envValue(ctx context.Context, svc, comp string, v spec.EnvVar) (string, error) {
	if v.Secret == "" {
		return v.Value, nil
	}
	where := fmt.Sprintf("%s/%s env %s", svc, comp, v.Name)
	if v.SecretDigest == "" {
		// The agent binds every reference before planning; an unbound one
		// would start a container whose runtime hash ignores the value.
		return "", fmt.Errorf("secret %s for %s: no digest bound (not planned by the agent)", v.Secret, where)
	}
	if e.secrets == nil {
		return "", fmt.Errorf("secret %s for %s: this node has no secrets directory ([secrets] dir)", v.Secret, where)
	}
	val, digest, err := e.secrets.Secret(ctx, v.Secret)
	if err != nil {
		return "", fmt.Errorf("secret %s for %s: %w", v.Secret, where, err)
	}
	if digest != v.SecretDigest {
		return "", fmt.Errorf("secret %s for %s: %w (the next reconcile plans the change)", v.Secret, where, ErrSecretChanged)
	}
	return val, nil
}

// secretEnv maps each variable of comp that holds a secret to what the
// runtime hash covers instead of its value: the secret's name and keyed
// digest. So the hash in the container's labels changes with the value
// without revealing it. nil when comp has no secrets.
func secretEnv(comp spec.Component) map[string]string {
	var m map[string]string
	for _, v := range comp.Env {
		if v.Secret == "" {
			continue
		}
		if m == nil {
			m = map[string]string{}
		}
		m[v.Name] = spec.SecretPrefix + v.Secret + "@" + v.SecretDigest
	}
	return m
}
