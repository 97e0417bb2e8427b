package executor

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"metacircular.net/mcp/spec"
)

// containerSpec builds the full runtime description of one component from
// its resolved definition and the port leases. Everything comes from the
// registry and the spec, so the same call rebuilds a lost container.
func (e *Executor) containerSpec(ctx context.Context, svc spec.Service, comp spec.Component, slot int, digest, commit string) (ContainerSpec, error) {
	env, err := e.environment(ctx, svc, comp, slot)
	if err != nil && !isSecretError(err) {
		return ContainerSpec{}, err
	}
	cs := ContainerSpec{
		ID:        ContainerID(svc.Name, comp.Name, slot),
		Service:   svc.Name,
		Component: comp.Name,
		Slot:      slot,
		Image:     comp.Image,
		Digest:    digest,
		Env:       env,
		Secrets:   secretEnv(comp),
		Cmd:       comp.Cmd,
		User:      comp.User,
		Volumes:   e.hostVolumes(comp.Volumes),
		Restart:   comp.Restart,
		LogPath:   e.LogPath(svc.Name, comp.Name, slot),
		StopGrace: e.grace,
		Labels: map[string]string{
			LabelManaged:   "true",
			LabelService:   svc.Name,
			LabelComponent: comp.Name,
			LabelSlot:      slotName(slot),
			LabelVersion:   comp.Version,
			LabelCommit:    commit,
		},
	}
	cs.Labels[LabelRuntimeHash] = RuntimeHash(cs)
	// A secret whose value cannot be read (secrets.go) still leaves the
	// runtime hash known, as it covers digests only: the spec is returned
	// with the error so the converge pass can leave a matching container
	// alone. It must not be started.
	return cs, err
}

// hostVolumes maps the definition's host paths under the host root.
func (e *Executor) hostVolumes(vs []spec.Volume) []spec.Volume {
	if e.hostRoot == "" || e.hostRoot == "/" {
		return vs
	}
	out := make([]spec.Volume, len(vs))
	for i, v := range vs {
		v.Host = filepath.Join(e.hostRoot, v.Host)
		out[i] = v
	}
	return out
}

// environment is the definition's env plus the variables mcp owns:
//
//	PORT                      the component's only route, or its unnamed one
//	PORT_<ROUTE>              each named route
//	PEER_<COMPONENT>_<ROUTE>  127.0.0.1:<port> of every route of the other
//	                          components of the service (PEER_<COMPONENT>
//	                          for an unnamed route)
//
// Ports are leased idempotently, so asking again returns the same port.
func (e *Executor) environment(ctx context.Context, svc spec.Service, comp spec.Component, slot int) ([]string, error) {
	env := make([]string, 0, len(comp.Env)+len(comp.Routes)+4)
	var secretErr error
	for _, v := range comp.Env {
		val, err := e.envValue(ctx, svc.Name, comp.Name, v) // secrets.go
		if err != nil && secretErr == nil {
			secretErr = &secretError{err}
		}
		env = append(env, v.Name+"="+val)
	}
	for _, rt := range comp.Routes {
		port, err := e.ports.Lease(ctx, svc.Name, comp.Name, rt.Key(), slot)
		if err != nil {
			return nil, fmt.Errorf("port for route %s of %s/%s: %w", rt.Key(), svc.Name, comp.Name, err)
		}
		for _, name := range rt.EnvVars {
			env = append(env, name+"="+strconv.Itoa(port))
		}
	}
	var peers []string
	for _, other := range svc.Components {
		if other.Name == comp.Name {
			continue
		}
		for _, rt := range other.Routes {
			// Peers are reached on their active slot, which for a plain
			// deploy is the same slot; blue-green rewires this later.
			port, err := e.ports.Lease(ctx, svc.Name, other.Name, rt.Key(), slot)
			if err != nil {
				return nil, fmt.Errorf("peer port for route %s of %s/%s: %w", rt.Key(), svc.Name, other.Name, err)
			}
			peers = append(peers, PeerVar(other.Name, rt.Name)+"=127.0.0.1:"+strconv.Itoa(port))
		}
	}
	sort.Strings(peers)
	return append(env, peers...), secretErr
}

// PeerVar is the environment variable naming a peer route's address.
func PeerVar(component, route string) string {
	v := "PEER_" + envName(component)
	if route != "" {
		v += "_" + envName(route)
	}
	return v
}

func envName(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}
