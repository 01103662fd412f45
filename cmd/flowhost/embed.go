package main

import (
	"fmt"
	"os"

	"github.com/flowhost/flowhost/abi"
	"github.com/flowhost/flowhost/host"
)

// embedCmd writes a manifest into a module's flowhost.manifest section.
type embedCmd struct {
	Module   string `arg:"" name:"MODULE.wasm" help:"Module to add the manifest to." type:"existingfile"`
	Manifest string `short:"m" required:"" help:"Manifest JSON file (docs/abi.md)." type:"existingfile"`
	Out      string `short:"o" help:"Output path (default: rewrite MODULE.wasm in place)."`
}

func (c *embedCmd) Run(g *globals) error {
	wasm, err := host.ReadModuleFile(c.Module)
	if err != nil {
		return usageErr(err)
	}
	data, err := os.ReadFile(c.Manifest)
	if err != nil {
		return usageErr(err)
	}
	man, err := abi.ParseManifest(data)
	if err != nil {
		return usageErr(fmt.Errorf("%s: %w", c.Manifest, err))
	}
	mod, err := abi.ParseModule(wasm)
	if err != nil {
		return usageErr(fmt.Errorf("%s: %w", c.Module, err))
	}
	if err := abi.CheckTasks(mod, man); err != nil {
		return usageErr(fmt.Errorf("%s: %w", c.Module, err))
	}
	// Legal, but likely mistakes: said, not refused.
	for _, w := range abi.Warnings(data, man) {
		fmt.Fprintf(g.stderr, "flowhost: warning: %s: %s\n", c.Manifest, w)
	}
	if err := abi.CheckImports(mod); err != nil {
		fmt.Fprintf(g.stderr, "flowhost: warning: %s: %v: a flow could not load it\n", c.Module, err)
	}
	out, err := abi.AppendCustomSection(wasm, abi.SectionName, compactJSON(data))
	if err != nil {
		return usageErr(fmt.Errorf("%s: %w", c.Module, err))
	}
	dst := c.Out
	if dst == "" {
		dst = c.Module
	}
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "%s: embedded manifest %q (%s)\n", dst, man.Name, plural(len(man.Tasks), "task"))
	return nil
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
