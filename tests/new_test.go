package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNew: every skeleton `flowhost new` writes builds with the
// toolchains .ci/run installs, and its task runs with `call` and in its
// flow, as its README says.
func TestNew(t *testing.T) {
	for _, lang := range []string{"go", "c", "rust", "assemblyscript", "wat"} {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "lib")
			name := "greeter_" + lang
			if r := flowhost(t, "new", "--lang", lang, "--dir", dir, name); r.code != 0 || !strings.Contains(r.stdout, "./build.sh") {
				t.Fatalf("new: %d %s %s", r.code, r.stdout, r.stderr)
			}
			build := exec.Command("./build.sh")
			build.Dir = dir
			build.Env = append(os.Environ(), "FLOWHOST="+bin, "FLOWHOST_CACHE_DIR="+cacheDir)
			if _, err := os.Stat("/usr/bin/rustc"); err == nil {
				build.Env = append(build.Env, "RUSTC=/usr/bin/rustc") // Debian's, with the wasm32 library
			}
			if out, err := build.CombinedOutput(); err != nil || !strings.Contains(string(out), "greet") {
				t.Fatalf("build.sh: %v\n%s", err, out)
			}
			wasm := filepath.Join(dir, name+".wasm")
			if r := flowhost(t, "call", wasm, "greet", "--input", "name=Ada"); r.code != 0 || strings.TrimSpace(r.stdout) != `"Hello, Ada!"` {
				t.Fatalf("call: %d %q %s", r.code, r.stdout, r.stderr)
			}
			if r := flowhost(t, "call", wasm, "greet", "-i", "name=Ada", "-i", "greeting=Hi"); r.code != 0 || strings.TrimSpace(r.stdout) != `"Hi, Ada!"` {
				t.Fatalf("call with a greeting: %d %q %s", r.code, r.stdout, r.stderr)
			}
			if r := flowhost(t, "call", wasm, "greet", "-i", "name=7"); r.code != 1 || !strings.Contains(r.stderr, `input "name" must be a string`) {
				t.Fatalf("call with a number: %d %q %s", r.code, r.stdout, r.stderr)
			}
			out, r := runJSONOut(t, filepath.Join(dir, "flow.toml"))
			if out.Status != "succeeded" || string(out.Result) != `"Hello, World!"` {
				t.Fatalf("run flow.toml: %s %s", r.stdout, r.stderr)
			}
		})
	}
}

// TestNewRefuses: a bad name, an unknown language or a folder in use is
// refused before anything is written.
func TestNewRefuses(t *testing.T) {
	used := t.TempDir()
	os.WriteFile(filepath.Join(used, "keep.txt"), []byte("x"), 0o644)
	for _, c := range []struct {
		args   []string
		errHas string
	}{
		{[]string{"new", "--lang", "go", "--dir", t.TempDir() + "/a", "My-Lib"}, `name "My-Lib"`},
		{[]string{"new", "--lang", "cobol", "x"}, "--lang"},
		{[]string{"new", "x"}, "--lang"},
		{[]string{"new", "--lang", "c", "--dir", used, "x"}, "not empty"},
	} {
		if r := flowhost(t, c.args...); r.code != 2 || !strings.Contains(r.stderr, c.errHas) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, r.code, r.stderr, c.errHas)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(used, "keep.txt")); string(b) != "x" {
		t.Fatal("new touched a folder in use")
	}
}
