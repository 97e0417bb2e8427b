package cli

import (
	"strings"
	"testing"

	"metacircular.net/mcp/api"
)

func TestRenderRoutes(t *testing.T) {
	var b strings.Builder
	err := renderRoutes(&b, []api.ServiceStatus{
		{Name: "mcq"},
		{Name: "web", Routes: []api.RouteStatus{
			{Component: "web", Route: "default", Listener: ":443", Hostname: "web.svc.mcp.example.org", Mode: "l7", Backend: "127.0.0.1:10000", Confirmed: true},
			{Component: "api", Route: "grpc", Listener: ":9443", Hostname: "web.svc.mcp.example.org", Mode: "l4", Backend: "127.0.0.1:10002", Problem: "missing from the proxy"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `
SERVICE  COMPONENT  LISTENER  HOSTNAME                 MODE  BACKEND          PROXY
web      web        :443      web.svc.mcp.example.org  l7    127.0.0.1:10000  confirmed
web      api        :9443     web.svc.mcp.example.org  l4    127.0.0.1:10002  not confirmed: missing from the proxy
`
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := renderRoutes(&b, []api.ServiceStatus{{Name: "mcq"}}); err != nil || b.Len() != 0 {
		t.Fatalf("no routes printed %q, %v", b.String(), err)
	}
}
