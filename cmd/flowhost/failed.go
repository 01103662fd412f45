package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/flowhost/flowhost"
	"github.com/flowhost/flowhost/broker/redis"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/internal/atomicfile"
	"github.com/flowhost/flowhost/internal/safefile"
	"github.com/flowhost/flowhost/policy"
	"github.com/flowhost/flowhost/track"
)

// failedCalls collects an in-process run's failed calls
// (flowhost.ExecOptions.OnFailedCall), at most track.MaxFailedCalls.
type failedCalls struct {
	mu    sync.Mutex
	calls []track.FailedCall
}

func (f *failedCalls) add(c track.FailedCall) {
	if len(c.Input) > track.MaxFailedInput {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) < track.MaxFailedCalls {
		f.calls = append(f.calls, c)
	}
}

func (f *failedCalls) list() []track.FailedCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// keepModules keeps a copy of the modules of failed calls, by sha256,
// beside the run records: `call --from` runs the exact bytes, whatever
// the plugin's file has become since. Best effort: a module whose file
// changed during the run is not kept.
func (g *globals) keepModules(f *flowhost.Flow, calls []track.FailedCall) {
	dir := g.dataDir("modules")
	if dir == "" {
		return
	}
	for _, c := range calls {
		path := filepath.Join(dir, c.SHA256+".wasm")
		if _, err := os.Stat(path); err == nil {
			continue
		}
		p, ok := f.File.Plugin(c.Module)
		if !ok {
			continue
		}
		wasm, err := host.ReadModuleFile(p.Path)
		if err != nil {
			continue
		}
		if sum := sha256.Sum256(wasm); hex.EncodeToString(sum[:]) != c.SHA256 {
			continue
		}
		if err := atomicfile.Write(path, wasm); err != nil {
			g.logger.Warn("cannot keep a failed call's module", "module", c.Module, "err", err)
		}
	}
}

// loadRecord reads an in-process run's record.
func (g *globals) loadRecord(id string) (*runRecord, error) {
	if err := policy.CheckRunID(id); err != nil {
		return nil, usageErr(err)
	}
	path := g.recordPath(id)
	if path == "" {
		return nil, usageErr(errors.New("no record of in-process runs: --cache-dir is off"))
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, usageErr(fmt.Errorf("no in-process run %s on this machine (records are in %s); for a broker's run, give --broker", id, filepath.Dir(path)))
	}
	if err != nil {
		return nil, err
	}
	var rec runRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("record of run %s: %w", id, err)
	}
	return &rec, nil
}

