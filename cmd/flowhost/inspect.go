package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/flowhost/flowhost/abi"
	"github.com/flowhost/flowhost/host"
)

type inspectCmd struct {
	Module string `arg:"" name:"MODULE.wasm" help:"Module to inspect."`
	JSON   bool   `help:"Print the manifest as JSON, with the module's facts under \"module\"."`
}

// inspectJSON is the --json shape: the manifest's own fields, plus "module".
type inspectJSON struct {
	*abi.Manifest
	Module moduleFacts `json:"module"`
}

type moduleFacts struct {
	Path           string       `json:"path"`
	SHA256         string       `json:"sha256"`
	Size           int          `json:"size"`
	ManifestSource string       `json:"manifest_source"`
	Imports        []importJSON `json:"imports"`
}

type importJSON struct {
	Module string `json:"module"`
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Type   string `json:"type,omitempty"`
}

func (c *inspectCmd) Run(g *globals) error {
	ctx := context.Background()
	eng, err := host.New(ctx, host.Config{Logger: g.logger, CacheDir: g.cacheDir})
	if err != nil {
		return err
	}
	defer eng.Close(ctx)
	m, err := eng.LoadFile(ctx, c.Module)
	if err != nil {
		return usageErr(err)
	}
	facts := moduleFacts{Path: c.Module, SHA256: m.SHA256, Size: m.Size, ManifestSource: m.ManifestSource, Imports: []importJSON{}}
	for _, im := range m.Info.Imports {
		j := importJSON{Module: im.Module, Name: im.Name, Kind: abi.KindName(im.Kind)}
		if im.Type != nil {
			j.Type = im.Type.String()
		}
		facts.Imports = append(facts.Imports, j)
	}
	if c.JSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(inspectJSON{Manifest: m.Manifest, Module: facts})
	}
	man := m.Manifest
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	title := man.Name
	if man.Version != "" {
		title += " " + man.Version
	}
	fmt.Fprintf(w, "module\t%s (abi %d, manifest from %s)\n", title, man.ABI, m.ManifestSource)
	if man.Description != "" {
		fmt.Fprintf(w, "\t%s\n", man.Description)
	}
	fmt.Fprintf(w, "file\t%s\n", c.Module)
	fmt.Fprintf(w, "sha256\t%s\n", m.SHA256)
	fmt.Fprintf(w, "size\t%s (%d bytes)\n", humanBytes(uint64(m.Size)), m.Size)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "TASK\tINPUTS\tOUTPUTS\tEXPORT\tDESCRIPTION")
	for _, t := range man.Tasks {
		// A typed signature: "values: array of number", "sep: string=\" \"".
		ins := make([]string, len(t.Inputs))
		for i, in := range t.Inputs {
			ins[i] = in.Name
			if in.Typed() {
				ins[i] += ": " + in.Schema.String()
			}
			if !in.Required() {
				ins[i] += "=" + string(in.Default)
			}
		}
		outs := make([]string, len(t.Outputs))
		for i, o := range t.Outputs {
			outs[i] = o
			if s := t.OutputType(o); s.Typed() {
				outs[i] += ": " + s.String()
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.Name, dash(strings.Join(ins, ", ")), strings.Join(outs, ", "), t.Export, t.Description)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	byModule := map[string][]string{}
	for _, im := range facts.Imports {
		byModule[im.Module] = append(byModule[im.Module], im.Name)
	}
	mods := make([]string, 0, len(byModule))
	for mod := range byModule {
		mods = append(mods, mod)
	}
	sort.Strings(mods)
	fmt.Fprintf(g.stdout, "\nimports (%d)\n", len(facts.Imports))
	for _, mod := range mods {
		fmt.Fprintf(g.stdout, "  %s: %s\n", mod, strings.Join(byModule[mod], ", "))
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
