package planner

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"metacircular.net/mcp/spec"
)

// benchInput is n services planned against a node where a third are new, a
// third run an older version (image and env changes) and a third are up to
// date; a further n/20 deployed services are gone from the repo. Services
// alternate between the shapes of mcq (one L7 route) and metacrypt (two
// components, two L4 and one L7 routes).
func benchInput(n int) Input {
	desired := make([]spec.Service, 0, n)
	var deployed []spec.Service
	for i := range n {
		name := fmt.Sprintf("svc%05d", i)
		mk := func(version string) spec.Service {
			var s spec.Service
			if i%2 == 0 {
				s = mcq(version)
			} else {
				s = metacrypt(version)
			}
			rename(&s, name)
			return s
		}
		desired = append(desired, mk("v2.0.0"))
		switch i % 3 {
		case 1:
			deployed = append(deployed, mk("v1.0.0"))
		case 2:
			deployed = append(deployed, mk("v2.0.0"))
		}
	}
	for i := range n / 20 {
		s := mcq("v1.0.0")
		rename(&s, fmt.Sprintf("gone%05d", i))
		deployed = append(deployed, s)
	}
	return Input{Node: testNode, Domain: testDomain, Desired: desired, Features: allFeatures,
		Actual: applied(deployed...)}
}

// rename moves a fixture service to another name, hostnames included.
func rename(s *spec.Service, name string) {
	old := s.Name
	s.Name, s.File = name, "services/"+name+".toml"
	for ci := range s.Components {
		for ri := range s.Components[ci].Routes {
			r := &s.Components[ci].Routes[ri]
			if r.Hostname == svcHost(old) {
				r.Hostname = svcHost(name)
			}
		}
	}
}

// BenchmarkPlan reports, besides ns/op, the wall time per service
// (ns/service) and the CPU time per service (cpu-ns/service: user+system
// of the whole process over the loop, the garbage collector's workers
// included). On a shared machine the CPU time is the steadier measure of
// how planning grows with the number of services: it does not count the
// time the process waits for a core.
func BenchmarkPlan(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		in := benchInput(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			var steps int
			cpu0 := processCPU()
			for b.Loop() {
				steps = len(Compute(in).Steps)
			}
			cpu := processCPU() - cpu0
			b.ReportMetric(float64(steps), "steps")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/service")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/service")
		})
	}
}

// processCPU is the CPU time (user+system) the process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPlanNoChange is the agent's steady state: every service is
// deployed as desired.
func BenchmarkPlanNoChange(b *testing.B) {
	in := benchInput(1000)
	in.Actual = applied(in.Desired...)
	b.ReportAllocs()
	for b.Loop() {
		if p := Compute(in); !p.IsNoOp() {
			b.Fatal("expected no changes")
		}
	}
}

func BenchmarkHash(b *testing.B) {
	in := benchInput(1000)
	b.ReportAllocs()
	for b.Loop() {
		Hash(in)
	}
}

func BenchmarkRender(b *testing.B) {
	p := Compute(benchInput(1000))
	b.ReportAllocs()
	for b.Loop() {
		var w discard
		if err := Render(&w, p); err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
