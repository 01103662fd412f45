// Package pipeline describes workflows: sequential pipelines of explicit
// steps, and dataflow pipelines whose order is derived from what each task
// consumes and produces. The same values are built by the Go API (New,
// FromTasks) and parsed from flow.toml (package flow), so the file and the
// API cannot drift apart. Running them is the job of an Executor.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"time"

	"github.com/flowhost/flowhost/policy"
)

// Limits bound every call of a task (policy.Limits): a zero field
// inherits the value of the enclosing scope (flow, then the defaults),
// and every limit is lowered to the tenant's maxima.
type Limits = policy.Limits

// Grants are what a flow's tasks may reach beyond the sandbox
// (policy.Grants). The zero value grants nothing.
type Grants = policy.Grants

// Options tune one step of a sequential pipeline or one task of a
// dataflow pipeline.
type Options struct {
	// Name labels the step in progress and status output; default: its kind and task.
	Name string
	// Param is the input that receives the previous step's result.
	Param string
	// Args are constant inputs.
	Args map[string]json.RawMessage
	// Retries is how many times a failed call is tried again, with
	// exponential backoff and jitter.
	Retries int
	// Timeout is the deadline of each call of the step.
	Timeout time.Duration
	// SkipErrors drops the failed elements of a map or filter instead of
	// failing the run.
	SkipErrors bool
	// MaxParallel bounds the calls of a map, filter or group in flight at once.
	MaxParallel int
	// Limits override the flow's limits for this step.
	Limits Limits
	// When, a CEL expression (docs/flows.md), makes the step or task run
	// only when it holds; a skipped step passes its previous result on.
	When string
	// Case names the case of the branch before it that this step belongs
	// to (sequential pipelines): it runs only when the branch chose it.
	Case string
	// Concurrency bounds the calls with the same key running at once,
	// across every worker.
	Concurrency *Concurrency
	// Rate bounds how fast the step's calls start.
	Rate *Rate
}

// Concurrency is a concurrency key: at most Limit calls whose Key (a CEL
// expression over `inputs` and `args`, the call's input values, giving
// a string) is the same run at once, among every run of the tenant.
type Concurrency struct {
	Key   string `json:"key"`
	Limit int    `json:"limit"`
}

// Rate is a rate limit: Limit ("100/s", "30/m", "1000/h") calls per
// unit of time, with a burst of one second's worth, shared by every run
// of the tenant: per task, or per value of Key (a CEL expression like
// Concurrency's) when set.
type Rate struct {
	Limit string `json:"limit"`
	Key   string `json:"key,omitempty"`
}

// Option sets one field of Options.
type Option func(*Options)

// Named labels a step.
func Named(name string) Option { return func(o *Options) { o.Name = name } }

// Param names the input that receives the previous step's result.
func Param(name string) Option { return func(o *Options) { o.Param = name } }

// Arg sets one constant input; value is marshalled to JSON.
func Arg(name string, value any) Option {
	return func(o *Options) {
		b, err := json.Marshal(value)
		if err != nil {
			b, _ = json.Marshal(err.Error())
		}
		if o.Args == nil {
			o.Args = map[string]json.RawMessage{}
		}
		o.Args[name] = b
	}
}

// Retries sets how many times a failed call is retried.
func Retries(n int) Option { return func(o *Options) { o.Retries = n } }

// Timeout sets the deadline of each call of a step.
func Timeout(d time.Duration) Option { return func(o *Options) { o.Timeout = d } }

// SkipErrors makes a map or filter drop failed elements.
func SkipErrors() Option { return func(o *Options) { o.SkipErrors = true } }

// MaxParallel bounds the calls of a step in flight at once.
func MaxParallel(n int) Option { return func(o *Options) { o.MaxParallel = n } }

// When makes a step (or dataflow task) run only when the CEL expression
// cond holds: over `inputs` (the flow's) and `result` (the previous
// step's) in a sequential pipeline, over `inputs` and `args` (the task's
// own input values) in a dataflow one.
func When(cond string) Option { return func(o *Options) { o.When = cond } }

// InCase puts a step in a case of the branch before it: it runs only when
// the branch chose that case.
func InCase(name string) Option { return func(o *Options) { o.Case = name } }

// Throttle sets a step's (or task's) concurrency key: at most limit
// calls with the same key at once.
func Throttle(key string, limit int) Option {
	return func(o *Options) { o.Concurrency = &Concurrency{Key: key, Limit: limit} }
}

