package spec

import (
	"fmt"
	"testing"
	"testing/fstest"
)

// benchRepo generates n services in the shape of the examples: two
// components, three routes, env and a volume each.
func benchRepo(n int) fstest.MapFS {
	fsys := fstest.MapFS{"mcp.toml": {Data: []byte(testPlatform)}}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("svc%d", i)
		body := fmt.Sprintf(`name = %[1]q
node = "rift"
version = "v1.%[2]d.0"

[[components]]
name = "api"
env = ["LOG_LEVEL=info", "DB=/srv/%[1]s/db.sqlite"]
volumes = ["/srv/%[1]s/certs:/certs:ro"]

[[components.routes]]
name = "rest"
port = 8443
mode = "l4"

[[components.routes]]
name = "grpc"
port = 9443
mode = "l4"

[[components]]
name = "web"

[[components.routes]]
port = 443
mode = "l7"
`, name, i)
		fsys["services/"+name+".toml"] = &fstest.MapFile{Data: []byte(body)}
	}
	return fsys
}

func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{100, 1000} {
		fsys := benchRepo(n)
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				repo, err := Load(fsys)
				if err != nil || len(repo.Services) != n {
					b.Fatalf("err %v, %d services, %v", err, len(repo.Services), repo.Diagnostics)
				}
			}
		})
	}
}
