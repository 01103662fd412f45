package main

type inspectCmd struct {
	Module string `arg:"" name:"MODULE.wasm" help:"Module to inspect."`
	JSON   bool   `help:"Print JSON."`
}

func (c *inspectCmd) Run(g *globals) error { return nil }
