package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/flowhost/flowhost"
	"github.com/flowhost/flowhost/host"
)

// loadFlow loads the flow at path on eng, with --input overrides
// (flowhost.LoadFlow), and prints its warnings. An error of the flow's, a
// module's or an input's is a usage error (exit 2) that names its place
// in the flow file.
func (g *globals) loadFlow(ctx context.Context, eng *host.Engine, path string, overrides []string) (*flowhost.Flow, error) {
	f, err := flowhost.LoadFlow(ctx, eng, path, overrides)
	if errors.Is(err, flowhost.ErrInvalid) {
		return nil, usageErr(err)
	}
	if err != nil {
		return nil, err
	}
	for _, w := range f.Warnings {
		fmt.Fprintf(g.stderr, "flowhost: warning: %s: %s\n", path, w)
	}
	return f, nil
}

// newEngine is an engine with the command line's logger and cache.
func (g *globals) newEngine(ctx context.Context) (*host.Engine, error) {
	return host.New(ctx, host.Config{Logger: g.logger, CacheDir: g.cacheDir})
}
