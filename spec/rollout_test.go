package spec

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestHealthResolved(t *testing.T) {
	def := func(route string, fixed int) Health {
		h := defaultHealth()
		h.Route, h.FixedPort = route, fixed
		return h
	}
	tests := []struct {
		name string
		comp string // the [[components]] body after name and image
		want []Health
	}{
		{"default: tcp on every route", `
[[components.routes]]
name = "rest"
port = 8443
mode = "l4"
[[components.routes]]
port = 443
mode = "l7"
`, []Health{def("rest", 0), def("default", 0)}},
		{"default without routes: the first fixed port", `
ports = ["53:53/udp", "853:853"]
`, []Health{def("", 53)}},
		{"default without routes or ports: none", ``, nil},
		{"declared http, defaults filled in", `
[[components.routes]]
name = "web"
port = 443
mode = "l7"
[components.health]
type = "http"
`, []Health{{Type: HealthHTTP, Route: "web", Path: "/", ExpectStatus: 200, Interval: DefaultHealthInterval,
			Timeout: DefaultHealthTimeout, HealthyThreshold: 1, UnhealthyThreshold: 3}}},
		{"declared grpc on a named route, every key", `
[[components.routes]]
name = "web"
port = 443
mode = "l7"
[[components.routes]]
name = "grpc"
port = 9443
mode = "l4"
[components.health]
type = "grpc"
route = "grpc"
service = "mcq.v1.Queue"
interval = "500ms"
timeout = "200ms"
start_period = "3s"
healthy_threshold = 2
unhealthy_threshold = 5
`, []Health{{Type: HealthGRPC, Route: "grpc", Service: "mcq.v1.Queue", Interval: 500 * time.Millisecond,
			Timeout: 200 * time.Millisecond, StartPeriod: 3 * time.Second, HealthyThreshold: 2, UnhealthyThreshold: 5}}},
		{"declared on fixed ports", `
ports = ["8053:8053"]
[components.health]
type = "http"
path = "/healthz"
expect_status = 204
`, []Health{{Type: HealthHTTP, FixedPort: 8053, Path: "/healthz", ExpectStatus: 204, Interval: DefaultHealthInterval,
			Timeout: DefaultHealthTimeout, HealthyThreshold: 1, UnhealthyThreshold: 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := loadOne(t, testPlatform, "svc", "name = \"svc\"\nnode = \"rift\"\n\n[[components]]\nname = \"svc\"\nimage = \"registry.example.org/svc:v1\"\n"+tt.comp)
			if got := s.Components[0].HealthChecks(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("HealthChecks:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestHealthDeadline(t *testing.T) {
	tests := []struct {
		h    Health
		want time.Duration
	}{
		{defaultHealth(), 40 * time.Second},
		{Health{Interval: time.Second, HealthyThreshold: 1, UnhealthyThreshold: 3, StartPeriod: 5 * time.Second}, 9 * time.Second},
		{Health{Interval: 500 * time.Millisecond, HealthyThreshold: 2, UnhealthyThreshold: 2}, 2 * time.Second},
	}
	for _, tt := range tests {
		if got := tt.h.Deadline(); got != tt.want {
			t.Errorf("Deadline(%+v) = %s, want %s", tt.h, got, tt.want)
		}
	}
	var none Component
	if got := none.HealthDeadline(); got != 40*time.Second {
		t.Errorf("a component without checks gets %s, want the default check's 40s", got)
	}
}

func TestUpdateStrategy(t *testing.T) {
	route := `
[[components.routes]]
port = 443
mode = "l7"
`
	tests := []struct {
		name, top, comp, want string
	}{
		{"routed: blue-green", "", route, StrategyBlueGreen},
		{"no route: replace", "", "", StrategyReplace},
		{"fixed port: replace", "", "ports = [\"53:53\"]\n" + route, StrategyReplace},
		{"declared replace", "strategy = \"replace\"\n", route, StrategyReplace},
		{"declared blue-green without routes", "strategy = \"blue-green\"\n", "", StrategyBlueGreen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := loadOne(t, testPlatform, "svc", "name = \"svc\"\nnode = \"rift\"\n"+tt.top+"\n[[components]]\nname = \"svc\"\nimage = \"registry.example.org/svc:v1\"\n"+tt.comp)
			if got := s.UpdateStrategy(); got != tt.want {
				t.Fatalf("UpdateStrategy = %q, want %q", got, tt.want)
			}
		})
	}
}

// A definition that uses none of the rollout keys resolves to the same JSON
// (and so the same spec hash) as before they existed: upgrading mcp
// redeploys nothing.
func TestRolloutKeysLeaveOldHashes(t *testing.T) {
	s := loadOne(t, testPlatform, "svc", "name = \"svc\"\nnode = \"rift\"\n\n[[components]]\nname = \"svc\"\nimage = \"registry.example.org/svc:v1\"\n[[components.routes]]\nport = 443\nmode = \"l7\"\n")
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"strategy", "after", "health"} {
		if strings.Contains(string(b), `"`+k+`"`) {
			t.Errorf("resolved JSON holds %q although the file does not set it: %s", k, b)
		}
	}
}

func TestAfterResolved(t *testing.T) {
	one := func(name, after string) string {
		return "name = \"" + name + "\"\nnode = \"rift\"\n" + after + "\n[[components]]\nname = \"" + name + "\"\nimage = \"registry.example.org/" + name + ":v1\"\n"
	}
	repo := mustLoad(t, repoFS(testPlatform, map[string]string{
		"db":  one("db", ""),
		"api": one("api", `after = ["db"]`),
		"web": one("web", `after = ["api", "db"]`),
	}))
	if repo.Diagnostics.HasErrors() {
		t.Fatalf("a chain is not a cycle:\n%v", repo.Diagnostics)
	}
	for _, s := range repo.Services {
		if s.Name == "web" && !reflect.DeepEqual(s.After, []string{"api", "db"}) {
			t.Fatalf("web.After = %v", s.After)
		}
	}
}
