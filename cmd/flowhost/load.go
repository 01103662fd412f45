package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/flow"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/runner"
)

// loaded is a flow ready to run: parsed, its modules loaded and pinned,
// its plan checked.
type loaded struct {
	file    *flow.File
	engine  *host.Engine
	modules map[string]*host.Module
	seq     *dag.SeqPlan
	df      *dag.DataflowPlan
}

// loadFlow parses the flow at path, applies --input overrides, loads its
// plugins and checks its plan. Every error is a usage error (exit 2) that
// names its place in the flow file.
func loadFlow(ctx context.Context, g *globals, path string, overrides []string) (*loaded, error) {
	f, err := flow.ParseFile(path)
	if err != nil {
		return nil, usageErr(err)
	}
	for _, kv := range overrides {
		name, v, err := parseInput(kv)
		if err != nil {
			return nil, usageErr(err)
		}
		f.Inputs[name] = v
	}
	if err := host.CheckGrants(runner.HostGrants(f.Grants)); err != nil {
		return nil, usageErr(f.Errorf(f.KeyPos("grants"), "%v", err))
	}
	eng, err := host.New(ctx, host.Config{Logger: g.logger, CacheDir: g.cacheDir})
	if err != nil {
		return nil, err
	}
	l := &loaded{file: f, engine: eng, modules: map[string]*host.Module{}}
	cat := dag.Catalog{}
	for _, p := range f.Plugins {
		m, err := loadPlugin(ctx, eng, p)
		if err != nil {
			eng.Close(ctx)
			return nil, usageErr(f.Errorf(p.Pos, "plugin %s: %v", p.Alias, err))
		}
		l.modules[p.Alias] = m
		cat[p.Alias] = m.Manifest
	}
	if f.Sequential != nil {
		l.seq, err = dag.PlanSequential(cat, f.Sequential, f.Inputs)
	} else {
		l.df, err = dag.PlanDataflow(cat, f.Dataflow, f.Inputs)
	}
	if err != nil {
		eng.Close(ctx)
		return nil, usageErr(locate(f, err))
	}
	return l, nil
}

func loadPlugin(ctx context.Context, eng *host.Engine, p flow.Plugin) (*host.Module, error) {
	wasm, err := host.ReadModuleFile(p.Path)
	if err != nil {
		return nil, err
	}
	m, err := eng.Load(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Path, err)
	}
	if p.SHA256 != "" && m.SHA256 != p.SHA256 {
		return nil, fmt.Errorf("%s has sha256 %s, but the flow pins %s: refusing a module that changed", p.Path, m.SHA256, p.SHA256)
	}
	return m, nil
}

// locate places a plan error in the flow file.
func locate(f *flow.File, err error) error {
	var de *dag.Error
	if !errors.As(err, &de) {
		return err
	}
	var pos flow.Position
	switch {
	case de.Step > 0:
		pos = f.StepPos(de.Step-1, de.Key)
	case de.Ref != "":
		pos = f.TaskPos(de.Ref)
	case de.Field != "":
		pos = f.KeyPos(de.Field)
	}
	return f.Errorf(pos, "%s", de.Error())
}

// parseInput reads one --input: NAME=JSON (a value that is not JSON is
// taken as a string) or NAME=@PATH (JSON read from a file).
func parseInput(kv string) (string, json.RawMessage, error) {
	name, v, ok := strings.Cut(kv, "=")
	if !ok || name == "" {
		return "", nil, fmt.Errorf("--input %q: write NAME=JSON, NAME=TEXT or NAME=@FILE", kv)
	}
	if path, isFile := strings.CutPrefix(v, "@"); isFile {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", nil, fmt.Errorf("--input %s: %w", name, err)
		}
		if !json.Valid(b) {
			return "", nil, fmt.Errorf("--input %s: %s is not valid JSON", name, path)
		}
		return name, json.RawMessage(b), nil
	}
	if json.Valid([]byte(v)) {
		return name, json.RawMessage(v), nil
	}
	s, _ := json.Marshal(v)
	return name, s, nil
}
