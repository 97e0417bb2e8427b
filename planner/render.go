package planner

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// RenderOption changes how Render prints a plan.
type RenderOption func(*renderConfig)

type renderConfig struct {
	deps bool
}

// WithDependencies prints each step's DependsOn under it.
func WithDependencies() RenderOption {
	return func(c *renderConfig) { c.deps = true }
}

var symbols = map[Action]string{
	ActionCreate: "+",
	ActionUpdate: "~",
	ActionRemove: "-",
	ActionWait:   "=",
}

// Render prints p the way `terraform plan` does: per service a header, then
// its steps (+ create, ~ update with its field changes, - remove, = wait),
// each with its reason; then the invalid services with their diagnostics,
// the refusal if any, and a summary line. The output has no colour and
// depends on p alone. Services are printed in plan order and the steps of a
// service in execution order.
func Render(w io.Writer, p *Plan, opts ...RenderOption) error {
	var cfg renderConfig
	for _, o := range opts {
		o(&cfg)
	}
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "Plan for node %q (planner v%d)\n", p.Node, p.Version)
	fmt.Fprintf(b, "Hash: %s\n", p.Hash)

	if len(p.Steps) > 0 {
		b.WriteString("\nSymbols: + create, ~ update, - remove, = wait\n")
		// Group by service in order of first appearance: execution may
		// interleave two services when one waits for the other.
		bySvc := map[string][]int{}
		var order []string
		for i := range p.Steps {
			s := p.Steps[i].Service
			if _, ok := bySvc[s]; !ok {
				order = append(order, s)
			}
			bySvc[s] = append(bySvc[s], i)
		}
		info := make(map[string]ServicePlan, len(p.Services))
		for _, sp := range p.Services {
			info[sp.Name] = sp
		}
		for _, s := range order {
			b.WriteString("\n")
			writeServiceHeader(b, s, info[s])
			for _, i := range bySvc[s] {
				writeStep(b, &p.Steps[i], cfg)
			}
		}
	}

	if len(p.Errors) > 0 {
		fmt.Fprintf(b, "\nInvalid services (left as deployed):\n")
		for _, e := range p.Errors {
			state := "not deployed"
			if e.Deployed {
				state = "the deployed version keeps running"
			}
			fmt.Fprintf(b, "  ! %s (%s): %s\n", e.Service, e.File, state)
			for _, d := range e.Diagnostics {
				fmt.Fprintf(b, "      %s\n", d.Error())
			}
		}
	}
	if p.Refused != "" {
		fmt.Fprintf(b, "\nRefused: %s.\n", strings.TrimSuffix(p.Refused, "."))
	}
	b.WriteString("\n")
	b.WriteString(Summary(p))
	b.WriteString("\n")
	return b.Flush()
}

// Summary is the plan's last line, e.g. "Plan: 5 to create, 2 to update,
// 1 to remove. 1 service invalid (left as deployed)."
func Summary(p *Plan) string {
	var s string
	if p.IsNoOp() {
		switch {
		case p.Refused != "":
			s = "No changes planned: removal refused."
		case len(p.Errors) > 0:
			s = "No changes to the valid services."
		default:
			return "No changes. The node matches the desired state."
		}
	} else {
		c, u, r := p.Counts()
		s = fmt.Sprintf("Plan: %d to create, %d to update, %d to remove.", c, u, r)
	}
	if n := len(p.Errors); n == 1 {
		s += " 1 service invalid (left as deployed)."
	} else if n > 1 {
		s += fmt.Sprintf(" %d services invalid (left as deployed).", n)
	}
	return s
}

func writeServiceHeader(b *bufio.Writer, name string, sp ServicePlan) {
	b.WriteString("# ")
	b.WriteString(name)
	if sp.File != "" {
		fmt.Fprintf(b, " (%s)", sp.File)
	}
	if sp.Reason != "" {
		b.WriteString(": ")
		b.WriteString(sp.Reason)
	}
	b.WriteString("\n")
}

func writeStep(b *bufio.Writer, s *Step, cfg renderConfig) {
	fmt.Fprintf(b, "  %s %-9s %s: %s\n", symbols[s.Action], s.Kind, s.ID, s.Reason)
	const ind = "      "
	if s.Detail != "" {
		b.WriteString(ind + s.Detail + "\n")
	}
	width := 0
	for _, c := range s.Changes {
		width = max(width, len(c.Field))
	}
	for _, c := range s.Changes {
		fmt.Fprintf(b, "%s%-*s %s → %s", ind, width+1, c.Field+":", c.Old, c.New)
		if c.Forces {
			b.WriteString("  # forces replacement")
		}
		b.WriteString("\n")
	}
	for _, d := range s.Deferred {
		b.WriteString(ind + "(" + d + ")\n")
	}
	if cfg.deps && len(s.DependsOn) > 0 {
		b.WriteString(ind + "after: " + strings.Join(s.DependsOn, ", ") + "\n")
	}
}

// WriteJSON writes p as one indented JSON object followed by a newline.
// Field order is the struct's, so the bytes are as stable as the plan.
func WriteJSON(w io.Writer, p *Plan) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}
