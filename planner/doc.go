// Package planner computes what the agent must do: a pure, deterministic
// function (Compute) from the desired services of one node and the node's
// recorded state to a Plan. No clock, filesystem, network or logger is used
// here; the same inputs give a byte-identical plan and the same hash, and
// `mcp plan` and the agent call the same function.
//
// # Resources
//
// A plan is a list of typed steps (Kind) on resources: a port lease per
// route and per fixed legacy port, an image per component (pulled and
// pinned), a container per component, a health wait after a container
// starts, a proxy route per route, a certificate per hostname and DNS
// records per hostname. Each step creates, updates or removes its resource
// (a health wait is ActionWait and changes nothing), says why (Reason), lists
// field-level Changes for updates, and names the steps it waits for
// (DependsOn). Kinds switched off in Features never appear.
//
// Decisions the planner makes:
//   - An inactive service (active = false) keeps its port leases (ports stay
//     stable) and its pinned images (starting it again is a start, not a
//     pull); its containers, routes, certificates and records are removed.
//   - Certificates: one per hostname of the service's routes, L4 routes
//     included. An L7 route's certificate is read by the proxy and must be
//     in place before the route is registered; an L4 route's is read by the
//     service itself (under /srv/<service>/certs) and must be in place
//     before its container starts.
//   - Records: one step per route hostname under svc.mcp.<Input.Domain>
//     (normally just <service>.svc.mcp.<domain>), pointing at the node's
//     addresses. Public hostnames live in zones mcp does not manage and get
//     no records; a service without routes gets none either.
//   - A certificate or record a service gives up while another desired
//     service on the node still uses the hostname is not removed.
//   - Ports are compared with the recorded leases, not the recorded
//     definition: a lease missing from the registry is leased again (and the
//     container, whose environment carries the port, replaced).
//   - Routes, certificates and records are not in registry.Snapshot, so
//     what exists of them is derived from the recorded definition under the
//     current Features. Turning a feature on therefore does not create the
//     resources of services already deployed until their definition changes.
//
// # Step IDs
//
// A step's ID is the stable address of its resource, unique in a plan and
// the same from one plan to the next:
//
//	<service>/<component>/port/<route>/<slot>   port lease (route key, or "fixed:<port>")
//	<service>/<component>/image                 image pulled and pinned
//	<service>/<component>/container/<slot>      container
//	<service>/<component>/health/<slot>         health wait
//	<service>/<component>/route/<route>         proxy route
//	<service>/cert/<hostname>                   certificate
//	<service>/record/<hostname>                 DNS records
//
// <route> is spec.Route.Key() ("default" for an unnamed route), <slot> is
// "a" or "b" (registry.SlotA/SlotB): the slot a component lives in is the
// active slot recorded in the registry, "a" for a new component. A
// blue-green update adds the other slot's container, health wait and
// leases next to the active ones without renaming anything (rollout.go).
// Component names and route keys are DNS labels and hostnames contain dots, so the forms cannot collide. A
// port lease's ID is its registry.Lease key with "port" inserted.
//
// # Order
//
// Steps are in execution order: a topological order of DependsOn in which,
// when several steps are ready, the smallest (service position, rank, ID)
// comes first. Services are positioned so that those going away come first
// (in reverse order, so what they release is free before others claim it),
// then core before worker, then by name. Inside a service, removals come
// first in reverse dependency order (record, route, container, certificate,
// image, port) and creates and updates follow, dependencies first (port,
// image, certificate, container, health, route, record). The dependencies
// are explicit:
//
//   - a container waits for its new leases, its image and the certificates
//     of its L4 routes, and for the removal of its routes that go away;
//   - a health wait waits for its container; a route for its container, its
//     health wait and (L7) its certificate; a record for the routes that
//     serve its hostname;
//   - on removal, a record goes before its route, a route before its
//     container, a container before its image, certificates and ports;
//   - a route that takes a hostname:listener another service gives up waits
//     for that service's step;
//   - in a blue-green update (rollout.go) the new slot's container starts
//     next to the old one, its routes move once every new container of the
//     service is healthy, and the old slot's containers are removed once
//     every route moved;
//   - a service's first steps wait for the health waits of the services
//     its `after` names, and services are positioned after them (`after`
//     wins over tier).
//
// Nothing depends on map iteration or input order.
//
// # Strategies
//
// An update of a running component uses the service's
// spec.Service.UpdateStrategy: replace updates the container in its active
// slot (same ports); blue-green, only on a node that manages routes, plans
// the whole service into the other slot and the route switch. Which slot is
// active is registry state, so a blue-green plan from slot b goes back to a.
//
// # Plan hash
//
// Plan.Hash (see Hash) is sha256 over a canonical, versioned encoding of
// the planner Version, the node, the domain and Features, the remove-all
// setting, each desired service's spec.Hash, the name and file of each
// invalid service, each deployed service's recorded spec hash and
// component states, and every recorded lease. Values decided at apply time
// (the port picked for a new lease, a digest not yet pulled, AppliedAt,
// drift seen in the runtime, when a certificate renewal falls due) are not
// inputs and stay out of the hash; the plan shows them as Deferred or as
// "(known after apply)".
//
// # Safety
//
// A service whose definition is invalid gets a ServiceError and no steps:
// it stays as deployed and does not block the others. A plan that would
// remove every deployed service (an empty or wrong checkout) plans no
// removal at all and says why in Plan.Refused, unless
// Input.AllowRemoveAll is set. Creates and updates of other desired
// services still go ahead: once one of them is deployed, the next plan no
// longer removes "every" service, so a tree that replaces all services by
// new ones is refused only once.
package planner
