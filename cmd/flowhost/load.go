package main

import (
	"context"
	"errors"

	"github.com/flowhost/flowhost"
	"github.com/flowhost/flowhost/host"
)

// loadFlow loads the flow at path on eng, with --input overrides
// (flowhost.LoadFlow). An error of the flow's, a module's or an input's is
// a usage error (exit 2) that names its place in the flow file.
func loadFlow(ctx context.Context, eng *host.Engine, path string, overrides []string) (*flowhost.Flow, error) {
	f, err := flowhost.LoadFlow(ctx, eng, path, overrides)
	if errors.Is(err, flowhost.ErrInvalid) {
		return nil, usageErr(err)
	}
	return f, err
}

// newEngine is an engine with the command line's logger and cache.
func (g *globals) newEngine(ctx context.Context) (*host.Engine, error) {
	return host.New(ctx, host.Config{Logger: g.logger, CacheDir: g.cacheDir})
}
