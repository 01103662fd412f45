// Package dag turns pipeline descriptions into checked execution plans,
// from the modules' manifests alone: it resolves task references, binds
// every input, derives the dataflow graph, keeps only what the requested
// outputs need, and refuses, before anything runs, whatever cannot run:
// cycles, two producers of one name, unbound required inputs, unknown
// tasks, outputs and aliases, a param that is not an input.
package dag

import (
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/flowhost/flowhost/abi"
	"github.com/flowhost/flowhost/pipeline"
)

// Catalog maps plugin aliases to their manifests.
type Catalog map[string]*abi.Manifest

// Error is a refusal. Its fields say where in the flow the culprit is.
type Error struct {
	// Step is the 1-based sequential step at fault, or 0.
	Step int
	// Key is the step key at fault ("map", "param", "args", …), or "".
	Key string
	// Ref is the dataflow task reference at fault, or "".
	Ref string
	// Field is the top-level key at fault ("tasks", "outputs", "inputs"), or "".
	Field string
	Msg   string
}

func (e *Error) Error() string {
	if e.Step > 0 {
		return fmt.Sprintf("step %d: %s", e.Step, e.Msg)
	}
	return e.Msg
}

// TaskRef is a resolved "alias.task" reference.
type TaskRef struct {
	Alias string
	Task  *abi.Task
}

// Ref is "alias.task".
func (r TaskRef) Ref() string { return r.Alias + "." + r.Task.Name }

// lookup finds tasks in a catalog by name, each module's tasks indexed
// on first use: a plan resolves every step or task, and a manifest's own
// lookup is a scan of its tasks, which would make planning n tasks of one
// module cost n².
type lookup struct {
	c     Catalog
	tasks map[string]map[string]*abi.Task // by alias, then task name
}

func newLookup(c Catalog) *lookup { return &lookup{c: c, tasks: map[string]map[string]*abi.Task{}} }

// task returns the task called name of the module m known as alias.
func (l *lookup) task(alias string, m *abi.Manifest, name string) (*abi.Task, bool) {
	byName, ok := l.tasks[alias]
	if !ok {
		byName = make(map[string]*abi.Task, len(m.Tasks))
		for i := range m.Tasks {
			if _, dup := byName[m.Tasks[i].Name]; !dup {
				byName[m.Tasks[i].Name] = &m.Tasks[i]
			}
		}
		l.tasks[alias] = byName
	}
	t, ok := byName[name]
	return t, ok
}

// resolve finds one task.
func (l *lookup) resolve(ref string) (TaskRef, string) {
	c := l.c
	alias, name, ok := strings.Cut(ref, ".")
	if !ok {
		return TaskRef{}, fmt.Sprintf("%q is not a task reference (write \"alias.task\")", ref)
	}
	m, ok := c[alias]
	if !ok {
		return TaskRef{}, fmt.Sprintf("%q: no plugin is called %q%s", ref, alias, suggest(alias, c.aliases()))
	}
	t, ok := l.task(alias, m, name)
	if !ok {
		names := make([]string, len(m.Tasks))
		for i, t := range m.Tasks {
			names[i] = t.Name
		}
		return TaskRef{}, fmt.Sprintf("%q: module %s (%s) has no task %q%s (tasks: %s)", ref, m.Name, alias, name, suggest(name, names), strings.Join(names, ", "))
	}
	return TaskRef{Alias: alias, Task: t}, ""
}

func (c Catalog) aliases() []string {
	out := make([]string, 0, len(c))
	for a := range c {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// expand resolves a reference that may hold a glob in its task part.
func (l *lookup) expand(ref string) ([]TaskRef, string) {
	c := l.c
	alias, pattern, ok := strings.Cut(ref, ".")
	if !ok || !strings.ContainsAny(pattern, "*?[") {
		r, msg := l.resolve(ref)
		if msg != "" {
			return nil, msg
		}
		return []TaskRef{r}, ""
	}
	m, ok := c[alias]
	if !ok {
		return nil, fmt.Sprintf("%q: no plugin is called %q%s", ref, alias, suggest(alias, c.aliases()))
	}
	var out []TaskRef
	for i := range m.Tasks {
		match, err := path.Match(pattern, m.Tasks[i].Name)
		if err != nil {
			return nil, fmt.Sprintf("%q: bad pattern: %v", ref, err)
		}
		if match {
			out = append(out, TaskRef{Alias: alias, Task: &m.Tasks[i]})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Sprintf("%q matches no task of module %s (%s)", ref, m.Name, alias)
	}
	return out, ""
}

func inputNames(t *abi.Task) string {
	if len(t.Inputs) == 0 {
		return "none"
	}
	names := make([]string, len(t.Inputs))
	for i, in := range t.Inputs {
		names[i] = in.Name
	}
	return strings.Join(names, ", ")
}

// checkOptions refuses options past the limits on input: a timeout longer
// than pipeline.MaxDuration, a max_parallel out of its range. It returns
// the key at fault and why.
func checkOptions(o pipeline.Options) (key, msg string) {
	for _, d := range []time.Duration{o.Timeout, o.Limits.Timeout} {
		if err := pipeline.CheckDuration(d); err != nil {
			return "timeout", "timeout: " + err.Error()
		}
	}
	if o.Retries < 0 || o.Retries > pipeline.MaxRetries {
		return "retries", fmt.Sprintf("retries must be between 0 and %d, not %d", pipeline.MaxRetries, o.Retries)
	}
	if o.MaxParallel < 0 || o.MaxParallel > pipeline.MaxParallelCalls {
		return "max_parallel", fmt.Sprintf("max_parallel must be between 1 and %d, not %d", pipeline.MaxParallelCalls, o.MaxParallel)
	}
	return "", ""
}

// checkValues refuses, with pipeline.CheckJSON, a step's or task's args
// and the declared defaults of its task's inputs. It returns the key at
// fault and why.
func checkValues(tr TaskRef, args map[string]json.RawMessage) (key, msg string) {
	names := make([]string, 0, len(args))
	for name := range args {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		in, ok := tr.Task.Input(name)
		if !ok {
			return "args", fmt.Sprintf("%s has no input %q%s (inputs: %s)", tr.Ref(), name, suggest(name, inputList(tr)), inputNames(tr.Task))
		}
		if err := pipeline.CheckJSON(args[name]); err != nil {
			return "args", fmt.Sprintf("arg %s: %v", name, err)
		}
		if err := in.Schema.Check(args[name]); err != nil {
			return "args", fmt.Sprintf("arg %s of %s %v", name, tr.Ref(), err)
		}
	}
	for _, in := range tr.Task.Inputs {
		if in.Default != nil {
			if err := pipeline.CheckJSON(in.Default); err != nil {
				return "", fmt.Sprintf("%s: the default of input %q: %v", tr.Ref(), in.Name, err)
			}
		}
	}
	return "", ""
}

// Args are constant or flow-provided input values.
type Args = map[string]json.RawMessage
