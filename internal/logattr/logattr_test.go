package logattr

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
)

func TestServiceAttrsAlwaysPresent(t *testing.T) {
	tests := []struct {
		name                             string
		service, component, commit, plan string
	}{
		{"all known", "web", "api", "0123456789ab", "sha256:ff"},
		{"repair outside a plan", "web", "api", "0123456789ab", ""},
		{"service-level", "web", "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, nil))
			log.Info("step", With(Service(tc.service, tc.component, tc.commit, tc.plan), "err", "boom")...)
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{KeyService: tc.service, KeyComponent: tc.component, KeyCommit: tc.commit, KeyPlan: tc.plan, "err": "boom"}
			for k, v := range want {
				got, ok := line[k]
				if !ok || got != v {
					t.Errorf("%s = %v (present %v), want %q", k, got, ok, v)
				}
			}
		})
	}
}
