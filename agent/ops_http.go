package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"metacircular.net/mcp/statuspage"
)

// opsListener is one TCP address and what it serves.
type opsListener struct {
	addr    string
	key     string // the config key(s) naming it, for errors
	handler http.Handler
}

// opsListeners builds the opt-in HTTP listeners: /metrics on [metrics]
// listen, the status page on [status_page] listen; one server when both
// name the same address.
func (a *Agent) opsListeners() []opsListener {
	page := statuspage.Handler(a, statuspage.Options{
		Refresh: a.cfg.StatusPage.Refresh.Duration,
		Events:  a.cfg.StatusPage.Events,
		Logger:  a.log,
	})
	m, p := a.cfg.Metrics.Listen, a.cfg.StatusPage.Listen
	switch {
	case m != "" && m == p:
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.Metrics().Handler())
		mux.Handle("/", page)
		return []opsListener{{addr: m, key: "metrics.listen and status_page.listen", handler: mux}}
	default:
		var out []opsListener
		if m != "" {
			mux := http.NewServeMux()
			mux.Handle("GET /metrics", a.Metrics().Handler())
			out = append(out, opsListener{addr: m, key: "metrics.listen", handler: mux})
		}
		if p != "" {
			out = append(out, opsListener{addr: p, key: "status_page.listen", handler: page})
		}
		return out
	}
}

// listenOps binds every opt-in listener, so that a taken port fails the
// start with a clear message instead of a later, quieter error.
func (a *Agent) listenOps(ctx context.Context) ([]net.Listener, []opsListener, error) {
	ls := a.opsListeners()
	var bound []net.Listener
	var lc net.ListenConfig
	for _, o := range ls {
		l, err := lc.Listen(ctx, "tcp", o.addr)
		if err != nil {
			for _, b := range bound {
				b.Close()
			}
			return nil, nil, fmt.Errorf("%s: %s: %w", a.cfg.File, o.key, err)
		}
		bound = append(bound, l)
	}
	return bound, ls, nil
}

// serveOps serves the bound listeners until ctx ends. The servers are
// read-only and small; timeouts keep a slow client from holding them.
func serveOps(ctx context.Context, log *slog.Logger, bound []net.Listener, ls []opsListener) error {
	errc := make(chan error, len(bound))
	var servers []*http.Server
	for i, l := range bound {
		srv := &http.Server{
			Handler:           ls[i].handler,
			ReadHeaderTimeout: 10 * time.Second,
			WriteTimeout:      30 * time.Second,
			BaseContext:       func(net.Listener) context.Context { return ctx },
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		servers = append(servers, srv)
		log.Info("serving "+ls[i].key, "addr", l.Addr().String())
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s on %s: %w", ls[i].key, l.Addr(), err)
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	for _, s := range servers {
		if s.Shutdown(sctx) != nil {
			s.Close()
		}
	}
	return err
}

// startOps binds the opt-in HTTP listeners and returns the function that
// serves them until ctx ends. It also tells the service manager the agent
// is ready once the first reconcile finished: called after the API socket
// exists, so "ready" means `mcp status` answers and describes the node.
func (a *Agent) startOps(ctx context.Context, log *slog.Logger) (serve func() error, err error) {
	bound, ls, err := a.listenOps(ctx)
	if err != nil {
		return nil, err
	}
	go func() {
		select {
		case <-a.FirstReconcile():
			last := a.Last()
			status := fmt.Sprintf("STATUS=reconciled %s: %s", short(last.Commit), last.Result)
			if err := sdNotify("READY=1\n" + status); err != nil {
				log.Warn("readiness notification", "err", err)
			}
		case <-ctx.Done():
		}
	}()
	return func() error {
		err := serveOps(ctx, log, bound, ls)
		if ctx.Err() != nil {
			_ = sdNotify("STOPPING=1")
		}
		return err
	}, nil
}
