package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"time"

	"metacircular.net/mcp/internal/version"
	"metacircular.net/mcp/registry"
)

// Event is one entry of the node's event history: GET /v1/events streams
// them. It is the registry's record as stored, so kinds added later need no
// change here.
type Event = registry.Event

// EventBackend is implemented by a Backend that keeps an event history. It
// is separate from Backend so that backends without events (test fakes,
// older agents) still satisfy Backend; the server answers 404 for them.
type EventBackend interface {
	// Events returns the events with Seq > after, oldest first.
	Events(ctx context.Context, after uint64) ([]Event, error)
}

// Version is the body of GET /v1/version: the agent's build, so the CLI can
// warn when it and the agent differ.
type Version struct {
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	// API is the newest API route set the agent serves ("v1").
	API string `json:"api"`
}

// CurrentVersion is this build's Version.
func CurrentVersion() Version {
	return Version{Version: version.Version, GoVersion: runtime.Version(), API: "v1"}
}

// registerOps adds the operator routes (events, version) to the mux.
func (s *Server) registerOps() {
	s.mux.HandleFunc("GET /v1/events", s.handleEvents)
	s.mux.HandleFunc("GET /v1/version", s.handleVersion)
}

func (s *Server) handleVersion(w http.ResponseWriter, _ *http.Request) {
	s.writeJSON(w, CurrentVersion())
}

// eventsRequest is a parsed GET /v1/events.
type eventsRequest struct {
	after  uint64
	last   int // -1: all kept events
	follow bool
}

func parseEventsRequest(r *http.Request) (eventsRequest, error) {
	req := eventsRequest{last: -1}
	for key, vals := range r.URL.Query() {
		if len(vals) != 1 {
			return req, fmt.Errorf("query parameter %q is given %d times", key, len(vals))
		}
		v := vals[0]
		switch key {
		case "after":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return req, fmt.Errorf("after: %q is not an event sequence number", v)
			}
			req.after = n
		case "n":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > maxTailLines {
				return req, fmt.Errorf("n: %q is not a number of events (0-%d)", v, maxTailLines)
			}
			req.last = n
		case "follow":
			f, err := strconv.ParseBool(v)
			if err != nil {
				return req, fmt.Errorf("follow: %q is not a boolean (1 or 0)", v)
			}
			req.follow = f
		default:
			return req, fmt.Errorf("unknown query parameter %q (known: after, n, follow)", key)
		}
	}
	return req, nil
}

// handleEvents streams events as JSON lines (application/x-ndjson), oldest
// first: those after ?after= (the last ?n= of them), then, with
// ?follow=1, new ones as they are recorded until the client leaves. Lines
// rather than one array so a follower can act on each event at once.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	eb, ok := s.b.(EventBackend)
	if !ok {
		writeError(w, http.StatusNotFound, "this agent keeps no event history")
		return
	}
	req, err := parseEventsRequest(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	evs, err := eb.Events(ctx, req.after)
	if err != nil {
		s.fail(w, r, "read events", err)
		return
	}
	if req.last >= 0 && len(evs) > req.last {
		evs = evs[len(evs)-req.last:]
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	after := req.after
	send := func(evs []Event) bool {
		for _, e := range evs {
			if err := enc.Encode(e); err != nil {
				return false // the client left
			}
			after = e.Seq
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	if !send(evs) || !req.follow {
		return
	}
	// Polling the registry is cheap (one read transaction, a cursor seek)
	// and needs no coupling between the loop and every open follower.
	tick := time.NewTicker(s.followInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		evs, err := eb.Events(ctx, after)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("api: follow events", "err", err)
			}
			return
		}
		if len(evs) > 0 && !send(evs) {
			return
		}
	}
}

// EventOptions select what Events returns.
type EventOptions struct {
	// After skips events up to this sequence number (0: from the oldest
	// kept).
	After uint64
	// Last keeps only the last N of the kept events; negative: all.
	Last int
	// Follow keeps the stream open for new events until ctx is done.
	Follow bool
}

// EventStream reads events from GET /v1/events one at a time.
type EventStream struct {
	body io.ReadCloser
	dec  *json.Decoder
}

// Next returns the next event; io.EOF when the agent ended the stream.
func (s *EventStream) Next() (Event, error) {
	var e Event
	if err := s.dec.Decode(&e); err != nil {
		if errors.Is(err, io.EOF) {
			return e, io.EOF
		}
		return e, fmt.Errorf("read event: %w", err)
	}
	return e, nil
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.body.Close() }

// Events opens the node's event history: GET /v1/events. The caller closes
// the stream; with Follow it ends when ctx is done.
func (c *Client) Events(ctx context.Context, opts EventOptions) (*EventStream, error) {
	q := url.Values{}
	if opts.After > 0 {
		q.Set("after", strconv.FormatUint(opts.After, 10))
	}
	if opts.Last >= 0 {
		q.Set("n", strconv.Itoa(opts.Last))
	}
	if opts.Follow {
		q.Set("follow", "1")
	}
	path := "/v1/events"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	resp, err := c.do(ctx, http.MethodGet, path)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, errorFrom(resp)
	}
	return &EventStream{body: resp.Body, dec: json.NewDecoder(bufio.NewReader(resp.Body))}, nil
}

// Version returns the agent's build: GET /v1/version. An agent from before
// the route existed answers 404 (matches ErrNotFound).
func (c *Client) Version(ctx context.Context) (Version, error) {
	var v Version
	err := c.getJSON(ctx, "/v1/version", &v)
	return v, err
}
