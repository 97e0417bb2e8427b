package spec

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func TestParseEnvValue(t *testing.T) {
	for _, tc := range []struct {
		in, literal, secret, problem string
	}{
		{in: "plain", literal: "plain"},
		{in: "", literal: ""},
		{in: "a=secret:b", literal: "a=secret:b"},
		{in: "SECRET:x", literal: "SECRET:x"},
		{in: "secret:db-password", secret: "db-password"},
		{in: "secret:a", secret: "a"},
		{in: "secret:0_x.y-z", secret: "0_x.y-z"},
		{in: "secret:" + strings.Repeat("a", 63), secret: strings.Repeat("a", 63)},
		{in: "secret::", literal: "secret:"},
		{in: "secret::abc", literal: "secret:abc"},
		{in: "secret:::abc", literal: "secret::abc"},
		{in: "secret:", problem: `"" is not a valid secret name`},
		{in: "secret:Db", problem: `"Db" is not a valid secret name`},
		{in: "secret:-x", problem: `"-x" is not a valid secret name`},
		{in: "secret:a/b", problem: `"a/b" is not a valid secret name`},
		{in: "secret:" + strings.Repeat("a", 64), problem: "at most 63 characters"},
		{in: "secret:age:x.age", problem: "only node-local secrets"},
		{in: "secret:db password", problem: "is not a valid secret name"},
	} {
		lit, sec, prob := parseEnvValue(tc.in)
		if lit != tc.literal || sec != tc.secret || (tc.problem == "") != (prob == "") || !strings.Contains(prob, tc.problem) {
			t.Errorf("parseEnvValue(%q) = %q, %q, %q; want %q, %q, problem containing %q", tc.in, lit, sec, prob, tc.literal, tc.secret, tc.problem)
		}
	}
}

func secretRepo(t *testing.T) Service {
	t.Helper()
	files := map[string]string{
		"mcp.toml": "domain = \"example.org\"\n[[nodes]]\nname = \"n1\"\naddresses = [\"192.0.2.1\"]\n",
		"services/db.toml": `name = "db"
node = "n1"
[[components]]
name = "db"
image = "r.example.org/db:v1"
env = ["USER=app", "PASSWORD=secret:db-password", "LIT=secret::x"]
[[components]]
name = "side"
image = "r.example.org/side:v1"
env = ["TOKEN=secret:api-token", "AGAIN=secret:db-password"]
`,
	}
	fsys := fstest.MapFS{}
	for name, data := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(data)}
	}
	repo, err := Load(fsys)
	if err != nil || len(repo.Services) != 1 {
		t.Fatalf("load: %v %v", err, repo.Diagnostics)
	}
	return repo.Services[0]
}

func TestBindSecrets(t *testing.T) {
	s := secretRepo(t)
	if got := s.Components[0].Env; !reflect.DeepEqual(got, []EnvVar{
		{Name: "USER", Value: "app"}, {Name: "PASSWORD", Secret: "db-password"}, {Name: "LIT", Value: "secret:x"},
	}) {
		t.Fatalf("resolved env = %+v", got)
	}
	if got := SecretNames(&s); !reflect.DeepEqual(got, []string{"api-token", "db-password"}) {
		t.Fatalf("SecretNames = %v", got)
	}
	before := Hash(s)
	const dA, dB, dT = DigestPrefix + "aaaa", DigestPrefix + "bbbb", DigestPrefix + "cccc"
	for _, tc := range []struct {
		name string
		ns   NodeSecrets
		want []string // diagnostics; none: bound
	}{
		{"bound", NodeSecrets{Dir: "/etc/mcp/secrets", Digests: map[string]string{"db-password": dA, "api-token": dT}}, nil},
		{"missing", NodeSecrets{Dir: "/etc/mcp/secrets", Digests: map[string]string{"db-password": dA}},
			[]string{"services/db.toml: components[1].env[0]: TOKEN: secret api-token not found in /etc/mcp/secrets on this node"}},
		{"unusable", NodeSecrets{Dir: "/etc/mcp/secrets", Digests: map[string]string{"api-token": dT}, Errors: map[string]string{"db-password": "mode 0644: readable by group or others"}},
			[]string{
				"services/db.toml: components[0].env[1]: PASSWORD: secret db-password in /etc/mcp/secrets cannot be used: mode 0644: readable by group or others",
				"services/db.toml: components[1].env[1]: AGAIN: secret db-password in /etc/mcp/secrets cannot be used: mode 0644: readable by group or others",
			}},
		{"no dir", NodeSecrets{},
			[]string{
				"services/db.toml: components[0].env[1]: PASSWORD: secret db-password: this node has no secrets directory (set [secrets] dir in the agent configuration)",
				"services/db.toml: components[1].env[0]: TOKEN: secret api-token: this node has no secrets directory (set [secrets] dir in the agent configuration)",
				"services/db.toml: components[1].env[1]: AGAIN: secret db-password: this node has no secrets directory (set [secrets] dir in the agent configuration)",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, diags := BindSecrets(s, &tc.ns)
			if Hash(s) != before || s.Components[0].Env[1].SecretDigest != "" {
				t.Fatal("BindSecrets modified its argument")
			}
			var got []string
			for _, d := range diags {
				got = append(got, d.Error())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if tc.want != nil {
				if Hash(b) != before {
					t.Error("a service that failed to bind is not returned unchanged")
				}
				return
			}
			if b.Components[0].Env[1].SecretDigest != dA || b.Components[1].Env[0].SecretDigest != dT || b.Components[1].Env[1].SecretDigest != dA {
				t.Errorf("bound env = %+v %+v", b.Components[0].Env, b.Components[1].Env)
			}
			if Hash(b) == before {
				t.Error("binding a digest did not change the spec hash")
			}
			ns2 := tc.ns
			ns2.Digests = map[string]string{"db-password": dB, "api-token": dT}
			b2, _ := BindSecrets(s, &ns2)
			if Hash(b2) == Hash(b) {
				t.Error("a changed secret digest did not change the spec hash")
			}
		})
	}
}

// A definition without secrets keeps the hash it had before secrets
// existed: the new fields are omitted from the canonical encoding when
// empty.
func TestSecretFieldsOmitted(t *testing.T) {
	s := Service{Name: "x", Components: []Component{{Name: "x", Env: []EnvVar{{Name: "A", Value: "1"}}}}}
	b, diags := BindSecrets(s, nil)
	if diags != nil || Hash(b) != Hash(s) {
		t.Fatal("binding a service without secrets changed it")
	}
	enc, err := json.Marshal(s.Components[0].Env)
	if err != nil || string(enc) != `[{"name":"A","value":"1"}]` {
		t.Fatalf("env encodes as %s (%v)", enc, err)
	}
}

func TestEnvDisplay(t *testing.T) {
	for _, tc := range []struct {
		e    EnvVar
		want string
	}{
		{EnvVar{Name: "A", Value: "x y"}, `"x y"`},
		{EnvVar{Name: "A", Secret: "db"}, "secret db (digest unknown here)"},
		{EnvVar{Name: "A", Secret: "db", SecretDigest: DigestPrefix + "0123456789abcdef0123"}, "secret db " + DigestPrefix + "0123456789abcdef…"},
	} {
		if got := tc.e.Display(); got != tc.want {
			t.Errorf("Display(%+v) = %q, want %q", tc.e, got, tc.want)
		}
	}
}
