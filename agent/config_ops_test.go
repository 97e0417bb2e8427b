package agent

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseOpsConfig(t *testing.T) {
	tests := []struct {
		name    string
		extra   string
		metrics MetricsConfig
		page    StatusPageConfig
	}{
		{"off by default", "", MetricsConfig{}, defaultStatusPage()},
		{"metrics on loopback", "[metrics]\nlisten = \"127.0.0.1:9464\"\n",
			MetricsConfig{Listen: "127.0.0.1:9464"}, defaultStatusPage()},
		{"explicitly off", "[metrics]\nlisten = \"\"\n[status_page]\nlisten = \"\"\n",
			MetricsConfig{}, defaultStatusPage()},
		{"all interfaces, IPv6, host names", "[metrics]\nlisten = \":9464\"\n[status_page]\nlisten = \"[::1]:8080\"\n",
			MetricsConfig{Listen: ":9464"}, StatusPageConfig{Listen: "[::1]:8080", Refresh: Duration{DefaultStatusPageRefresh}, Events: DefaultStatusPageEvents}},
		{"page with every key", "[status_page]\nlisten = \"localhost:8080\"\nrefresh = \"1m\"\nevents = 50\n",
			MetricsConfig{}, StatusPageConfig{Listen: "localhost:8080", Refresh: Duration{time.Minute}, Events: 50}},
		{"refresh off, no events", "[status_page]\nlisten = \"127.0.0.1:8080\"\nrefresh = \"0s\"\nevents = 0\n",
			MetricsConfig{}, StatusPageConfig{Listen: "127.0.0.1:8080"}},
		{"one address for both", "[metrics]\nlisten = \"127.0.0.1:9464\"\n[status_page]\nlisten = \"127.0.0.1:9464\"\n",
			MetricsConfig{Listen: "127.0.0.1:9464"}, StatusPageConfig{Listen: "127.0.0.1:9464", Refresh: Duration{DefaultStatusPageRefresh}, Events: DefaultStatusPageEvents}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parse(t, base+tc.extra)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Metrics, tc.metrics) {
				t.Errorf("metrics = %+v, want %+v", cfg.Metrics, tc.metrics)
			}
			if !reflect.DeepEqual(cfg.StatusPage, tc.page) {
				t.Errorf("status_page = %+v, want %+v", cfg.StatusPage, tc.page)
			}
		})
	}
}

func TestParseOpsConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		want  []string
	}{
		{"no port", "[metrics]\nlisten = \"127.0.0.1\"\n",
			[]string{`agent.toml: metrics.listen: "127.0.0.1" is not host:port (e.g. "127.0.0.1:9464"; "" turns it off)`}},
		{"port zero", "[metrics]\nlisten = \"127.0.0.1:0\"\n",
			[]string{`agent.toml: metrics.listen: "127.0.0.1:0": port "0" is outside 1-65535`}},
		{"port out of range", "[status_page]\nlisten = \"127.0.0.1:70000\"\n",
			[]string{`agent.toml: status_page.listen: "127.0.0.1:70000": port "70000" is outside 1-65535`}},
		{"bad host", "[status_page]\nlisten = \"no_such host:80\"\n",
			[]string{`agent.toml: status_page.listen: "no_such host:80": "no_such host" is neither an IP address nor a host name`}},
		{"wrong type", "[metrics]\nlisten = 9464\n",
			[]string{`agent.toml: metrics.listen: must be a string, not integer 9464`}},
		{"not a table", "metrics = true\n",
			[]string{`agent.toml: metrics: must be a table ([metrics]), not boolean true`}},
		{"unknown key", "[metrics]\nlisten = \"127.0.0.1:9464\"\npath = \"/m\"\n",
			[]string{`agent.toml: metrics.path: unknown key (known in [metrics]: listen)`}},
		{"refresh too short", "[status_page]\nrefresh = \"100ms\"\n",
			[]string{`agent.toml: status_page.refresh: 100ms is outside 1s-1h0m0s (or 0s: off)`}},
		{"refresh not a duration", "[status_page]\nrefresh = \"often\"\n",
			[]string{`agent.toml: status_page.refresh: "often" is not a duration (e.g. "10s"; "0s" turns it off)`}},
		{"too many events", "[status_page]\nevents = 5000\n",
			[]string{`agent.toml: status_page.events: 5000 is outside 0-1000`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Tables must follow the top-level keys, so a top-level extra
			// goes first.
			src := base + tc.extra
			if !strings.HasPrefix(tc.extra, "[") {
				src = tc.extra + base
			}
			_, err := parse(t, src)
			if err == nil {
				t.Fatal("no error")
			}
			var errs ConfigErrors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T: %v", err, err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}
