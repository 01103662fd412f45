package dag

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/flowhost/flowhost/expr"
	"github.com/flowhost/flowhost/pipeline"
)

// Graph is a plan drawn as boxes and arrows, for DOT and Mermaid.
type Graph struct {
	Title string
	Nodes []GNode
	Edges []GEdge
}

// GNode is one box. Shape is "task", "input", "output", "branch" or
// "flow" (a sub-flow).
type GNode struct {
	ID, Label, Shape string
}

// GEdge is one arrow, optionally labelled with the data it carries.
type GEdge struct {
	From, To, Label string
}

// Graph draws the dataflow plan: flow inputs, tasks, requested outputs.
func (p *DataflowPlan) Graph() *Graph {
	g := &Graph{Title: p.Name}
	flowIn := map[string]bool{}
	for _, n := range p.Nodes {
		g.Nodes = append(g.Nodes, GNode{ID: fmt.Sprintf("t%d", n.ID), Label: n.Ref() + when(n.Cond) + throttled(n.Throttle), Shape: "task"})
		for _, b := range n.Inputs {
			switch {
			case b.From != nil:
				g.Edges = append(g.Edges, GEdge{From: fmt.Sprintf("t%d", b.From.ID), To: fmt.Sprintf("t%d", n.ID), Label: b.Input})
			case b.Flow:
				if !flowIn[b.Input] {
					flowIn[b.Input] = true
					g.Nodes = append(g.Nodes, GNode{ID: "in_" + b.Input, Label: b.Input, Shape: "input"})
				}
				g.Edges = append(g.Edges, GEdge{From: "in_" + b.Input, To: fmt.Sprintf("t%d", n.ID)})
			}
		}
	}
	for _, o := range p.Outputs {
		g.Nodes = append(g.Nodes, GNode{ID: "out_" + o, Label: o, Shape: "output"})
		g.Edges = append(g.Edges, GEdge{From: fmt.Sprintf("t%d", p.Producer[o].ID), To: "out_" + o})
	}
	return g
}

// Graph draws the sequential plan: a chain of steps; map and filter
// steps fan out, group steps run their tasks side by side.
func (p *SeqPlan) Graph() *Graph {
	g := &Graph{Title: p.Name}
	names := make([]string, 0, len(p.Inputs))
	for name := range p.Inputs {
		names = append(names, name)
	}
	sort.Strings(names)
	prev := []string{}
	for _, name := range names {
		id := "in_" + name
		g.Nodes = append(g.Nodes, GNode{ID: id, Label: name, Shape: "input"})
		prev = append(prev, id)
	}
	// An open branch: its node, where each of its cases ends so far, and
	// the case being drawn.
	branch, inCase := "", ""
	var ends []string
	var caseEnd []string
	closeBranch := func() {
		if branch == "" {
			return
		}
		ends = append(ends, caseEnd...)
		prev = append(ends, branch) // a case that draws nothing, or none chosen
		branch, inCase, ends, caseEnd = "", "", nil, nil
	}
	for _, st := range p.Steps {
		if st.Case == "" {
			closeBranch()
		}
		if st.Kind == pipeline.Branch {
			id := fmt.Sprintf("s%d", st.Index)
			g.Nodes = append(g.Nodes, GNode{ID: id, Label: st.Label + when(st.Cond), Shape: "branch"})
			for _, from := range prev {
				g.Edges = append(g.Edges, GEdge{From: from, To: id})
			}
			branch, prev = id, nil
			continue
		}
		entry := ""
		if st.Case != "" && st.Case != inCase {
			ends = append(ends, caseEnd...)
			inCase, caseEnd, prev = st.Case, nil, []string{branch}
			entry = st.Case
			for _, c := range p.Steps[st.Branch].Cases {
				if c.Name == st.Case && c.Cond != nil {
					entry += ": " + c.Cond.String()
				}
			}
		}
		var cur []string
		if st.Kind == pipeline.Flow {
			id := fmt.Sprintf("s%d", st.Index)
			label := "flow " + st.Sub.Flow.Name
			if st.Sub.Flow.Path != "" {
				label += " (" + filepath.Base(st.Sub.Flow.Path) + ")"
			}
			g.Nodes = append(g.Nodes, GNode{ID: id, Label: label + when(st.Cond), Shape: "flow"})
			for _, from := range prev {
				e := GEdge{From: from, To: id}
				if entry != "" {
					e.Label = entry
				}
				g.Edges = append(g.Edges, e)
			}
			cur = append(cur, id)
		}
		for j, t := range st.Tasks {
			id := fmt.Sprintf("s%d_%d", st.Index, j)
			label := t.Ref()
			switch st.Kind {
			case pipeline.Map:
				label = "map " + label + " [each]"
			case pipeline.Filter:
				label = "filter " + label + " [each]"
			case pipeline.After:
				label = "after " + label
			}
			g.Nodes = append(g.Nodes, GNode{ID: id, Label: label + when(st.Cond) + throttled(st.Throttle), Shape: "task"})
			for _, from := range prev {
				e := GEdge{From: from, To: id}
				switch {
				case entry != "":
					e.Label = entry
				case st.Kind != pipeline.After && t.Param != "":
					e.Label = t.Param
				}
				g.Edges = append(g.Edges, e)
			}
			cur = append(cur, id)
		}
		prev = cur
		if st.Case != "" {
			caseEnd = cur
		}
	}
	closeBranch()
	g.Nodes = append(g.Nodes, GNode{ID: "result", Label: "result", Shape: "output"})
	for _, from := range prev {
		g.Edges = append(g.Edges, GEdge{From: from, To: "result"})
	}
	return g
}

