package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// maxRequestBody bounds what a client may send. No route takes a body yet
// (POST /v1/sync ignores it), so this only stops a confused or hostile
// client from streaming into the agent.
const maxRequestBody = 64 << 10

// maxTailLines bounds ?n= so a typo cannot make the agent scan a log file
// for billions of lines; the whole file is available by leaving n out.
const maxTailLines = 1_000_000

// Server serves the API for one Backend. It is an http.Handler; Listen puts
// it on a Unix socket.
type Server struct {
	b              Backend
	mux            *http.ServeMux
	log            *slog.Logger
	followInterval time.Duration
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets where the server reports failures it cannot send to the
// client (a backend error behind a 500, a write to a vanished client). The
// default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(s *Server) { s.log = l }
}

// WithFollowInterval sets how often a followed log file is checked for new
// lines, truncation and rotation (default 250ms). Polling rather than
// inotify keeps one code path for every kind of file system and rotation.
func WithFollowInterval(d time.Duration) Option {
	return func(s *Server) {
		if d > 0 {
			s.followInterval = d
		}
	}
}

// NewServer returns the API handler backed by b.
func NewServer(b Backend, opts ...Option) *Server {
	s := &Server{
		b:              b,
		mux:            http.NewServeMux(),
		log:            slog.New(slog.DiscardHandler),
		followInterval: 250 * time.Millisecond,
	}
	for _, o := range opts {
		o(s)
	}
	s.mux.HandleFunc("GET /v1/status", s.handleStatus)
	s.mux.HandleFunc("GET /v1/status/{service}", s.handleServiceStatus)
	s.mux.HandleFunc("GET /v1/containers", s.handleContainers)
	s.mux.HandleFunc("GET /v1/snapshot", s.handleSnapshot)
	s.mux.HandleFunc("POST /v1/sync", s.handleSync)
	s.mux.HandleFunc("GET /v1/logs/{service}/{component}", s.handleLogs)
	// operator.go: history and retry.
	s.registerOperator()
	s.registerOps() // events, version (events.go)
	return s
}

// ServeHTTP routes the request. Requests no route matches get the mux's
// status (404, or 405 with Allow) but as a JSON error like every other one.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
	// Handler only looks the route up; ServeHTTP is what fills in the
	// request's path values, so a match is served by the mux itself.
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	rec := &statusRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	switch rec.code {
	case http.StatusMethodNotAllowed:
		w.Header()["Allow"] = rec.header["Allow"]
		writeError(w, rec.code, fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path))
	case http.StatusMovedPermanently, http.StatusPermanentRedirect:
		// The mux cleans paths like /v1//status by redirecting; pass that on.
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.code)
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	}
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.b.Status(r.Context())
	if err != nil {
		s.fail(w, r, "read status", err)
		return
	}
	if st.Services == nil {
		st.Services = []ServiceStatus{}
	}
	s.writeJSON(w, st)
}

func (s *Server) handleServiceStatus(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("service")
	if !ValidName(name) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%q is not a valid service name", name))
		return
	}
	st, err := s.b.Status(r.Context())
	if err != nil {
		s.fail(w, r, "read status", err)
		return
	}
	svc, ok := st.Service(name)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("service %q is not known on node %s", name, st.Node))
		return
	}
	st.Services = []ServiceStatus{svc}
	s.writeJSON(w, st)
}

func (s *Server) handleContainers(w http.ResponseWriter, r *http.Request) {
	cs, err := s.b.Containers(r.Context())
	if err != nil {
		s.fail(w, r, "list containers", err)
		return
	}
	if cs == nil {
		cs = []Container{}
	}
	s.writeJSON(w, ContainerList{Containers: cs})
}

func (s *Server) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	snap, err := s.b.Snapshot(r.Context())
	if err != nil {
		s.fail(w, r, "read snapshot", err)
		return
	}
	s.writeJSON(w, snap)
}

func (s *Server) handleSync(w http.ResponseWriter, r *http.Request) {
	// Drain the (ignored) body so an oversized one is refused rather than
	// silently cut off.
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("read request body: %v", err))
		return
	}
	res, err := s.b.Sync(r.Context())
	if err != nil {
		s.fail(w, r, "reconcile", err)
		return
	}
	if res.Services == nil {
		res.Services = []ServiceStatus{}
	}
	s.writeJSON(w, res)
}

// logsRequest is a parsed GET /v1/logs/{service}/{component}.
type logsRequest struct {
	service, component string
	lines              int // -1: the whole file
	follow             bool
}

// parseLogsRequest checks the path values and the query. Unknown query
// parameters are refused: an agent that cannot honour a parameter says so
// instead of quietly doing something else.
func parseLogsRequest(r *http.Request) (logsRequest, error) {
	req := logsRequest{service: r.PathValue("service"), component: r.PathValue("component"), lines: -1}
	if !ValidName(req.service) {
		return req, fmt.Errorf("%q is not a valid service name", req.service)
	}
	if !ValidName(req.component) {
		return req, fmt.Errorf("%q is not a valid component name", req.component)
	}
	q := r.URL.Query()
	for key, vals := range q {
		if len(vals) != 1 {
			return req, fmt.Errorf("query parameter %q is given %d times", key, len(vals))
		}
		v := vals[0]
		switch key {
		case "n":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > maxTailLines {
				return req, fmt.Errorf("n: %q is not a number of lines (0-%d)", v, maxTailLines)
			}
			req.lines = n
		case "follow":
			f, err := strconv.ParseBool(v)
			if err != nil {
				return req, fmt.Errorf("follow: %q is not a boolean (1 or 0)", v)
			}
			req.follow = f
		default:
			return req, fmt.Errorf("unknown query parameter %q (known: n, follow)", key)
		}
	}
	return req, nil
}

func (s *Server) handleLogs(w http.ResponseWriter, r *http.Request) {
	req, err := parseLogsRequest(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	path, err := s.b.LogFile(req.service, req.component)
	if err != nil {
		s.fail(w, r, "find log file", err)
		return
	}
	s.serveLog(w, r, req, path)
}

// fail answers with the status err calls for. Server-side failures are
// logged as well, since the client may not be the one who can fix them.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, doing string, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrUnavailable), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
	}
	if code == http.StatusInternalServerError {
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "doing", doing, "err", err)
	}
	writeError(w, code, err.Error())
}

func (s *Server) writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.log.Warn("api: write response", "err", err)
	}
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	// Encoding a struct of one string cannot fail; a write error means the
	// client left, and there is no one left to tell.
	_ = json.NewEncoder(w).Encode(errorBody{Error: msg})
}

// statusRecorder captures the status and headers the mux's own 404/405
// handlers would send, so ServeHTTP can answer in JSON instead.
type statusRecorder struct {
	header http.Header
	code   int
}

func (r *statusRecorder) Header() http.Header { return r.header }
func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return len(p), nil
}
