package main

import (
	"context"
	"errors"
	"fmt"

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
		name, v, err := flow.ParseInput(kv)
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
