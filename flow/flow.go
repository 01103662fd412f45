// Package flow reads flow.toml files (docs/flows.md) into pipeline values.
// Every error names its place as file:line:col; unknown keys are errors
// that suggest the nearest valid key, so a typo is never silently ignored.
package flow

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/flowhost/flowhost/internal/text"
	"github.com/flowhost/flowhost/internal/tomlcheck"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/policy"
	"github.com/flowhost/flowhost/schedule"
)

// Modes of a flow.
const (
	Sequential = "sequential"
	Dataflow   = "dataflow"
)

// File is a parsed flow file.
type File struct {
	// Path is the file's path as given.
	Path        string
	Name        string
	Description string
	Tenant      string
	// Mode is Sequential or Dataflow (inferred when the file omits it).
	Mode string
	// Priority is the runs' priority, 1 to 5 (0: the default, 3).
	Priority int
	// Schedule, from [schedule], is when the flow runs on its own
	// (`flowhost schedule`); nil when it declares none.
	Schedule *schedule.Schedule
	Plugins  []Plugin
	Inputs   pipeline.Inputs
	Limits   pipeline.Limits
	// Grants are what the flow's tasks may reach; directories are resolved
	// against the flow file's directory.
	Grants pipeline.Grants
	// Exactly one of Sequential and Dataflow is set, by Mode.
	Sequential *pipeline.Sequential
	Dataflow   *pipeline.Dataflow

	loc *locator
	// stack are the files of the flows that run this one (sub-flows),
	// absolute; files says whether sub-flows may be read from files.
	stack []string
	files bool
}

// Plugin is one entry of [plugins].
type Plugin struct {
	Alias string
	// Path is resolved against the flow file's directory.
	Path string
	// SHA256 pins the module's content (hex), when set.
	SHA256 string
	Pos    Position
}

// Plugin returns the plugin called alias.
func (f *File) Plugin(alias string) (Plugin, bool) {
	for _, p := range f.Plugins {
		if p.Alias == alias {
			return p, true
		}
	}
	return Plugin{}, false
}

// Error is an error at a place in a flow file.
type Error struct {
	File string
	Pos  Position
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case e.Pos.Line > 0 && e.Pos.Col > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Pos.Line, e.Pos.Col, e.Msg)
	case e.Pos.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Pos.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// Errorf returns an error at pos in the file.
