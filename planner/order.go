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
	for i, nd := range p.nodes {
		nd.pos = i
	}
	indeg := make([]int, n)
	dependents := make([][]int, n)
	for i, nd := range p.nodes {
		kept := nd.deps[:0]
		for _, d := range nd.deps {
			if d.pos < 0 || slices.Contains(kept, d) {
				continue // dropped, or listed twice
			}
			kept = append(kept, d)
			dependents[d.pos] = append(dependents[d.pos], i)
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
	done := make([]bool, n)
	seq := make([]*node, 0, n)
	for len(seq) < n {
		if h.Len() == 0 {
			p.breakCycle(done, indeg, h)
		}
		i := heap.Pop(h).(int)
		done[i] = true
		seq = append(seq, p.nodes[i])
		for _, d := range dependents[i] {
			if indeg[d]--; indeg[d] == 0 {
				heap.Push(h, d)
			}
		}
	}

	out := make([]Step, n)
	for i, nd := range seq {
		nd.pos = i
	}
	for i, nd := range seq {
		out[i] = nd.Step
		if len(nd.deps) == 0 {
			continue
		}
		// DependsOn in execution order, which is also how they read best.
		slices.SortFunc(nd.deps, func(a, b *node) int { return cmp.Compare(a.pos, b.pos) })
		ids := make([]string, len(nd.deps))
		for j, d := range nd.deps {
			ids[j] = d.ID
		}
		out[i].DependsOn = ids
	}
	return out
}

// breakCycle releases the smallest waiting step, dropping its links to
// steps not yet emitted.
func (p *planner) breakCycle(done []bool, indeg []int, h *nodeHeap) {
	best := -1
	for i := range p.nodes {
		if !done[i] && indeg[i] > 0 && (best < 0 || h.less(i, best)) {
			best = i
		}
	}
	nd := p.nodes[best]
	kept := nd.deps[:0]
	for _, d := range nd.deps {
		if done[d.pos] {
			kept = append(kept, d)
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
