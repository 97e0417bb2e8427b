package planner

import (
	"cmp"
	"container/heap"
	"slices"
	"strings"
)

// order returns the steps in execution order: a topological order of the
// dependency graph in which, whenever several steps are ready, the one with
// the smallest (service position, rank, ID) goes first. The tie-break is a
// total order over values derived from the inputs only, so the result never
// depends on map iteration or input order.
//
// Dependencies on steps that are not in the plan (dropped by the
// remove-all guard) are discarded. Should the graph have a cycle (two
// services swapping a route identity in one commit), the smallest waiting
// step is released with the links that close the cycle dropped, so every
// DependsOn still names an earlier step.
func (p *planner) order() []Step {
	n := len(p.nodes)
	indeg := make([]int, n)
	dependents := make([][]int, n)
	for i, nd := range p.nodes {
		slices.Sort(nd.deps)
		nd.deps = slices.Compact(nd.deps)
		kept := nd.deps[:0]
		for _, id := range nd.deps {
			j, ok := p.index[id]
			if !ok {
				continue
			}
			kept = append(kept, id)
			dependents[j] = append(dependents[j], i)
			indeg[i]++
		}
		nd.deps = kept
	}

	h := &nodeHeap{nodes: p.nodes}
	for i := range p.nodes {
		if indeg[i] == 0 {
			h.idx = append(h.idx, i)
		}
	}
	heap.Init(h)
	pos := make([]int, n) // position in the output, -1 while waiting
	for i := range pos {
		pos[i] = -1
	}
	out := make([]Step, 0, n)
	emit := func(i int) {
		pos[i] = len(out)
		out = append(out, p.nodes[i].Step)
		for _, d := range dependents[i] {
			if indeg[d]--; indeg[d] == 0 {
				heap.Push(h, d)
			}
		}
	}
	for len(out) < n {
		if h.Len() == 0 {
			p.breakCycle(pos, indeg, h)
		}
		emit(heap.Pop(h).(int))
	}

	// DependsOn in execution order, which is also how they read best.
	for i := range out {
		nd := p.nodes[p.index[out[i].ID]]
		if len(nd.deps) == 0 {
			continue
		}
		deps := slices.Clone(nd.deps)
		slices.SortFunc(deps, func(a, b string) int { return cmp.Compare(pos[p.index[a]], pos[p.index[b]]) })
		out[i].DependsOn = deps
	}
	return out
}

// breakCycle releases the smallest waiting step, dropping its links to
// steps not yet emitted.
func (p *planner) breakCycle(pos, indeg []int, h *nodeHeap) {
	best := -1
	for i := range p.nodes {
		if pos[i] < 0 && indeg[i] > 0 && (best < 0 || h.less(i, best)) {
			best = i
		}
	}
	nd := p.nodes[best]
	kept := nd.deps[:0]
	for _, id := range nd.deps {
		if pos[p.index[id]] >= 0 {
			kept = append(kept, id)
		}
	}
	nd.deps = kept
	indeg[best] = 0
	heap.Push(h, best)
}

// nodeHeap is a min-heap of node indices ordered by the tie-break.
type nodeHeap struct {
	nodes []*node
	idx   []int
}

func (h *nodeHeap) less(a, b int) bool {
	x, y := h.nodes[a], h.nodes[b]
	if x.svc != y.svc {
		return x.svc < y.svc
	}
	if x.rank != y.rank {
		return x.rank < y.rank
	}
	return strings.Compare(x.ID, y.ID) < 0
}

func (h *nodeHeap) Len() int           { return len(h.idx) }
func (h *nodeHeap) Less(i, j int) bool { return h.less(h.idx[i], h.idx[j]) }
func (h *nodeHeap) Swap(i, j int)      { h.idx[i], h.idx[j] = h.idx[j], h.idx[i] }
func (h *nodeHeap) Push(x any)         { h.idx = append(h.idx, x.(int)) }
func (h *nodeHeap) Pop() any {
	x := h.idx[len(h.idx)-1]
	h.idx = h.idx[:len(h.idx)-1]
	return x
}
