package abi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// Version is the task ABI version this host implements.
const Version = 1

// SectionName is the custom section that carries a module's manifest.
const SectionName = "flowhost.manifest"

// ManifestExport is the export that returns a module's manifest when the
// module has no manifest section.
const ManifestExport = "flowhost_manifest"

// Sentinel errors; every refusal wraps one of them.
var (
	ErrNoManifest     = errors.New("no manifest")
	ErrBadManifest    = errors.New("invalid manifest")
	ErrImportRefused  = errors.New("import refused")
	ErrExportMismatch = errors.New("bad task export")
)

// Manifest is what a module declares about itself (docs/abi.md).
type Manifest struct {
	ABI         int    `json:"abi"`
	Name        string `json:"name"`
	Version     string `json:"version,omitempty"`
	Description string `json:"description,omitempty"`
	Tasks       []Task `json:"tasks"`
}

// Task is one task a module exports.
type Task struct {
	Name        string   `json:"name"`
	Export      string   `json:"export"`
	Description string   `json:"description,omitempty"`
	Inputs      []Input  `json:"inputs"`
	Outputs     []string `json:"outputs"`
	// OutputTypes are the outputs' types, by name, for those the
	// manifest declares as objects {name, type, ...} in "outputs".
	OutputTypes map[string]*Schema `json:"output_types,omitempty"`
}

// Input is a declared task input. An input with a default is optional;
// its type (the Schema fields, inline: type, items, properties, enum,
// nullable) is checked before every call.
type Input struct {
	Name        string          `json:"name"`
	Default     json.RawMessage `json:"default,omitempty"`
	Description string          `json:"description,omitempty"`
	Schema
}

// Output is an output declared as an object in "outputs".
type Output struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Schema
}

// OutputType is the declared type of output name (nil: any).
func (t *Task) OutputType(name string) *Schema {
	return t.OutputTypes[name]
}

// Required reports whether the input has no default.
func (in Input) Required() bool { return in.Default == nil }

// UnmarshalJSON accepts an input written as a bare name or as an object.
func (in *Input) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &in.Name)
	}
	type plain Input
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*in = Input(p)
	return nil
}

