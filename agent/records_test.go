package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/executor/dns"
	"metacircular.net/mcp/executor/dns/rfc2136"
	"metacircular.net/mcp/internal/testenv"
	"metacircular.net/mcp/registry"
)

const svcZone = "svc.mcp.test.internal"

// Records end to end through the agent, against a real bind9: a deploy
// publishes <service>.svc.mcp.<domain> for the node's addresses, a record
// deleted by hand comes back at the next reconcile, a wrong TSIG key fails
// the new service's record step with the server's answer and leaves the
// rest as it was, and a removal deletes exactly the service's records.
func TestRecordsThroughTheAgent(t *testing.T) {
	named := testenv.StartBind9(t, svcZone)
	secret := filepath.Join(t.TempDir(), "tsig.key")
	good, err := os.ReadFile(named.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	writeSecret := func(b []byte) {
		t.Helper()
		if err := os.WriteFile(secret, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeSecret(good)
	admin, err := rfc2136.New(rfc2136.Config{Server: named.Addr, KeyName: named.KeyName, SecretFile: named.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := admin.Set(ctx, svcZone, "other."+svcZone, "A", []string{"192.0.2.50"}, 60); err != nil {
		t.Fatal(err)
	}
	zone := func() []string {
		t.Helper()
		var out []string
		for _, name := range []string{"ns", "other", "web", "keep", "api"} {
			recs, err := admin.List(ctx, svcZone, name+"."+svcZone)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				out = append(out, fmt.Sprintf("%s %s %s", strings.TrimSuffix(r.Name, "."+svcZone), r.Type, r.Value))
			}
		}
		slices.Sort(out)
		return out
	}
	want := func(w ...string) {
		t.Helper()
		w = append(w, "ns A 127.0.0.1", "other A 192.0.2.50")
		slices.Sort(w)
		if got := zone(); !slices.Equal(got, w) {
			t.Fatalf("zone holds %q, want %q", got, w)
		}
	}

	n := newTestNode(t, withConfig(fmt.Sprintf(`
[[dns]]
zone = %q
driver = "rfc2136"
server = %q
tsig_key_name = %q
tsig_secret_file = %q
ttl = 60
timeout = "2s"
`, svcZone, named.Addr, named.KeyName, secret)))
	img := testenv.TestImage(t, n.registry, testenv.UniqueRepo("web"), "v1")
	platform := strings.Replace(n.platform(), `addresses = ["127.0.0.1"]`, `addresses = ["127.0.0.1", "::1"]`, 1)
	n.push(map[string]string{
		"mcp.toml":           platform,
		"services/web.toml":  service("web", img),
		"services/keep.toml": service("keep", img),
	}, "deploy web and keep")
	out := n.once()
	wantResult(t, out, ResultOK)
	published := []string{"web A 127.0.0.1", "web AAAA ::1", "keep A 127.0.0.1", "keep AAAA ::1"}
	want(published...)

	// Deleted behind mcp's back: the next reconcile (nothing changed in
	// the repo) puts it back.
	if err := admin.Delete(ctx, svcZone, dns.Record{Name: "web." + svcZone, Type: "AAAA", Value: "::1"}); err != nil {
		t.Fatal(err)
	}
	want(slices.DeleteFunc(slices.Clone(published), func(s string) bool { return s == "web AAAA ::1" })...)
	out = n.once()
	wantResult(t, out, ResultOK)
	if !slices.ContainsFunc(out.Repairs, func(r executor.Repair) bool { return r.Resource == "dns:web."+svcZone }) {
		t.Fatalf("repairs = %+v, want the web records restored", out.Repairs)
	}
	want(published...)

	// A wrong key: the new service's record step fails with the server's
	// answer; nothing else moves.
	writeSecret([]byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"))
	n.push(map[string]string{"services/api.toml": service("api", img)}, "deploy api")
	out = n.once()
	wantResult(t, out, ResultPartial)
	var apiErr error
	for _, s := range out.Services {
		if s.Service == "api" {
			apiErr = s.Err
		}
	}
	if !errors.Is(apiErr, dns.ErrRefused) || !strings.Contains(apiErr.Error(), "BADSIG") ||
		!strings.Contains(apiErr.Error(), named.Addr) || !strings.Contains(apiErr.Error(), named.KeyName) {
		t.Fatalf("api's error = %v, want ErrRefused naming the server, the key and BADSIG", apiErr)
	}
	want(published...)
	if _, ok := n.snapshot().Services["api"]; ok {
		t.Fatal("api is recorded as deployed after its record step failed")
	}
	if _, ok := n.containers()["api.api.a"]; ok {
		t.Fatal("api's container was left running after its record step failed")
	}

	// The key fixed: api is deployed and published.
	writeSecret(good)
	wantResult(t, n.once(), ResultOK)
	want(append(slices.Clone(published), "api A 127.0.0.1", "api AAAA ::1")...)

	// Removal deletes exactly web's records.
	n.remove([]string{"services/web.toml"}, "remove web")
	wantResult(t, n.once(), ResultOK)
	want("keep A 127.0.0.1", "keep AAAA ::1", "api A 127.0.0.1", "api AAAA ::1")
	reg, err := registry.Open(n.cfg.RegistryPath(), registry.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	sets, err := executor.ReadRecordSets(ctx, reg)
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, s := range sets {
		hosts = append(hosts, s.Hostname)
	}
	if !slices.Equal(hosts, []string{"api." + svcZone, "keep." + svcZone}) {
		t.Fatalf("recorded record sets: %v", hosts)
	}
}

func TestRecordStatusFromTheRegistry(t *testing.T) {
	reg, err := registry.Open(filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	set := executor.RecordSet{Hostname: "web." + svcZone, Zone: svcZone, Services: []string{"web"}, Records: []dns.Record{
		{Name: "web." + svcZone, Type: "A", Value: "10.0.0.1", TTL: 60},
		{Name: "web." + svcZone, Type: "A", Value: "10.0.0.2", TTL: 60},
		{Name: "web." + svcZone, Type: "AAAA", Value: "fd00::1", TTL: 60},
	}}
	if err := reg.Update(context.Background(), func(tx *registry.Tx) error { return tx.Put(registry.StoreRecords, set.Hostname, set) }); err != nil {
		t.Fatal(err)
	}
	a := &Agent{reg: reg, log: testLogger(t)}
	services := []api.ServiceStatus{{Name: "web"}, {Name: "other"}}
	a.recordStatus(context.Background(), services)
	want := []api.RecordStatus{
		{Name: "web." + svcZone, Type: "A", Values: []string{"10.0.0.1", "10.0.0.2"}, TTL: 60, Zone: svcZone},
		{Name: "web." + svcZone, Type: "AAAA", Values: []string{"fd00::1"}, TTL: 60, Zone: svcZone},
	}
	if !reflect.DeepEqual(services[0].Records, want) || services[1].Records != nil {
		t.Fatalf("records = %+v / %+v, want %+v", services[0].Records, services[1].Records, want)
	}
}
