package abi

import (
	"fmt"
)

// Import module names a task module may use.
const (
	ExtismEnv = "extism:host/env"
	WASI      = "wasi_snapshot_preview1"
)

const (
	i32 = 0x7f
	i64 = 0x7e
)

func sig(params, results []byte) FuncType { return FuncType{Params: params, Results: results} }

var (
	none  = []byte{}
	one64 = []byte{i64}
	one32 = []byte{i32}
	two64 = []byte{i64, i64}
)

// HostFuncs is the Extism guest ABI: every function a module may import
// from "extism:host/env", with its signature (docs/abi.md).
var HostFuncs = map[string]FuncType{
	"input_length":     sig(none, one64),
	"input_load_u8":    sig(one64, one32),
	"input_load_u64":   sig(one64, one64),
	"input_offset":     sig(none, one64),
	"alloc":            sig(one64, one64),
	"free":             sig(one64, none),
	"length":           sig(one64, one64),
	"length_unsafe":    sig(one64, one64),
	"load_u8":          sig(one64, one32),
	"load_u64":         sig(one64, one64),
	"store_u8":         sig([]byte{i64, i32}, none),
	"store_u64":        sig(two64, none),
	"output_set":       sig(two64, none),
	"output_offset":    sig(none, one64),
	"output_length":    sig(none, one64),
	"error_set":        sig(one64, none),
	"error_get":        sig(none, one64),
	"config_get":       sig(one64, one64),
	"var_get":          sig(one64, one64),
	"var_set":          sig(two64, none),
	"log_info":         sig(one64, none),
	"log_debug":        sig(one64, none),
	"log_warn":         sig(one64, none),
	"log_error":        sig(one64, none),
	"log_trace":        sig(one64, none),
	"get_log_level":    sig(none, one32),
	"http_request":     sig(two64, one64),
	"http_status_code": sig(none, one32),
	"http_headers":     sig(none, one64),
}

// CheckImports refuses any import that is not a function of the Extism
// guest ABI (with the right signature) or of WASI preview 1. WASI
// signatures are left to the runtime, which checks them at instantiation.
func CheckImports(m *Module) error {
	for _, im := range m.Imports {
		switch im.Module {
		case ExtismEnv:
			if im.Kind != KindFunc {
				return fmt.Errorf("%w: %s.%s is a %s; only functions are provided", ErrImportRefused, im.Module, im.Name, KindName(im.Kind))
			}
			want, ok := HostFuncs[im.Name]
			if !ok {
				return fmt.Errorf("%w: %s.%s is not a function of the Extism guest ABI", ErrImportRefused, im.Module, im.Name)
			}
			if !sameSig(want, *im.Type) {
				return fmt.Errorf("%w: %s.%s has type %s; the ABI defines %s", ErrImportRefused, im.Module, im.Name, im.Type, want)
			}
		case WASI:
			if im.Kind != KindFunc {
				return fmt.Errorf("%w: %s.%s is a %s; only functions are provided", ErrImportRefused, im.Module, im.Name, KindName(im.Kind))
			}
		default:
			return fmt.Errorf("%w: %s.%s (%s): modules may import only from %q and %q", ErrImportRefused, im.Module, im.Name, KindName(im.Kind), ExtismEnv, WASI)
		}
	}
	return nil
}

// CheckTasks checks that every task of the manifest names an exported
// function of type () -> i32.
func CheckTasks(m *Module, man *Manifest) error {
	for _, t := range man.Tasks {
		ft, ok := m.ExportedFunc(t.Export)
		if !ok {
			if m.HasExport(t.Export) {
				return fmt.Errorf("%w: task %q: export %q is not a function", ErrExportMismatch, t.Name, t.Export)
			}
			return fmt.Errorf("%w: task %q: the module has no export %q", ErrExportMismatch, t.Name, t.Export)
		}
		if len(ft.Params) != 0 || len(ft.Results) != 1 || ft.Results[0] != i32 {
			return fmt.Errorf("%w: task %q: export %q has type %s; a task must be () -> i32", ErrExportMismatch, t.Name, t.Export, ft)
		}
	}
	return nil
}

func sameSig(a, b FuncType) bool {
	return string(a.Params) == string(b.Params) && string(a.Results) == string(b.Results)
}
