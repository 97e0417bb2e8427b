package statuspage

import (
	"context"
	"fmt"
	"html/template"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"metacircular.net/mcp/api"
)

// view is everything the template shows.
type view struct {
	Status    api.Status
	Generated time.Time
	Refresh   int // seconds; 0: no refresh
	// Err says why the status could not be read; the page still renders.
	Err      string
	Summary  []stateCount
	Services []serviceView
	Events   []eventView
	// EventsErr says why the events could not be read.
	EventsErr string
}

type stateCount struct {
	State string
	N     int
}

type serviceView struct {
	api.ServiceStatus
	Components []componentView
}

// componentView adds what the template needs beyond api.ComponentStatus.
// Later features fill the extra fields here from the fields they add to
// api.ComponentStatus (routes with host names, certificates, health).
type componentView struct {
	api.ComponentStatus
	// Routes are the leased ports by route key, sorted.
	Routes []routeView
	// CertExpiry and Health are "" until the certificate and health
	// features report them in api.ComponentStatus.
	CertExpiry string
	Health     string
}

type routeView struct {
	Name string
	Port int
}

type eventView struct {
	api.Event
	Age string
}

func build(ctx context.Context, src Source, opts Options) view {
	v := view{Generated: opts.Now(), Refresh: int(opts.Refresh / time.Second)}
	st, err := src.Status(ctx)
	if err != nil {
		v.Err = err.Error()
	}
	v.Status = st
	counts := map[string]int{}
	for _, s := range st.Services {
		counts[s.State]++
		sv := serviceView{ServiceStatus: s}
		for _, c := range s.Components {
			sv.Components = append(sv.Components, componentOf(c))
		}
		v.Services = append(v.Services, sv)
	}
	for _, state := range slices.Sorted(maps.Keys(counts)) {
		v.Summary = append(v.Summary, stateCount{State: state, N: counts[state]})
	}
	if opts.Events > 0 {
		evs, err := src.Events(ctx, 0)
		if err != nil {
			v.EventsErr = err.Error()
		}
		if len(evs) > opts.Events {
			evs = evs[len(evs)-opts.Events:]
		}
		for i := len(evs) - 1; i >= 0; i-- { // newest first
			v.Events = append(v.Events, eventView{Event: evs[i], Age: age(v.Generated, evs[i].Time)})
		}
	}
	return v
}

func componentOf(c api.ComponentStatus) componentView {
	cv := componentView{ComponentStatus: c}
	for _, k := range slices.Sorted(maps.Keys(c.Ports)) {
		cv.Routes = append(cv.Routes, routeView{Name: k, Port: c.Ports[k]})
	}
	return cv
}

// age says how long ago t was, coarsely: what a glance needs.
func age(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h ago"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d ago"
}

var funcs = template.FuncMap{
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12]
		}
		return s
	},
	"shortHash": func(h string) string {
		algo, hex, ok := strings.Cut(h, ":")
		if ok && len(hex) > 12 {
			return algo + ":" + hex[:12]
		}
		return h
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.Format("2006-01-02 15:04:05 MST")
	},
	"took": func(r api.Reconcile) string {
		if r.Started.IsZero() || r.Finished.IsZero() {
			return ""
		}
		return r.Finished.Sub(r.Started).Round(time.Millisecond).String()
	},
	// stateClass maps a service, component or result state to one of a
	// few CSS classes, so a new state still gets a sensible colour.
	"stateClass": func(state string) string {
		switch state {
		case api.StateRunning, api.ResultOK, api.ResultSkipped:
			return "good"
		case api.StateFailed, api.StateInvalid, api.ComponentCrashLoop, api.ComponentMissing:
			return "bad"
		case api.StateDegraded, api.ResultPartial, api.StateDeploying, api.ComponentRestarting:
			return "warn"
		}
		return "neutral"
	},
	"eventClass": func(kind string) string {
		switch kind {
		case "failure", "invalid", "crash-loop", "quarantine", "revert":
			return "bad"
		case "drift", "restart":
			return "warn"
		case "deploy":
			return "good"
		}
		return "neutral"
	},
	"orDash": func(s string) string {
		if s == "" {
			return "—"
		}
		return s
	},
	"port": func(r routeView) string {
		if name, ok := strings.CutPrefix(r.Name, "fixed:"); ok {
			return fmt.Sprintf("%s (fixed)", name)
		}
		return fmt.Sprintf("%s → %d", r.Name, r.Port)
	},
}
