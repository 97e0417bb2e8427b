package cli

import (
	"bytes"
	"strings"
	"testing"

	"metacircular.net/mcp/api"
)

func TestRenderRecords(t *testing.T) {
	var b bytes.Buffer
	err := renderRecords(&b, []api.ServiceStatus{
		{Name: "mcq", Records: []api.RecordStatus{
			{Name: "mcq.svc.mcp.example.org", Type: "A", Values: []string{"10.0.0.5", "192.168.1.5"}, TTL: 60},
			{Name: "mcq.svc.mcp.example.org", Type: "AAAA", Values: []string{"fd00::5"}, TTL: 60},
		}},
		{Name: "quiet"},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"SERVICE", "mcq.svc.mcp.example.org", "10.0.0.5, 192.168.1.5", "AAAA", "fd00::5"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "quiet") {
		t.Errorf("a service without records is listed:\n%s", out)
	}
	b.Reset()
	if err := renderRecords(&b, []api.ServiceStatus{{Name: "mcq"}}); err != nil || b.Len() != 0 {
		t.Fatalf("no records: %q, %v", b.String(), err)
	}
}
