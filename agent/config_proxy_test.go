package agent

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"metacircular.net/mcp/executor"
)

const proxyBase = `node = "n1"
state_dir = "/var/lib/mcp"
[git]
url = "/srv/git/desired.git"
`

func parseProxy(t *testing.T, table string) (*Config, error) {
	t.Helper()
	return ParseConfig(strings.NewReader(proxyBase+table), "agent.toml")
}

func TestProxyConfigDefaults(t *testing.T) {
	cfg, err := parseProxy(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Proxy.Driver != "" || cfg.Proxy.BackendHost != "127.0.0.1" || cfg.Proxy.CertDir != "/srv/mc-proxy/certs" {
		t.Fatalf("defaults: %+v", cfg.Proxy)
	}
}

func TestProxyConfigHAProxy(t *testing.T) {
	cfg, err := parseProxy(t, `
[proxy]
driver = "haproxy"
listeners = [443, { port = 8443, address = "127.0.0.1" }]
master_socket = "/run/haproxy/master.sock"
cert_dir = "/srv/certs"
`)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Proxy
	want := []executor.Listener{{Port: 443}, {Address: "127.0.0.1", Port: 8443}}
	if p.ConfigDir != DefaultHAProxyConfigDir || p.AdminSocket != DefaultHAProxyAdminSocket ||
		p.MasterSocket != "/run/haproxy/master.sock" || p.CertDir != "/srv/certs" || !slices.Equal(p.Listeners, want) {
		t.Fatalf("haproxy: %+v", p)
	}
	if got := p.ListenerAddrs(); !slices.Equal(got, []string{":443", "127.0.0.1:8443"}) {
		t.Fatalf("listener addresses %v", got)
	}
	// The array-of-tables form reads the same.
	cfg, err = parseProxy(t, `
[proxy]
driver = "haproxy"
[[proxy.listeners]]
port = 443
[[proxy.listeners]]
port = 8443
address = "127.0.0.1"
`)
	if err != nil || !slices.Equal(cfg.Proxy.Listeners, want) {
		t.Fatalf("[[proxy.listeners]]: %v %+v", err, cfg)
	}
}

func TestProxyConfigMCProxy(t *testing.T) {
	cfg, err := parseProxy(t, `
[proxy]
driver = "mc-proxy"
backend_host = "10.0.0.5"
`)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Proxy.Socket != DefaultMCProxySocket || cfg.Proxy.BackendHost != "10.0.0.5" || len(cfg.Proxy.Listeners) != 0 {
		t.Fatalf("mc-proxy: %+v", cfg.Proxy)
	}
}

func TestProxyConfigErrors(t *testing.T) {
	cases := map[string]struct{ table, want string }{
		"unknown driver":       {`driver = "nginx"`, `proxy.driver: "nginx" is not one of "haproxy", "mc-proxy"`},
		"haproxy no listener":  {`driver = "haproxy"`, "proxy.listeners: haproxy needs at least one listener"},
		"socket with haproxy":  {"driver = \"haproxy\"\nlisteners = [443]\nsocket = \"/x.sock\"", `proxy.socket: is only used with driver = "mc-proxy"`},
		"haproxy keys on mcp":  {"driver = \"mc-proxy\"\nadmin_socket = \"/x.sock\"", `proxy.admin_socket: is only used with driver = "haproxy"`},
		"settings no driver":   {"listeners = [443]", "proxy.driver: is required when [proxy] has settings"},
		"port out of range":    {"driver = \"haproxy\"\nlisteners = [70000]", "proxy.listeners[0]: port 70000 is outside 1-65535"},
		"port twice":           {"driver = \"haproxy\"\nlisteners = [443, 443]", "proxy.listeners[1]: port 443 is listed twice"},
		"bad address":          {"driver = \"haproxy\"\nlisteners = [{ port = 443, address = \"any\" }]", `proxy.listeners[0].address: "any" is not an IP address`},
		"unknown key":          {"driver = \"haproxy\"\nlisteners = [443]\nlisten = 1", "proxy.listen: unknown key"},
		"relative dir":         {"driver = \"haproxy\"\nlisteners = [443]\nconfig_dir = \"etc/haproxy\"", `proxy.config_dir: "etc/haproxy" is not an absolute path`},
		"haproxy backend name": {"driver = \"haproxy\"\nlisteners = [443]\nbackend_host = \"node1\"", `proxy.backend_host: "node1": haproxy needs an IP address`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := parseProxy(t, "[proxy]\n"+c.table+"\n")
			var ce ConfigErrors
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want ConfigErrors", err)
			}
			if !strings.Contains(err.Error(), "agent.toml: "+c.want) {
				t.Fatalf("err =\n%v\nwant it to contain %q", err, c.want)
			}
		})
	}
}