// RateLimit sets a step's (or task's) rate: limit ("100/s") calls per
// unit of time, per task, or per value of key when it is not "".
func RateLimit(limit, key string) Option {
	return func(o *Options) { o.Rate = &Rate{Limit: limit, Key: key} }
}

// WithLimits overrides the flow's limits for a step.
func WithLimits(l Limits) Option { return func(o *Options) { o.Limits = l } }

func apply(opts []Option) Options {
	var o Options
	for _, f := range opts {
		f(&o)
	}
	return o
}

var nameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidName reports whether s is a valid name of an output, an input or
// a branch's case: letters, digits and '_', not starting with a digit.
func ValidName(s string) bool { return nameRe.MatchString(s) }

// Kind is the kind of a sequential step.
type Kind string

// Step kinds (docs/flows.md).
const (
	Call   Kind = "call"   // run once on the previous result (taskiq call_next)
	After  Kind = "after"  // run once after the previous step, without its result (call_after)
	Map    Kind = "map"    // run once per element of the previous result, in parallel
	Filter Kind = "filter" // like Map; keep the elements whose task returned true
	Group  Kind = "group"  // run several tasks on the previous result, in parallel
	Branch Kind = "branch" // choose the first case whose condition holds; pass the previous result on
	Flow   Kind = "flow"   // run another flow as a run of its own (a sub-flow) on the previous result
)

// SubFlow is the flow a Flow step runs: a run of its own, linked to the
// step's run, whose result is the step's.
type SubFlow struct {
	// Name is the child flow's name; Path the file it was read from.
	Name string `json:"name"`
	Path string `json:"path,omitempty"`
	// Exactly one of Sequential and Dataflow is set. Their tasks name
	// plugins of the parent's catalog.
	Sequential *Sequential `json:"sequential,omitempty"`
	Dataflow   *Dataflow   `json:"dataflow,omitempty"`
	// Inputs give the child's inputs: each a CEL expression over the
	// parent's `inputs` and `result` (the previous step's).
	Inputs map[string]string `json:"inputs,omitempty"`
	// Defaults are the child's own inputs, which Inputs override.
	Defaults Inputs `json:"defaults,omitempty"`
	// Limits and Grants are the child flow's.
	Limits Limits `json:"limits"`
	Grants Grants `json:"grants"`
}

// Case is one case of a branch: its steps (those that follow the branch
// with InCase(Name)) run when it is the first whose When holds. A case
// without When is the default and must come last.
type Case struct {
	Name string
	When string
}

// Step is one step of a sequential pipeline.
type Step struct {
	Kind Kind
	// Tasks are "alias.task" references: one, or several for a Group;
	// none for a Branch.
	Tasks []string
	// Cases are a Branch's cases, in order.
	Cases []Case
	// Sub is a Flow step's flow.
	Sub *SubFlow `json:",omitempty"`
	Options
}

// Label is the step's name, or a default made of its kind and tasks.
func (s Step) Label() string {
	if s.Name != "" {
		return s.Name
	}
	if s.Kind == Flow && s.Sub != nil {
		return "flow " + s.Sub.Name
	}
	if s.Kind == Branch {
		l := "branch"
		for i, c := range s.Cases {
			l += map[bool]string{true: " ", false: " | "}[i == 0] + c.Name
		}
		return l
	}
	l := string(s.Kind) + " " + s.Tasks[0]
	for _, t := range s.Tasks[1:] {
		l += ", " + t
	}
	return l
}

// Inputs are a run's named input values, as JSON.
type Inputs map[string]json.RawMessage

// Result is what a run produced.
type Result struct {
	RunID string
	// Value is the pipeline's result: the last step's for a sequential
	// pipeline, an object of the requested outputs for a dataflow one.
	Value json.RawMessage
}

// Executor runs pipelines; the embedded runner and the Redis broker's
// client implement it.
type Executor interface {
	RunSequential(ctx context.Context, p *Sequential, in Inputs) (*Result, error)
	RunDataflow(ctx context.Context, p *Dataflow, in Inputs) (*Result, error)
}

// ErrNoExecutor is returned by Run on a pipeline built without one.
var ErrNoExecutor = errors.New("pipeline: no executor (build it with New or FromTasks)")

// Sequential is a pipeline of explicit steps, each fed the previous
// step's result (Taskiq-Flow's Pipeline).
type Sequential struct {
	Name  string
	Steps []Step
	exec  Executor
}

