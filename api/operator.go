package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"metacircular.net/mcp/registry"
)

// Operator is what a Backend may also serve: the reconcile history and
// lifting a quarantine. The agent implements it; a Backend that does not
// answers 404 on these routes.
//
//	GET  /v1/history          History
//	POST /v1/retry/{service}  RetryResult
type Operator interface {
	// History returns the kept reconciles, oldest first.
	History(ctx context.Context) ([]registry.HistoryRecord, error)
	// Retry lifts every quarantine of the service so the next reconcile
	// tries its definition again; it returns how many were lifted.
	Retry(ctx context.Context, service string) (int, error)
}

// History is the body of GET /v1/history.
type History struct {
	// Records are the kept reconciles, oldest first; each lists its
	// services' outcomes.
	Records []registry.HistoryRecord `json:"records"`
}

// RetryResult is the body of POST /v1/retry/{service}.
type RetryResult struct {
	Service string `json:"service"`
	// Lifted is the number of quarantined definitions lifted (0: the
	// service was not quarantined).
	Lifted int `json:"lifted"`
}

func (s *Server) registerOperator() {
	s.mux.HandleFunc("GET /v1/history", s.handleHistory)
	s.mux.HandleFunc("POST /v1/retry/{service}", s.handleRetry)
}

func (s *Server) operator(w http.ResponseWriter) (Operator, bool) {
	op, ok := s.b.(Operator)
	if !ok {
		writeError(w, http.StatusNotFound, "this agent keeps no history or quarantine")
	}
	return op, ok
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	op, ok := s.operator(w)
	if !ok {
		return
	}
	recs, err := op.History(r.Context())
	if err != nil {
		s.fail(w, r, "read history", err)
		return
	}
	if recs == nil {
		recs = []registry.HistoryRecord{}
	}
	s.writeJSON(w, History{Records: recs})
}

func (s *Server) handleRetry(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("service")
	if !ValidName(name) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%q is not a valid service name", name))
		return
	}
	op, ok := s.operator(w)
	if !ok {
		return
	}
	n, err := op.Retry(r.Context(), name)
	if err != nil {
		s.fail(w, r, "lift quarantine", err)
		return
	}
	s.writeJSON(w, RetryResult{Service: name, Lifted: n})
}

// History returns the agent's kept reconciles: GET /v1/history.
func (c *Client) History(ctx context.Context) (History, error) {
	var h History
	err := c.getJSON(ctx, "/v1/history", &h)
	return h, err
}

// Retry lifts a service's quarantine: POST /v1/retry/{service}.
func (c *Client) Retry(ctx context.Context, service string) (RetryResult, error) {
	var res RetryResult
	path := "/v1/retry/" + url.PathEscape(service)
	resp, err := c.do(ctx, http.MethodPost, path)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	return res, decode(resp, path, &res)
}