// UnmarshalJSON accepts "output": "x" as a shorthand for "outputs": ["x"]
// and defaults export to name.
func (t *Task) UnmarshalJSON(b []byte) error {
	type plain Task
	var p struct {
		plain
		Output  *string           `json:"output"`
		Outputs []json.RawMessage `json:"outputs"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*t = Task(p.plain)
	t.Outputs = nil
	for _, raw := range p.Outputs {
		// An output is a name, or an object {name, type, ...}.
		if raw = bytes.TrimSpace(raw); len(raw) > 0 && raw[0] == '"' {
			var name string
			if err := json.Unmarshal(raw, &name); err != nil {
				return err
			}
			t.Outputs = append(t.Outputs, name)
			continue
		}
		var o Output
		if err := json.Unmarshal(raw, &o); err != nil {
			return fmt.Errorf("task %q: an output is a name or an object {name, type, ...}: %w", t.Name, err)
		}
		t.Outputs = append(t.Outputs, o.Name)
		if o.Schema.Typed() || o.Nullable {
			if t.OutputTypes == nil {
				t.OutputTypes = map[string]*Schema{}
			}
			s := o.Schema
			t.OutputTypes[o.Name] = &s
		}
	}
	if p.Output != nil {
		if len(t.Outputs) > 0 {
			return fmt.Errorf("task %q: both \"output\" and \"outputs\" given", t.Name)
		}
		t.Outputs = []string{*p.Output}
	}
	if t.Export == "" {
		t.Export = t.Name
	}
	return nil
}

// Task returns the task called name.
func (m *Manifest) Task(name string) (*Task, bool) {
	for i := range m.Tasks {
		if m.Tasks[i].Name == name {
			return &m.Tasks[i], true
		}
	}
	return nil, false
}

// Input returns the declared input called name.
func (t *Task) Input(name string) (*Input, bool) {
	for i := range t.Inputs {
		if t.Inputs[i].Name == name {
			return &t.Inputs[i], true
		}
	}
	return nil, false
}

var (
	identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	nameRe  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)
)

const maxNameLen = 128

// ParseManifest decodes and validates a manifest. Errors name the
// culprit: the JSON error with its line, column and byte offset, or the
// task and field that is wrong.
func ParseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadManifest, jsonErrorText(data, err))
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: %s", ErrBadManifest, at(data, dec.InputOffset(), "unexpected data after the manifest object"))
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	return &m, nil
}

func (m *Manifest) validate() error {
	if m.ABI != Version {
		if m.ABI == 0 {
			return fmt.Errorf(`"abi" is missing (this host implements abi %d)`, Version)
		}
		return fmt.Errorf(`"abi" is %d; this host implements abi %d`, m.ABI, Version)
	}
	if !validName(m.Name) {
		return fmt.Errorf(`module "name" %q is not a valid name (letters, digits, '_' and '-', starting with a letter or '_')`, m.Name)
	}
	if len(m.Tasks) == 0 {
		return errors.New(`"tasks" is empty: the module declares no task`)
	}
	seen := map[string]bool{}
	for i := range m.Tasks {
		t := &m.Tasks[i]
		if !validName(t.Name) {
			return fmt.Errorf("task #%d: name %q is not a valid name (letters, digits, '_' and '-', starting with a letter or '_')", i+1, t.Name)
		}
		if seen[t.Name] {
			return fmt.Errorf("task %q is declared twice", t.Name)
		}
		seen[t.Name] = true
		if t.Export == ManifestExport || strings.HasPrefix(t.Export, "_") && (t.Export == "_start" || t.Export == "_initialize") {
			return fmt.Errorf("task %q: export %q is reserved", t.Name, t.Export)
		}
		ins := map[string]bool{}
		for _, in := range t.Inputs {
			if !identRe.MatchString(in.Name) || len(in.Name) > maxNameLen {
				return fmt.Errorf("task %q: input name %q is not an identifier", t.Name, in.Name)
			}
			if ins[in.Name] {
				return fmt.Errorf("task %q: input %q is declared twice", t.Name, in.Name)
			}
			ins[in.Name] = true
			if in.Default != nil && !json.Valid(in.Default) {
				return fmt.Errorf("task %q: input %q: default is not valid JSON", t.Name, in.Name)
			}
			where := fmt.Sprintf("task %q: input %q", t.Name, in.Name)
			if err := in.Schema.validate(where, 0); err != nil {
				return err
			}
			if in.Default != nil {
				if err := in.Schema.Check(in.Default); err != nil {
					return fmt.Errorf("%s: the default %s", where, err)
				}
			}
		}
		if len(t.Outputs) == 0 {
			return fmt.Errorf("task %q declares no output", t.Name)
		}
		for name := range t.OutputTypes {
			if !slices.Contains(t.Outputs, name) {
				return fmt.Errorf("task %q: output_types names %q, which is not an output", t.Name, name)
			}
		}
		outs := map[string]bool{}
		for _, o := range t.Outputs {
			if !identRe.MatchString(o) || len(o) > maxNameLen {
				return fmt.Errorf("task %q: output name %q is not an identifier", t.Name, o)
			}
			if outs[o] {
				return fmt.Errorf("task %q: output %q is declared twice", t.Name, o)
			}
			outs[o] = true
			if err := t.OutputTypes[o].validate(fmt.Sprintf("task %q: output %q", t.Name, o), 0); err != nil {
				return err
			}
		}
	}
	return nil
}

func validName(s string) bool { return len(s) <= maxNameLen && nameRe.MatchString(s) }

func jsonErrorText(data []byte, err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		// Offset is just past the offending byte; point at the byte itself.
		return at(data, max(se.Offset-1, 0), se.Error())
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "value"
		}
		return at(data, te.Offset, fmt.Sprintf("%s: expected %s, found JSON %s", field, te.Type, te.Value))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return at(data, int64(len(data)), "the JSON ends early")
	}
	return err.Error()
}

// at prefixes msg with the line, column and byte offset of off in data.
func at(data []byte, off int64, msg string) string {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line, col := 1, 1
	for _, c := range data[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("line %d, column %d (byte %d): %s", line, col, off, msg)
}
