package host

import (
	"fmt"

	"github.com/flowhost/flowhost/abi"
)

// Declared is a module known by its manifest alone, with no code: its
// tasks can be planned, bound and checked (their inputs and outputs are
// the manifest's), but calling one fails. It stands for a module
// wherever only what it declares matters: plans, graphs, and tests of the
// execution model that run their calls on an executor of their own.
func Declared(manifest []byte) (*Module, error) {
	m, err := abi.ParseManifest(manifest)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	mod := &Module{Name: m.Name, Manifest: m, ManifestSource: "declared", tasks: make(map[string]*Task, len(m.Tasks))}
	for i := range m.Tasks {
		spec := &m.Tasks[i]
		mod.exports = append(mod.exports, spec.Export)
		mod.tasks[spec.Name] = newTask(mod, spec, i)
	}
	return mod, nil
}

// callable refuses a call of a module that has no code (Declared).
func (m *Module) callable(t *Task) error {
	if m.compiled != nil {
		return nil
	}
	return &TaskError{Kind: KindBadInput, Module: m.Name, Task: t.Spec.Name, Msg: "the module is declared by its manifest alone: it has no code to call"}
}
