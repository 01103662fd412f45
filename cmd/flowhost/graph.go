package main

import (
	"context"
	"fmt"

	"github.com/flowhost/flowhost/dag"
)

type graphCmd struct {
	Flow   string   `arg:"" name:"FLOW" help:"The flow file (flow.toml)."`
	Format string   `short:"f" default:"dot" enum:"dot,mermaid" help:"Output format: dot (Graphviz) or mermaid."`
	Input  []string `short:"i" name:"input" sep:"none" placeholder:"NAME=JSON" help:"Override a flow input: NAME=JSON, NAME=TEXT or NAME=@PATH, read as for run (inputs decide which tasks a dataflow needs)."`
}

func (c *graphCmd) Run(g *globals) error {
	ctx := context.Background()
	eng, err := g.newEngine(ctx)
	if err != nil {
		return err
	}
	defer eng.Close(ctx)
	f, err := g.loadFlow(ctx, eng, c.Flow, c.Input)
	if err != nil {
		return err
	}
	var gr *dag.Graph
	if f.Plan.Seq != nil {
		gr = f.Plan.Seq.Graph()
	} else {
		gr = f.Plan.DF.Graph()
	}
	if sc := f.File.Schedule; sc != nil {
		gr.AddTrigger("schedule: " + sc.Describe())
	}
	switch c.Format {
	case "mermaid":
		return gr.WriteMermaid(g.stdout)
	case "dot":
		return gr.WriteDOT(g.stdout)
	}
	return usageErr(fmt.Errorf("unknown format %q", c.Format))
}