// New starts a sequential pipeline that runs on exec.
func New(exec Executor) *Sequential { return &Sequential{exec: exec} }

// WithExecutor sets the executor Run uses.
func (p *Sequential) WithExecutor(exec Executor) *Sequential { p.exec = exec; return p }

func (p *Sequential) add(kind Kind, tasks []string, opts []Option) *Sequential {
	p.Steps = append(p.Steps, Step{Kind: kind, Tasks: tasks, Options: apply(opts)})
	return p
}

// CallNext adds a step that runs task on the previous step's result.
func (p *Sequential) CallNext(task string, opts ...Option) *Sequential {
	return p.add(Call, []string{task}, opts)
}

// CallAfter adds a step that runs task after the previous one, without its
// result: its inputs come from Arg options and the flow inputs.
func (p *Sequential) CallAfter(task string, opts ...Option) *Sequential {
	return p.add(After, []string{task}, opts)
}

// Map adds a step that runs task on every element of the previous result
// (an array), in parallel, keeping the results in order.
func (p *Sequential) Map(task string, opts ...Option) *Sequential {
	return p.add(Map, []string{task}, opts)
}

// Filter adds a step that keeps the elements of the previous result for
// which task returns true.
func (p *Sequential) Filter(task string, opts ...Option) *Sequential {
	return p.add(Filter, []string{task}, opts)
}

// Group adds a step that runs every task on the previous result in
// parallel; its result is the array of their results, in order.
func (p *Sequential) Group(tasks []string, opts ...Option) *Sequential {
	return p.add(Group, append([]string(nil), tasks...), opts)
}

// Branch adds a step that chooses the first of cases whose condition
// holds (over `inputs` and `result`) and passes the previous result on
// to the steps of that case: the steps that follow, added with InCase.
// The steps of the other cases are skipped; the first step in no case
// ends the branch and receives the chosen case's result.
func (p *Sequential) Branch(cases []Case, opts ...Option) *Sequential {
	p.Steps = append(p.Steps, Step{Kind: Branch, Cases: append([]Case(nil), cases...), Options: apply(opts)})
	return p
}

// Flow adds a step that runs child as a run of its own on the previous
// result: inputs give its inputs, each a CEL expression over `inputs`
// and `result`. The child's result is the step's; its failure fails
// the step; cancelling the run cancels it.
func (p *Sequential) Flow(child *SubFlow, opts ...Option) *Sequential {
	p.Steps = append(p.Steps, Step{Kind: Flow, Sub: child, Options: apply(opts)})
	return p
}

// Run runs the pipeline on its executor.
func (p *Sequential) Run(ctx context.Context, in Inputs) (*Result, error) {
	if p.exec == nil {
		return nil, ErrNoExecutor
	}
	return p.exec.RunSequential(ctx, p, in)
}

// Dataflow is a pipeline whose graph is derived from the tasks' declared
// inputs and outputs (Taskiq-Flow's DataflowPipeline).
type Dataflow struct {
	Name string
	// Tasks are "alias.task" references; globs ("text.*") are allowed.
	Tasks []string
	// Outputs are the names to compute; empty means every output no
	// selected task consumes.
	Outputs []string
	// TaskOptions tune individual tasks, by "alias.task".
	TaskOptions map[string]Options
	exec        Executor
}

// FromTasks builds a dataflow pipeline from tasks, run on exec.
func FromTasks(exec Executor, tasks ...string) *Dataflow {
	return &Dataflow{Tasks: append([]string(nil), tasks...), exec: exec}
}

// WithExecutor sets the executor Run uses.
func (p *Dataflow) WithExecutor(exec Executor) *Dataflow { p.exec = exec; return p }

// Want sets the outputs to compute: only the tasks they need run.
func (p *Dataflow) Want(outputs ...string) *Dataflow {
	p.Outputs = append(p.Outputs, outputs...)
	return p
}

// Configure sets the options of one task.
func (p *Dataflow) Configure(task string, opts ...Option) *Dataflow {
	if p.TaskOptions == nil {
		p.TaskOptions = map[string]Options{}
	}
	p.TaskOptions[task] = apply(opts)
	return p
}

// Run runs the pipeline on its executor.
func (p *Dataflow) Run(ctx context.Context, in Inputs) (*Result, error) {
	if p.exec == nil {
		return nil, ErrNoExecutor
	}
	return p.exec.RunDataflow(ctx, p, in)
}