// when is the label of a step's condition.
func when(cond *expr.Program) string {
	if cond == nil {
		return ""
	}
	return " [when " + cond.String() + "]"
}

// throttled is the label of a step's concurrency key and rate.
func throttled(th *Throttle) string {
	if th == nil {
		return ""
	}
	l := ""
	if th.Key != nil {
		l += fmt.Sprintf(" [≤%d per %s]", th.Limit, th.Key.String())
	}
	if th.Rate > 0 {
		l += " [" + th.RateText
		if th.RateKey != nil {
			l += " per " + th.RateKey.String()
		}
		l += "]"
	}
	return l
}

// AddTrigger draws what starts the flow's runs (its schedule) as a box
// with an edge to each task that no other task feeds.
func (g *Graph) AddTrigger(label string) {
	shape := map[string]string{}
	for _, n := range g.Nodes {
		shape[n.ID] = n.Shape
	}
	fed := map[string]bool{}
	for _, e := range g.Edges {
		if shape[e.From] != "input" {
			fed[e.To] = true
		}
	}
	g.Nodes = append([]GNode{{ID: "trigger", Label: label, Shape: "input"}}, g.Nodes...)
	for _, n := range g.Nodes[1:] {
		if n.Shape != "input" && n.Shape != "output" && !fed[n.ID] {
			g.Edges = append(g.Edges, GEdge{From: "trigger", To: n.ID})
		}
	}
}

// WriteDOT writes the graph in Graphviz's DOT language.
func (g *Graph) WriteDOT(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n", dotQuote(g.Title))
	b.WriteString("  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n")
	for _, n := range g.Nodes {
		shape := map[string]string{"task": "box, style=rounded", "input": "ellipse", "output": "doubleoctagon", "branch": "diamond", "flow": "box3d"}[n.Shape]
		fmt.Fprintf(&b, "  %s [label=%s, shape=%s];\n", n.ID, dotQuote(n.Label), shape)
	}
	for _, e := range g.Edges {
		if e.Label != "" {
			fmt.Fprintf(&b, "  %s -> %s [label=%s];\n", e.From, e.To, dotQuote(e.Label))
		} else {
			fmt.Fprintf(&b, "  %s -> %s;\n", e.From, e.To)
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMermaid writes the graph as a Mermaid flowchart.
func (g *Graph) WriteMermaid(w io.Writer) error {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	for _, n := range g.Nodes {
		l := mermaidQuote(n.Label)
		switch n.Shape {
		case "input":
			fmt.Fprintf(&b, "  %s([%s])\n", n.ID, l)
		case "output":
			fmt.Fprintf(&b, "  %s{{%s}}\n", n.ID, l)
		case "branch":
			fmt.Fprintf(&b, "  %s{%s}\n", n.ID, l)
		case "flow":
			fmt.Fprintf(&b, "  %s[[%s]]\n", n.ID, l)
		default:
			fmt.Fprintf(&b, "  %s[%s]\n", n.ID, l)
		}
	}
	for _, e := range g.Edges {
		if e.Label != "" {
			fmt.Fprintf(&b, "  %s -->|%s| %s\n", e.From, mermaidQuote(e.Label), e.To)
		} else {
			fmt.Fprintf(&b, "  %s --> %s\n", e.From, e.To)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func dotQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

func mermaidQuote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, "#quot;") + `"`
}
