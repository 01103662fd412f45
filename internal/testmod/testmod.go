// Package testmod builds test modules from source for the tests: WAT
// through wat2wasm (Debian package wabt), with a manifest embedded.
package testmod

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/flowhost/flowhost/abi"
)

// WAT compiles a WAT source file to a binary module. The test fails, with
// the compiler's message, when wat2wasm is missing or rejects the file.
func WAT(t testing.TB, path string) []byte {
	t.Helper()
	return wat2wasm(t, path, "--enable-all")
}

// UncheckedWATText compiles WAT source text without validating it: for
// tests of what the host does with an invalid module.
func UncheckedWATText(t testing.TB, src string) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "module.wat")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return wat2wasm(t, path, "--enable-all", "--no-check")
}

func wat2wasm(t testing.TB, path string, flags ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Fatalf("wat2wasm not found (install the Debian package wabt): %v", err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(path)+".wasm")
	cmd := exec.Command(bin, append(flags, path, "-o", out)...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm %s: %v\n%s", path, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// WATText compiles WAT source text to a binary module, like WAT: for
// tests that generate their modules.
func WATText(t testing.TB, src string) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "module.wat")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return WAT(t, path)
}

// WithManifest returns wasm with manifest (JSON text) as its
// flowhost.manifest section.
func WithManifest(t testing.TB, wasm []byte, manifest string) []byte {
	t.Helper()
	b, err := abi.AppendCustomSection(wasm, abi.SectionName, []byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Module compiles the WAT file at path and embeds the manifest held in
// the file manifestPath.
func Module(t testing.TB, path, manifestPath string) []byte {
	t.Helper()
	man, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	return WithManifest(t, WAT(t, path), string(man))
}
