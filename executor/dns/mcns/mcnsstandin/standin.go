// Package mcnsstandin is a STAND-IN for MCNS's REST API, for tests: an
// in-process net/http handler with an in-memory store that implements the
// API exactly as executor/dns/mcns/api.go documents it (which is what
// mcp assumes about MCNS, not MCNS itself). It checks the bearer token and
// validates every body, so the driver cannot pass by sending something a
// real server would refuse.
package mcnsstandin

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"metacircular.net/mcp/executor/dns"
)

// Server is the stand-in. The zero value is not usable; call New.
type Server struct {
	mu     sync.Mutex
	token  string
	zones  map[string][]dns.Record // zone → records, in insertion order
	fail   int                     // answer the next fail requests with failSt
	failSt int
}

// New returns a stand-in that accepts token and serves zones (names
// without the trailing dot), all empty.
func New(token string, zones ...string) *Server {
	s := &Server{token: token, zones: map[string][]dns.Record{}}
	for _, z := range zones {
		s.zones[dns.Fqdn(z)] = nil
	}
	return s
}

// SetToken changes the accepted token (a rotation, or a revocation).
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// FailNext answers the next n requests with status, e.g. 503.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail, s.failSt = n, status
}

// Records returns the records of zone, sorted, for tests to inspect.
func (s *Server) Records(zone string) []dns.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.zones[dns.Fqdn(zone)])
	slices.SortFunc(out, func(a, b dns.Record) int {
		return strings.Compare(a.Name+" "+a.Type+" "+a.Value, b.Name+" "+b.Type+" "+b.Value)
	})
	return out
}

// Remove deletes a record behind the driver's back (drift, for tests).
func (s *Server) Remove(zone string, r dns.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	z := dns.Fqdn(zone)
	s.zones[z] = slices.DeleteFunc(s.zones[z], func(h dns.Record) bool { return same(h, r) })
}

func same(a, b dns.Record) bool {
	return a.Name == dns.Fqdn(b.Name) && a.Type == strings.ToUpper(b.Type) && a.Value == b.Value
}

const prefix, suffix = "/v1/zones/", "/records"

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		writeErr(w, s.failSt, "injected failure")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.token || s.token == "" {
		writeErr(w, http.StatusUnauthorized, "invalid bearer token")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, prefix)
	zone, ok2 := strings.CutSuffix(rest, suffix)
	if !ok || !ok2 || zone == "" || strings.Contains(zone, "/") {
		writeErr(w, http.StatusNotFound, "no such endpoint")
		return
	}
	recs, ok := s.zones[zone]
	if !ok {
		writeErr(w, http.StatusNotFound, "zone "+zone+" is not served here")
		return
	}
	if r.Method == http.MethodGet {
		name := r.URL.Query().Get("name")
		out := []dns.Record{}
		for _, h := range recs {
			if name == "" || h.Name == dns.Fqdn(name) {
				out = append(out, h)
			}
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	rec, err := decode(r.Body, zone, r.Method != http.MethodDelete)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	i := slices.IndexFunc(recs, func(h dns.Record) bool { return same(h, rec) })
	switch r.Method {
	case http.MethodPost:
		if i >= 0 {
			writeErr(w, http.StatusConflict, "record exists")
			return
		}
		if rec.Type == "CNAME" && slices.ContainsFunc(recs, func(h dns.Record) bool { return h.Name == rec.Name }) ||
			slices.ContainsFunc(recs, func(h dns.Record) bool { return h.Name == rec.Name && h.Type == "CNAME" }) {
			writeErr(w, http.StatusConflict, "a CNAME cannot coexist with other records of the name")
			return
		}
		s.zones[zone] = append(recs, rec)
		writeJSON(w, http.StatusCreated, rec)
	case http.MethodPut:
		if i < 0 {
			writeErr(w, http.StatusNotFound, "no such record")
			return
		}
		recs[i].TTL = rec.TTL
		writeJSON(w, http.StatusOK, recs[i])
	case http.MethodDelete:
		if i < 0 {
			writeErr(w, http.StatusNotFound, "no such record")
			return
		}
		s.zones[zone] = slices.Delete(recs, i, i+1)
		w.WriteHeader(http.StatusNoContent)
	default:
		writeErr(w, http.StatusMethodNotAllowed, "method not allowed")
	}
}

// decode reads and validates one record body: known fields only, a name
// in the zone, a known type, a valid value and (unless deleting) a TTL.
func decode(body io.Reader, zone string, needTTL bool) (dns.Record, error) {
	var in struct {
		Name  *string `json:"name"`
		Type  *string `json:"type"`
		Value *string `json:"value"`
		TTL   *int    `json:"ttl"`
	}
	dec := json.NewDecoder(io.LimitReader(body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return dns.Record{}, fmt.Errorf("body: %w", err)
	}
	if in.Name == nil || in.Type == nil || in.Value == nil {
		return dns.Record{}, fmt.Errorf("body: name, type and value are required")
	}
	if *in.Name != dns.Fqdn(*in.Name) || strings.HasSuffix(*in.Name, ".") {
		return dns.Record{}, fmt.Errorf("name %q: want lower case, without the trailing dot", *in.Name)
	}
	if !dns.InZone(*in.Name, zone) {
		return dns.Record{}, fmt.Errorf("name %q is not in zone %s", *in.Name, zone)
	}
	if !slices.Contains([]string{"A", "AAAA", "CNAME", "TXT"}, *in.Type) {
		return dns.Record{}, fmt.Errorf("type %q is not one of A, AAAA, CNAME, TXT", *in.Type)
	}
	v, err := dns.Normalize(*in.Type, *in.Value)
	if err != nil {
		return dns.Record{}, err
	}
	if v != *in.Value {
		return dns.Record{}, fmt.Errorf("value %q is not in canonical form (%q)", *in.Value, v)
	}
	rec := dns.Record{Name: *in.Name, Type: *in.Type, Value: v}
	if in.TTL != nil {
		rec.TTL = *in.TTL
	}
	if needTTL && (in.TTL == nil || rec.TTL < 1 || rec.TTL > 1<<31-1) {
		return dns.Record{}, fmt.Errorf("ttl is required, 1-%d", 1<<31-1)
	}
	return rec, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
