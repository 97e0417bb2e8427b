// Package mcproxystandin is a stand-in for mc-proxy's admin API: an
// in-process gRPC server implementing executor/mcproxy/proto/mcproxy.proto
// as mc-proxy documents its behaviour (AddRoute is an upsert keyed by
// listener and case-insensitive hostname; RemoveRoute; ListRoutes). It
// holds routes in memory and serves no traffic. It exists so the adapter
// can be contract-tested without mc-proxy; it is not mc-proxy.
package mcproxystandin

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "metacircular.net/mcp/executor/mcproxy/proto"
)

// Server is the stand-in.
type Server struct {
	pb.UnimplementedProxyAdminServer

	// Socket is the Unix socket it serves on.
	Socket string

	mu        sync.Mutex
	routes    map[string]*pb.Route
	listeners []string
	// alter, when set, changes every route as it is stored: tests use it
	// to play a proxy that silently drops a flag.
	alter func(*pb.Route)
	srv   *grpc.Server
}

// Start serves the stand-in on a socket in dir. listeners, when given, are
// the only listener addresses AddRoute accepts, as mc-proxy only routes on
// its configured listeners.
func Start(dir string, listeners ...string) (*Server, error) {
	s := &Server{Socket: filepath.Join(dir, "mc-proxy.sock"), routes: map[string]*pb.Route{}, listeners: listeners}
	_ = os.Remove(s.Socket)
	ln, err := net.Listen("unix", s.Socket)
	if err != nil {
		return nil, fmt.Errorf("mc-proxy stand-in: %w", err)
	}
	s.srv = grpc.NewServer()
	pb.RegisterProxyAdminServer(s.srv, s)
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Stop stops serving.
func (s *Server) Stop() { s.srv.Stop() }

// Alter installs fn to change every route stored from now on.
func (s *Server) Alter(fn func(*pb.Route)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alter = fn
}

// Delete removes a route behind the client's back, as an operator could.
func (s *Server) Delete(listener, hostname string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.routes, key(listener, hostname))
}

func key(listener, hostname string) string { return listener + "/" + strings.ToLower(hostname) }

// AddRoute implements the upsert.
func (s *Server) AddRoute(_ context.Context, req *pb.AddRouteRequest) (*pb.AddRouteResponse, error) {
	r := req.GetRoute()
	switch {
	case r == nil || r.GetListener() == "" || r.GetHostname() == "" || r.GetBackend() == "":
		return nil, status.Error(codes.InvalidArgument, "listener, hostname and backend are required")
	case r.GetMode() != pb.Mode_MODE_L4 && r.GetMode() != pb.Mode_MODE_L7:
		return nil, status.Errorf(codes.InvalidArgument, "unknown mode %v", r.GetMode())
	case r.GetMode() == pb.Mode_MODE_L7 && (r.GetTlsCert() == "" || r.GetTlsKey() == ""):
		return nil, status.Error(codes.InvalidArgument, "an l7 route needs tls_cert and tls_key")
	case len(s.listeners) > 0 && !slices.Contains(s.listeners, r.GetListener()):
		return nil, status.Errorf(codes.FailedPrecondition, "no listener %s", r.GetListener())
	}
	c := proto.Clone(r).(*pb.Route)
	c.Hostname = strings.ToLower(c.Hostname)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.alter != nil {
		s.alter(c)
	}
	s.routes[key(c.Listener, c.Hostname)] = c
	return &pb.AddRouteResponse{}, nil
}

// RemoveRoute deletes a route; absent is fine.
func (s *Server) RemoveRoute(_ context.Context, req *pb.RemoveRouteRequest) (*pb.RemoveRouteResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.routes, key(req.GetListener(), req.GetHostname()))
	return &pb.RemoveRouteResponse{}, nil
}

// ListRoutes returns every route, sorted by listener and hostname.
func (s *Server) ListRoutes(context.Context, *pb.ListRoutesRequest) (*pb.ListRoutesResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.routes))
	for k := range s.routes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	resp := &pb.ListRoutesResponse{}
	for _, k := range keys {
		resp.Routes = append(resp.Routes, proto.Clone(s.routes[k]).(*pb.Route))
	}
	return resp, nil
}