func (f *File) Errorf(pos Position, format string, args ...any) error {
	return &Error{File: f.Path, Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// KeyPos returns where a top-level key or table (e.g. "outputs",
// "plugins", "inputs.text") is written.
func (f *File) KeyPos(path ...string) Position { return f.loc.find(path, -1) }

// StepPos returns where key is written in the i-th [[step]] (0-based), or
// the step's header when key is "" or absent.
func (f *File) StepPos(i int, key string) Position {
	if key != "" {
		if p := f.loc.find([]string{"step", key}, i); p.Line > 0 {
			return p
		}
	}
	return f.loc.find([]string{"step"}, i)
}

// TaskPos returns where the dataflow task (or pattern) ref is written in
// the tasks array, else where its [task."ref"] table is.
func (f *File) TaskPos(ref string) Position {
	for i, line := range f.loc.lines {
		if j := strings.Index(line, `"`+ref+`"`); j >= 0 && !strings.HasPrefix(strings.TrimSpace(line), "[") {
			return Position{i + 1, j + 1}
		}
	}
	return f.KeyPos("tasks")
}

type rawFile struct {
	Cache       *bool              `toml:"cache"`
	Name        string             `toml:"name"`
	Description string             `toml:"description"`
	Mode        string             `toml:"mode"`
	Tenant      string             `toml:"tenant"`
	Priority    int64              `toml:"priority"`
	Plugins     map[string]any     `toml:"plugins"`
	Inputs      map[string]any     `toml:"inputs"`
	Limits      rawLimits          `toml:"limits"`
	Step        []rawStep          `toml:"step"`
	Tasks       []string           `toml:"tasks"`
	Outputs     []string           `toml:"outputs"`
	Task        map[string]rawStep `toml:"task"`
	Grants      pipeline.Grants    `toml:"grants"`
	Schedule    *rawSchedule       `toml:"schedule"`
}

type rawSchedule struct {
	Cron     string   `toml:"cron"`
	Every    duration `toml:"every"`
	Timezone string   `toml:"timezone"`
	CatchUp  string   `toml:"catch_up"`
}

type rawLimits struct {
	Timeout   duration `toml:"timeout"`
	Memory    size     `toml:"memory"`
	MaxOutput size     `toml:"max_output"`
	Fuel      int64    `toml:"fuel"`
	State     string   `toml:"state"`
}

type rawStep struct {
	Name        string            `toml:"name"`
	Call        *string           `toml:"call"`
	After       *string           `toml:"after"`
	Map         *string           `toml:"map"`
	Filter      *string           `toml:"filter"`
	Group       []string          `toml:"group"`
	Param       string            `toml:"param"`
	Args        map[string]any    `toml:"args"`
	Retries     int64             `toml:"retries"`
	Timeout     duration          `toml:"timeout"`
	SkipErrors  bool              `toml:"skip_errors"`
	MaxParallel int64             `toml:"max_parallel"`
	Memory      size              `toml:"memory"`
	MaxOutput   size              `toml:"max_output"`
	Fuel        int64             `toml:"fuel"`
	State       string            `toml:"state"`
	Cache       *bool             `toml:"cache"`
	When        string            `toml:"when"`
	Case        string            `toml:"case"`
	Branch      []rawCase         `toml:"branch"`
	Concurrency *rawConcurrency   `toml:"concurrency"`
	Rate        any               `toml:"rate"`
	Flow        *string           `toml:"flow"`
	SubInputs   map[string]string `toml:"inputs"`
}

// rawConcurrency is `concurrency = { key = "…", limit = N }`.
type rawConcurrency struct {
	Key   string `toml:"key"`
	Limit int64  `toml:"limit"`
}

// rawCase is one case of a branch: `{ case = "name", when = "…" }`.
type rawCase struct {
	Case string `toml:"case"`
	When string `toml:"when"`
}

// rawPlugin is `alias = "path"` or `alias = { path = "…", sha256 = "…" }`.
type rawPlugin struct {
	Path   string
	SHA256 string
}

func (p *rawPlugin) decode(v any) error {
	switch x := v.(type) {
	case string:
		p.Path = x
		return nil
	case map[string]any:
		for k, val := range x {
			s, ok := val.(string)
			switch {
			case k != "path" && k != "sha256":
				return fmt.Errorf("unknown key %q in a plugin table%s (valid: path, sha256)", k, text.Suggest(k, []string{"path", "sha256"}))
			case !ok:
				return fmt.Errorf("plugin key %q must be a string, not %s", k, tomlType(val))
			case k == "path":
				p.Path = s
			default:
				p.SHA256 = s
			}
		}
		if p.Path == "" {
			return errors.New(`a plugin table needs a "path"`)
		}
		return nil
	}
	return fmt.Errorf(`a plugin is a path ("mod.wasm") or a table ({ path = "mod.wasm", sha256 = "…" }), not %s`, tomlType(v))
}

// The keys each table accepts, for the unknown-key check's suggestions.
var (
	topKeys   = []string{"name", "description", "mode", "tenant", "priority", "cache", "plugins", "inputs", "limits", "step", "tasks", "outputs", "task", "grants", "schedule"}
	schedKeys = []string{"cron", "every", "timezone", "catch_up"}
	grantKeys = []string{"files", "env", "http", "private", "clock", "random"}
	limitKeys = []string{"timeout", "memory", "max_output", "fuel", "state"}
	stepKeys  = []string{"name", "call", "after", "map", "filter", "group", "branch", "param", "args", "retries", "timeout", "skip_errors", "max_parallel", "memory", "max_output", "fuel", "state", "cache", "when", "case", "concurrency", "rate", "flow", "inputs"}
	taskKeys  = []string{"name", "args", "retries", "timeout", "max_parallel", "memory", "max_output", "fuel", "state", "cache", "when", "concurrency", "rate"}
	concKeys  = []string{"key", "limit"}
	caseKeys  = []string{"case", "when"}
)

var (
	aliasRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)
	refRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*\.[A-Za-z0-9_*?\[\]-]+$`)
)

// ValidAlias reports whether a is a valid plugin alias: letters, digits,
// '_' and '-', starting with a letter or '_' (no '.': tasks are named
// "alias.task").
func ValidAlias(a string) bool { return aliasRe.MatchString(a) }

// ParseFile reads and parses a flow file, and the files of the flows its
// steps run (sub-flows, relative to it).
func ParseFile(path string) (*File, error) { return parseFile(path, nil) }

// maxSubFlowDepth bounds how deep flows run flows.
const maxSubFlowDepth = 8

func parseFile(path string, stack []string) (*File, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	for i, p := range stack {
		if p == abs {
			chain := append(append([]string(nil), stack[i:]...), abs)
			for k := range chain {
				chain[k] = filepath.Base(chain[k])
			}
			return nil, fmt.Errorf("the flows form a cycle: %s (a flow cannot run itself)", strings.Join(chain, " → "))
		}
	}
	if len(stack) >= maxSubFlowDepth {
		return nil, fmt.Errorf("flows run flows %d deep: at most %d", len(stack)+1, maxSubFlowDepth)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(path, b, append(stack, abs), true)
}

// Parse parses the flow file at path with contents src. Plugin paths are
// resolved against path's directory. A step that runs another flow
// (flow = "…") is refused: it is read from its file, by ParseFile.
func Parse(path string, src []byte) (*File, error) { return parse(path, src, nil, false) }

func parse(path string, src []byte, stack []string, files bool) (*File, error) {
	if err := tomlcheck.CheckNesting(src); err != nil {
		var e *tomlcheck.Error
		if errors.As(err, &e) {
			return nil, &Error{File: path, Pos: Position{e.Line, e.Col}, Msg: e.Msg}
		}
		return nil, err
	}
	f := &File{Path: path, loc: newLocator(string(src)), stack: stack, files: files}
	var raw rawFile
	md, err := toml.Decode(string(src), &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, f.Errorf(Position{pe.Position.Line, pe.Position.Col}, "%s", pe.Message)
		}
		return nil, f.decodeError(err)
	}
	if err := f.checkUnknown(md); err != nil {
		return nil, err
	}
	if err := f.build(&raw); err != nil {
		return nil, err
	}
	return f, nil
}

// checkUnknown refuses every key the decoder did not use, suggesting the
// nearest valid one.
func (f *File) checkUnknown(md toml.MetaData) error {
	var errs []error
	for _, key := range md.Undecoded() {
		var valid []string
		var where string
		switch {
		case len(key) == 1:
			valid, where = topKeys, "at the top level"
		case key[0] == "limits" && len(key) == 2:
			valid, where = limitKeys, "in [limits]"
		case key[0] == "grants" && len(key) == 2:
			valid, where = grantKeys, "in [grants]"
		case key[0] == "schedule" && len(key) == 2:
			valid, where = schedKeys, "in [schedule]"
		case key[0] == "step" && len(key) == 2:
			valid, where = stepKeys, "in a [[step]]"
		case key[0] == "step" && key[1] == "branch" && len(key) == 3:
			valid, where = caseKeys, "in a branch's case"
		case key[0] == "step" && key[1] == "concurrency" && len(key) == 3,
			key[0] == "task" && len(key) == 4 && key[2] == "concurrency":
			valid, where = concKeys, "in concurrency"
		case key[0] == "task" && len(key) == 3:
			valid, where = taskKeys, fmt.Sprintf("in [task.%q]", key[1])
		default:
			continue // inside a value table (args, inputs): not a key of ours
		}
		name := key[len(key)-1]
		pos := f.loc.find(key, -1)
		for n := len(key) - 1; pos.Line == 0 && n > 0; n-- {
			pos = f.loc.find(key[:n], -1) // a key inside an array of inline tables
		}
		errs = append(errs, f.Errorf(pos, "unknown key %q %s%s", name, where, text.Suggest(name, valid)))
	}
	return errors.Join(errs...)
}

func (f *File) build(raw *rawFile) error {
	f.Name, f.Description, f.Tenant = raw.Name, raw.Description, raw.Tenant
	if f.Name == "" {
		f.Name = strings.TrimSuffix(filepath.Base(f.Path), filepath.Ext(f.Path))
	}
	if f.Tenant == "" {
		f.Tenant = policy.DefaultTenant
	} else if err := policy.CheckTenant(f.Tenant); err != nil {
		return f.Errorf(f.KeyPos("tenant"), "tenant: %v", err)
	}
	if raw.Priority < 0 || raw.Priority > policy.MaxPriority || policy.CheckPriority(int(raw.Priority)) != nil {
		return f.Errorf(f.KeyPos("priority"), "priority = %d: between %d (lowest) and %d (highest); %d is the default", raw.Priority, policy.MinPriority, policy.MaxPriority, policy.DefaultPriority)
	}
	f.Priority = int(raw.Priority)
	if raw.Schedule != nil {
		rs := raw.Schedule
		sc, err := schedule.Parse(schedule.Spec{Cron: rs.Cron, Every: rs.Every.Duration, Timezone: rs.Timezone, CatchUp: rs.CatchUp})
		if err != nil {
			key := "schedule"
			for _, k := range schedKeys {
				if strings.Contains(err.Error(), k) && f.KeyPos("schedule", k).Line > 0 {
					key = "schedule." + k
					break
				}
			}
			return f.Errorf(f.KeyPos(strings.Split(key, ".")...), "[schedule]: %v", err)
		}
		f.Schedule = sc
	}
	dir := filepath.Dir(f.Path)
	aliases := make([]string, 0, len(raw.Plugins))
	for a := range raw.Plugins {
		aliases = append(aliases, a)
	}
	sort.Strings(aliases)
	for _, a := range aliases {
		pos := f.KeyPos("plugins", a)
		var p rawPlugin
		if err := p.decode(raw.Plugins[a]); err != nil {
			if _, isString := raw.Plugins[a].(string); !isString && contains(topKeys, a) {
				return f.Errorf(pos, "%q is inside [plugins]: in TOML, top-level keys such as %q must come before the first [table]", a, a)
			}
			return f.Errorf(pos, "plugin %s: %v", a, err)
		}
		if !ValidAlias(a) {
			return f.Errorf(pos, "plugin alias %q is not a valid name (letters, digits, '_' and '-')", a)
		}
		if p.SHA256 != "" {
			if b, err := hex.DecodeString(p.SHA256); err != nil || len(b) != 32 {
				return f.Errorf(f.KeyPos("plugins", a, "sha256"), "plugin %s: sha256 %q is not 64 hex digits", a, p.SHA256)
			}
			p.SHA256 = strings.ToLower(p.SHA256)
		}
		path := p.Path
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		f.Plugins = append(f.Plugins, Plugin{Alias: a, Path: path, SHA256: p.SHA256, Pos: pos})
	}
	if len(f.Plugins) == 0 {
		return f.Errorf(Position{}, "the flow declares no [plugins]")
	}

	f.Inputs = pipeline.Inputs{}
	for _, name := range sortedKeys(raw.Inputs) {
		b, err := json.Marshal(raw.Inputs[name])
		if err == nil {
			err = pipeline.CheckJSON(b)
		}
		if err != nil {
			return f.Errorf(f.KeyPos("inputs", name), "input %s: %v", name, err)
		}
		f.Inputs[name] = b
	}
	if raw.Limits.Fuel < 0 {
		return f.Errorf(f.KeyPos("limits", "fuel"), "fuel must be positive")
	}
	if err := policy.CheckState(raw.Limits.State); err != nil {
		return f.Errorf(f.KeyPos("limits", "state"), "%v", err)
	}
	f.Limits = pipeline.Limits{Timeout: raw.Limits.Timeout.Duration, Memory: uint64(raw.Limits.Memory),
		MaxOutput: uint64(raw.Limits.MaxOutput), Fuel: uint64(raw.Limits.Fuel), State: raw.Limits.State, Cache: cacheSetting(raw.Cache)}

	f.Grants = raw.Grants
	f.Grants.Files = nil
	for guest, hostDir := range raw.Grants.Files {
		if !strings.HasPrefix(guest, "/") {
			return f.Errorf(f.KeyPos("grants", "files"), "grants.files: guest path %q must be absolute, like \"/data\"", guest)
		}
		if !filepath.IsAbs(hostDir) {
			hostDir = filepath.Join(dir, hostDir)
		}
		// Absolute now, once: a run submitted to workers must name the
		// same folder whatever each worker's working directory.
		abs, err := filepath.Abs(hostDir)
		if err != nil {
			return f.Errorf(f.KeyPos("grants", "files"), "grants.files %s: %v", guest, err)
		}
		hostDir = abs
		if f.Grants.Files == nil {
			f.Grants.Files = map[string]string{}
		}
		f.Grants.Files[guest] = hostDir
	}
	for _, h := range raw.Grants.HTTP {
		if !policy.ValidHostPattern(h) {
			return f.Errorf(f.KeyPos("grants", "http"), "grants.http: %q is not a host name or a pattern like \"*.example.com\"", h)
		}
	}

	f.Mode = raw.Mode
	hasSteps, hasTasks := len(raw.Step) > 0, len(raw.Tasks) > 0
	switch f.Mode {
	case "":
		switch {
		case hasSteps && hasTasks:
			return f.Errorf(f.KeyPos("tasks"), "the flow has both [[step]] tables and tasks: set mode = \"sequential\" or \"dataflow\" and keep one")
		case hasSteps:
			f.Mode = Sequential
		case hasTasks:
			f.Mode = Dataflow
		default:
			return f.Errorf(Position{}, "the flow has no [[step]] (sequential mode) and no tasks = [...] (dataflow mode)")
		}
	case Sequential, Dataflow:
	default:
		return f.Errorf(f.KeyPos("mode"), "mode %q is not \"sequential\" or \"dataflow\"%s", f.Mode, text.Suggest(f.Mode, []string{Sequential, Dataflow}))
	}
	if f.Mode == Sequential {
		if hasTasks {
			return f.Errorf(f.KeyPos("tasks"), "tasks = [...] belongs to dataflow mode; this flow is sequential")
		}
		if len(raw.Outputs) > 0 {
			return f.Errorf(f.KeyPos("outputs"), "outputs = [...] belongs to dataflow mode; a sequential flow's result is its last step's")
		}
		if len(raw.Task) > 0 {
			return f.Errorf(f.KeyPos("task"), "[task.…] tables belong to dataflow mode; set options on the [[step]] instead")
		}
		if !hasSteps {
			return f.Errorf(Position{}, "a sequential flow needs at least one [[step]]")
		}
		return f.buildSequential(raw.Step)
	}
	if hasSteps {
		return f.Errorf(f.StepPos(0, ""), "[[step]] belongs to sequential mode; this flow is dataflow")
	}
	if !hasTasks {
		return f.Errorf(f.KeyPos("mode"), "a dataflow flow needs tasks = [...]")
	}
	return f.buildDataflow(raw)
}

func (f *File) buildSequential(steps []rawStep) error {
	seq := &pipeline.Sequential{Name: f.Name}
	for i, rs := range steps {
		var kinds []pipeline.Kind
		var tasks []string
		for _, k := range []struct {
			kind pipeline.Kind
			v    *string
		}{{pipeline.Call, rs.Call}, {pipeline.After, rs.After}, {pipeline.Map, rs.Map}, {pipeline.Filter, rs.Filter}} {
			if k.v != nil {
				kinds = append(kinds, k.kind)
				tasks = []string{*k.v}
			}
		}
		if rs.Group != nil {
			kinds = append(kinds, pipeline.Group)
			tasks = rs.Group
		}
		if rs.Branch != nil {
			kinds = append(kinds, pipeline.Branch)
			tasks = nil
		}
		if rs.Flow != nil {
			kinds = append(kinds, pipeline.Flow)
			tasks = nil
		}
		switch len(kinds) {
		case 0:
			return f.Errorf(f.StepPos(i, ""), "step %d has no task: give one of call, after, map, filter or group (or branch)", i+1)
		case 1:
		default:
			return f.Errorf(f.StepPos(i, string(kinds[1])), "step %d has both %s and %s: one step runs one kind", i+1, kinds[0], kinds[1])
		}
		kind := kinds[0]
		if kind == pipeline.Group && len(tasks) == 0 {
			return f.Errorf(f.StepPos(i, "group"), "step %d: group = [] lists no task", i+1)
		}
		for _, t := range tasks {
			if err := f.checkRef(t, func() Position { return f.StepPos(i, string(kind)) }, false); err != nil {
				return err
			}
		}
		opts, err := f.options(rs, func(key string) Position { return f.StepPos(i, key) })
		if err != nil {
			return err
		}
		if opts.SkipErrors && kind != pipeline.Map && kind != pipeline.Filter {
			return f.Errorf(f.StepPos(i, "skip_errors"), "step %d: skip_errors applies to map and filter steps only", i+1)
		}
		if kind == pipeline.After && opts.Param != "" {
			return f.Errorf(f.StepPos(i, "param"), "step %d: an after step receives no previous result, so it takes no param", i+1)
		}
		step := pipeline.Step{Kind: kind, Tasks: tasks, Options: opts}
		if rs.SubInputs != nil && kind != pipeline.Flow {
			return f.Errorf(f.StepPos(i, "inputs"), "step %d: inputs = { … } gives a sub-flow's inputs: it goes with flow = \"…\"", i+1)
		}
		if kind == pipeline.Flow {
			sub, err := f.subFlow(i, *rs.Flow, rs.SubInputs)
			if err != nil {
				return err
			}
			step.Sub = sub
		}
		for _, c := range rs.Branch {
			step.Cases = append(step.Cases, pipeline.Case{Name: c.Case, When: c.When})
		}
		seq.Steps = append(seq.Steps, step)
	}
	f.Sequential = seq
	return nil
}

// subFlow reads the flow step i runs, from its file (relative to this
// one's), and takes its plugins in under aliases of the step's own
// ("s3:text" for the plugin text of step 3's flow), which no alias of a
// flow file can be.
func (f *File) subFlow(i int, path string, inputs map[string]string) (*pipeline.SubFlow, error) {
	pos := f.StepPos(i, "flow")
	if !f.files {
		return nil, f.Errorf(pos, "step %d: flow = %q: a sub-flow is read from its file, and this flow was not loaded from one", i+1, path)
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(f.Path), path)
	}
	child, err := parseFile(path, f.stack)
	if err != nil {
		return nil, f.Errorf(pos, "step %d: sub-flow: %v", i+1, err)
	}
	prefix := fmt.Sprintf("s%d:", i+1)
	for name := range inputs {
		if !pipeline.ValidName(name) {
			return nil, f.Errorf(f.StepPos(i, "inputs"), "step %d: %q is not a valid input name", i+1, name)
		}
	}
	sub := &pipeline.SubFlow{Name: child.Name, Path: path, Inputs: inputs, Defaults: child.Inputs, Limits: child.Limits, Grants: child.Grants,
		Sequential: renameSeq(child.Sequential, prefix), Dataflow: renameDF(child.Dataflow, prefix)}
	for _, p := range child.Plugins {
		p.Alias = prefix + p.Alias
		f.Plugins = append(f.Plugins, p)
	}
	return sub, nil
}

// renameSeq is p with every task's plugin alias prefixed (sub-flows'
// too), or nil.
func renameSeq(p *pipeline.Sequential, prefix string) *pipeline.Sequential {
	if p == nil {
		return nil
	}
	out := &pipeline.Sequential{Name: p.Name}
	for _, st := range p.Steps {
		tasks := make([]string, len(st.Tasks))
		for k, t := range st.Tasks {
			tasks[k] = prefix + t
		}
		st.Tasks = tasks
		if st.Sub != nil {
			sub := *st.Sub
			sub.Sequential, sub.Dataflow = renameSeq(sub.Sequential, prefix), renameDF(sub.Dataflow, prefix)
			st.Sub = &sub
		}
		out.Steps = append(out.Steps, st)
	}
	return out
}

// renameDF is renameSeq for a dataflow pipeline.
func renameDF(p *pipeline.Dataflow, prefix string) *pipeline.Dataflow {
	if p == nil {
		return nil
	}
	out := &pipeline.Dataflow{Name: p.Name, Outputs: p.Outputs}
	for _, t := range p.Tasks {
		out.Tasks = append(out.Tasks, prefix+t)
	}
	if p.TaskOptions != nil {
		out.TaskOptions = map[string]pipeline.Options{}
		for ref, o := range p.TaskOptions {
			out.TaskOptions[prefix+ref] = o
		}
	}
	return out
}

func (f *File) buildDataflow(raw *rawFile) error {
	df := &pipeline.Dataflow{Name: f.Name, Tasks: raw.Tasks, Outputs: raw.Outputs}
	for _, t := range raw.Tasks {
		if err := f.checkRef(t, func() Position { return f.TaskPos(t) }, true); err != nil {
			return err
		}
	}
	for _, o := range raw.Outputs {
		if !pipeline.ValidName(o) {
			return f.Errorf(f.KeyPos("outputs"), "output %q is not a valid name", o)
		}
	}
	for ref, rs := range raw.Task {
		pos := f.KeyPos("task", ref)
		if err := f.checkRef(ref, func() Position { return pos }, false); err != nil {
			return err
		}
		if rs.Call != nil || rs.After != nil || rs.Map != nil || rs.Filter != nil || rs.Group != nil || rs.Branch != nil || rs.Param != "" || rs.SkipErrors || rs.Case != "" {
			return f.Errorf(pos, "[task.%q] takes options only (%s)", ref, strings.Join(taskKeys, ", "))
		}
		opts, err := f.options(rs, func(key string) Position {
			if p := f.KeyPos("task", ref, key); p.Line > 0 {
				return p
			}
			return pos
		})
		if err != nil {
			return err
		}
		if df.TaskOptions == nil {
			df.TaskOptions = map[string]pipeline.Options{}
		}
		df.TaskOptions[ref] = opts
	}
	f.Dataflow = df
	return nil
}

// cacheSetting is a `cache = true|false` key as a policy setting.
func cacheSetting(b *bool) string {
	switch {
	case b == nil:
		return policy.CacheAuto
	case *b:
		return policy.CacheOn
	}
	return policy.CacheOff
}

func (f *File) options(rs rawStep, pos func(string) Position) (pipeline.Options, error) {
	o := pipeline.Options{Name: rs.Name, Param: rs.Param, SkipErrors: rs.SkipErrors, When: rs.When, Case: rs.Case,
		Timeout: rs.Timeout.Duration,
		Limits:  pipeline.Limits{Timeout: rs.Timeout.Duration, Memory: uint64(rs.Memory), MaxOutput: uint64(rs.MaxOutput), Fuel: uint64(rs.Fuel), State: rs.State, Cache: cacheSetting(rs.Cache)}}
	if err := policy.CheckState(rs.State); err != nil {
		return o, f.Errorf(pos("state"), "%v", err)
	}
	if c := rs.Concurrency; c != nil {
		if c.Key == "" {
			return o, f.Errorf(pos("concurrency"), `concurrency needs a key: concurrency = { key = "args.user", limit = 2 } (a CEL expression giving a string)`)
		}
		if c.Limit < 1 || c.Limit > 1<<16 {
			return o, f.Errorf(pos("concurrency"), "concurrency limit %d: between 1 and 65536", c.Limit)
		}
		o.Concurrency = &pipeline.Concurrency{Key: c.Key, Limit: int(c.Limit)}
	}
	switch r := rs.Rate.(type) {
	case nil:
	case string:
		o.Rate = &pipeline.Rate{Limit: r}
	case map[string]any:
		o.Rate = &pipeline.Rate{}
		for k, v := range r {
			s, ok := v.(string)
			switch {
			case k != "limit" && k != "key":
				return o, f.Errorf(pos("rate"), "unknown key %q in rate%s (valid: limit, key)", k, text.Suggest(k, []string{"limit", "key"}))
			case !ok:
				return o, f.Errorf(pos("rate"), "rate's %q must be a string, not %s", k, tomlType(v))
			case k == "limit":
				o.Rate.Limit = s
			default:
				o.Rate.Key = s
			}
		}
	default:
		return o, f.Errorf(pos("rate"), `rate is "100/s", or { limit = "100/s", key = "…" } for one rate per key; not %s`, tomlType(r))
	}
	if rs.Retries < 0 || rs.Retries > pipeline.MaxRetries {
		return o, f.Errorf(pos("retries"), "retries must be between 0 and %d, not %d", pipeline.MaxRetries, rs.Retries)
	}
	o.Retries = int(rs.Retries)
	if rs.MaxParallel < 0 || rs.MaxParallel > pipeline.MaxParallelCalls {
		return o, f.Errorf(pos("max_parallel"), "max_parallel must be between 1 and %d, not %d", pipeline.MaxParallelCalls, rs.MaxParallel)
	}
	o.MaxParallel = int(rs.MaxParallel)
	if rs.Fuel < 0 {
		return o, f.Errorf(pos("fuel"), "fuel must be positive")
	}
	for _, name := range sortedKeys(rs.Args) {
		b, err := json.Marshal(rs.Args[name])
		if err == nil {
			err = pipeline.CheckJSON(b)
		}
		if err != nil {
			return o, f.Errorf(pos("args"), "arg %s: %v", name, err)
		}
		if o.Args == nil {
			o.Args = map[string]json.RawMessage{}
		}
		o.Args[name] = b
	}
	return o, nil
}

// checkRef checks an "alias.task" reference against [plugins]. pos says
// where the reference is written; it is called only for an error, since
// finding a task's place in the file is a search.
func (f *File) checkRef(ref string, pos func() Position, glob bool) error {
	if !refRe.MatchString(ref) || (!glob && strings.ContainsAny(ref, "*?[")) {
		return f.Errorf(pos(), "%q is not a task reference: write \"alias.task\" with an alias from [plugins]%s", ref, map[bool]string{true: " (globs like \"text.*\" are allowed)"}[glob])
	}
	alias := ref[:strings.IndexByte(ref, '.')]
	if _, ok := f.Plugin(alias); !ok {
		names := make([]string, len(f.Plugins))
		for i, p := range f.Plugins {
			names[i] = p.Alias
		}
		return f.Errorf(pos(), "%q: no plugin is called %q%s (plugins: %s)", ref, alias, text.Suggest(alias, names), strings.Join(names, ", "))
	}
	return nil
}

var (
	lineErrRe = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)
	typeErrRe = regexp.MustCompile(`^incompatible types: TOML value has type (\S+); destination has type (\S+)$`)
)

// decodeError turns a decoder error without a position into one at the
// line of the key it names, in words a user of TOML knows.
func (f *File) decodeError(err error) error {
	m := lineErrRe.FindStringSubmatch(err.Error())
	if m == nil {
		return &Error{File: f.Path, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
	}
	line, _ := strconv.Atoi(m[1])
	key := m[2]
	msg := m[3]
	if t := typeErrRe.FindStringSubmatch(msg); t != nil {
		msg = fmt.Sprintf("%q must be %s, not %s", key[strings.LastIndexByte(key, '.')+1:], goTypeWords(t[2]), goTypeWords(t[1]))
	}
	col := 0
	if line-1 < len(f.loc.lines) {
		l := f.loc.lines[line-1]
		col = len(l) - len(strings.TrimLeft(l, " \t")) + 1
	}
	return f.Errorf(Position{line, col}, "%s", msg)
}

func goTypeWords(t string) string {
	switch {
	case t == "string" || t == "*string":
		return "a string"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a float"
	case t == "bool":
		return "a boolean"
	case strings.HasPrefix(t, "[]") || strings.HasPrefix(t, "slice"):
		return "an array"
	case strings.HasPrefix(t, "map") || t == "struct":
		return "a table"
	}
	return t
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}