// callFrom runs again a failed call that run c.From recorded.
func (c *callCmd) callFrom(ctx context.Context, g *globals) error {
	if c.Module == "" {
		return usageErr(errors.New("--from RUN_ID takes the step of the call (and, for a map, filter or group, its element): flowhost call --from RUN_ID STEP [ELEMENT]"))
	}
	step, err := strconv.Atoi(c.Module)
	if err != nil || step < 1 {
		return usageErr(fmt.Errorf("step %q: a step number from 1 (a dataflow node's, in plan order)", c.Module))
	}
	elem := -1
	if c.Task != "" {
		if elem, err = strconv.Atoi(c.Task); err != nil || elem < 0 {
			return usageErr(fmt.Errorf("element %q: an element number from 0", c.Task))
		}
	}
	var calls []track.FailedCall
	var module func(sha string) ([]byte, error)
	where := "in-process run " + c.From
	if c.Broker != "" {
		if err := policy.CheckTenant(c.Tenant); err != nil {
			return usageErr(fmt.Errorf("--tenant: %w", err))
		}
		if err := policy.CheckRunID(c.From); err != nil {
			return usageErr(err)
		}
		client, err := redis.Dial(ctx, c.Broker)
		if err != nil {
			return usageErr(err)
		}
		defer client.Close()
		if _, err := client.Spec(ctx, c.Tenant, c.From); err != nil {
			return usageErr(err)
		}
		if calls, err = client.FailedCalls(ctx, c.Tenant, c.From); err != nil {
			return err
		}
		module = func(sha string) ([]byte, error) { return client.Module(ctx, c.Tenant, sha) }
		where = fmt.Sprintf("run %s (tenant %s)", c.From, c.Tenant)
	} else {
		rec, err := g.loadRecord(c.From)
		if err != nil {
			return err
		}
		for _, fc := range rec.FailedCalls {
			if fc.Check() == nil {
				calls = append(calls, fc)
			}
		}
		module = g.keptModule
	}
	fc, err := pickCall(calls, step, elem, where)
	if err != nil {
		return usageErr(err)
	}
	wasm, err := module(fc.SHA256)
	if err != nil {
		return usageErr(fmt.Errorf("%s, %s: %w", where, fc.Label, err))
	}
	lim, err := c.limits(fc.Limits)
	if err != nil {
		return usageErr(err)
	}
	eng, err := g.newEngine(ctx)
	if err != nil {
		return err
	}
	defer eng.Close(context.Background())
	m, err := eng.Load(ctx, wasm)
	if err != nil {
		return usageErr(fmt.Errorf("module %s: %w", fc.Module, err))
	}
	t, ok := m.Task(fc.Task)
	if !ok {
		return usageErr(fmt.Errorf("module %s has no task %q", fc.Module, fc.Task))
	}
	if !c.JSON {
		at := fmt.Sprintf("step %d (%s)", fc.Step, fc.Label)
		if fc.Element >= 0 {
			at += fmt.Sprintf(", element %d", fc.Element)
		}
		fmt.Fprintf(g.stderr, "calling %s.%s as %s of %s did (module sha256 %s…); there it failed, after %d attempt(s), with: %s\n",
			fc.Module, fc.Task, at, where, fc.SHA256[:12], fc.Attempts, fc.Error)
	}
	c.Task = fc.Module + "." + fc.Task
	ctx = host.WithLogInfo(ctx, c.From, fc.Label, nil)
	out, st, err := t.CallWithStats(ctx, fc.Input, lim)
	return c.report(g, out, st, err)
}

// keptModule is a module keepModules kept, checked against its digest.
func (g *globals) keptModule(sha string) ([]byte, error) {
	dir := g.dataDir("modules")
	if dir == "" {
		return nil, errors.New("--cache-dir is off: no module was kept")
	}
	b, err := safefile.Read(filepath.Join(dir, sha+".wasm"), host.MaxModuleSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("its module (sha256 %s) was not kept on this machine", sha)
	}
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != sha {
		return nil, fmt.Errorf("the module kept as %s does not have that digest", sha)
	}
	return b, nil
}

// pickCall finds the recorded call of step and elem (-1: the step's only
// recorded call), or says which calls were recorded.
func pickCall(calls []track.FailedCall, step, elem int, where string) (*track.FailedCall, error) {
	var inStep []*track.FailedCall
	for i := range calls {
		if calls[i].Step == step {
			inStep = append(inStep, &calls[i])
		}
	}
	for _, fc := range inStep {
		if fc.Element == elem || elem < 0 && len(inStep) == 1 {
			return fc, nil
		}
	}
	var have []string
	for _, fc := range calls {
		k := fmt.Sprintf("step %d", fc.Step)
		if fc.Element >= 0 {
			k += fmt.Sprintf(" element %d", fc.Element)
		}
		have = append(have, k)
	}
	recorded := "it recorded no failed call"
	if len(have) > 0 {
		recorded = "its failed calls: " + strings.Join(have, ", ")
	}
	switch {
	case len(inStep) > 1 && elem < 0:
		return nil, fmt.Errorf("%s recorded %d failed calls at step %d: give the element (%s)", where, len(inStep), step, recorded)
	case elem >= 0:
		return nil, fmt.Errorf("%s recorded no failed call at step %d element %d (%s)", where, step, elem, recorded)
	}
	return nil, fmt.Errorf("%s recorded no failed call at step %d (%s)", where, step, recorded)
}
