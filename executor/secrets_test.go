package executor

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"metacircular.net/mcp/spec"
)

type fakeSecrets map[string]string // name → value; the digest is "d-" + value

func (f fakeSecrets) Secret(_ context.Context, name string) (string, string, error) {
	v, ok := f[name]
	if !ok {
		return "", "", fs.ErrNotExist
	}
	return v, "d-" + v, nil
}

func TestEnvValue(t *testing.T) {
	const value = "hunter2-value"
	src := fakeSecrets{"db": value}
	for _, tc := range []struct {
		name string
		src  SecretSource
		v    spec.EnvVar
		want string
		err  string
	}{
		{"literal", nil, spec.EnvVar{Name: "A", Value: "x"}, "x", ""},
		{"secret", src, spec.EnvVar{Name: "A", Secret: "db", SecretDigest: "d-" + value}, value, ""},
		{"changed since planning", src, spec.EnvVar{Name: "A", Secret: "db", SecretDigest: "d-old"}, "",
			"secret db for s/c env A: secret changed since the plan was made (the next reconcile plans the change)"},
		{"missing", src, spec.EnvVar{Name: "A", Secret: "gone", SecretDigest: "d-x"}, "", "secret gone for s/c env A: file does not exist"},
		{"no source", nil, spec.EnvVar{Name: "A", Secret: "db", SecretDigest: "d-" + value}, "", "secret db for s/c env A: this node has no secrets directory ([secrets] dir)"},
		{"unbound", src, spec.EnvVar{Name: "A", Secret: "db"}, "", "secret db for s/c env A: no digest bound (not planned by the agent)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &Executor{secrets: tc.src}
			got, err := e.envValue(context.Background(), "s", "c", tc.v)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				if strings.Contains(err.Error(), value) {
					t.Fatal("the error holds the secret's value")
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("= %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	e := &Executor{secrets: src}
	_, err := e.envValue(context.Background(), "s", "c", spec.EnvVar{Name: "A", Secret: "db", SecretDigest: "d-old"})
	if !errors.Is(err, ErrSecretChanged) {
		t.Errorf("a changed secret is not ErrSecretChanged: %v", err)
	}
}

// The runtime hash covers a secret's name and digest, not its value: the
// label never derives from the value, and a new value (new digest) still
// restarts the container.
func TestRuntimeHashSecrets(t *testing.T) {
	comp := spec.Component{Env: []spec.EnvVar{{Name: "A", Value: "1"}, {Name: "PW", Secret: "db", SecretDigest: "hmac-sha256:aa"}}}
	base := ContainerSpec{Image: "i", Env: []string{"A=1", "PW=one"}, Secrets: secretEnv(comp)}
	otherValue := base
	otherValue.Env = []string{"A=1", "PW=two"}
	if RuntimeHash(base) != RuntimeHash(otherValue) {
		t.Error("the runtime hash depends on the secret's value")
	}
	newDigest := base
	comp.Env[1].SecretDigest = "hmac-sha256:bb"
	newDigest.Secrets = secretEnv(comp)
	if RuntimeHash(base) == RuntimeHash(newDigest) {
		t.Error("a new secret digest keeps the runtime hash")
	}
	plain := ContainerSpec{Image: "i", Env: []string{"A=1"}}
	withNil := plain
	withNil.Secrets = secretEnv(spec.Component{Env: []spec.EnvVar{{Name: "A", Value: "1"}}})
	if withNil.Secrets != nil || RuntimeHash(plain) != RuntimeHash(withNil) {
		t.Error("a container without secrets changed its runtime hash")
	}
}
