package main

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// templates are the skeletons `flowhost new` writes: templates/common for
// every language, then the language's own files (a name ending in .tmpl
// is written without it). "@NAME@" stands for the
// library's name, "@LANG@", "@NEEDS@" and "@SOURCE@" for what the README
// says of the language.
//
//go:embed templates
var templates embed.FS

// languages are the skeletons' languages, by --lang.
var languages = map[string]struct{ dir, name, needs, source string }{
	"go":             {"go", "Go", "Go 1.24 or later (and the Extism Go PDK, fetched by the Go toolchain)", "`main.go`"},
	"c":              {"c", "C", "clang, lld and wasi-libc (Debian: `clang lld wasi-libc libclang-rt-14-dev-wasm32`)", "`main.c`"},
	"rust":           {"rust", "Rust", "rustc and its standard library for wasm32-unknown-unknown (Debian: `rustc libstd-rust-dev-wasm32`; rustup: `rustup target add wasm32-unknown-unknown`); no cargo, no crates", "`src/lib.rs`"},
	"assemblyscript": {"assemblyscript", "AssemblyScript", "node 20 and npm 10 or later (the first build installs the compiler and the PDK)", "`assembly/index.ts`"},
	"wat":            {"wat", "the WebAssembly text format", "wat2wasm (Debian: `wabt`)", "`main.wat`"},
}

type newCmd struct {
	Name string `arg:"" name:"NAME" help:"The library's name: lower-case letters, digits and _, starting with a letter (it names the module, its .wasm file and its folder)."`
	Lang string `required:"" enum:"go,c,rust,assemblyscript,wat" placeholder:"LANG" help:"The language: go, c, rust, assemblyscript or wat."`
	Dir  string `placeholder:"DIR" help:"Where to write it (default: ./NAME). It must not exist, or be empty."`
}

var libName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

func (c *newCmd) Run(g *globals) error {
	if !libName.MatchString(c.Name) {
		return usageErr(fmt.Errorf("name %q: use lower-case letters, digits and _, starting with a letter, at most 64 (it names the module, a Go module, a Rust crate and an npm package)", c.Name))
	}
	lang := languages[c.Lang]
	dir := c.Dir
	if dir == "" {
		dir = c.Name
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return usageErr(fmt.Errorf("%s already exists and is not empty: choose another --dir", dir))
	}
	fill := strings.NewReplacer("@NAME@", c.Name, "@LANG@", lang.name, "@NEEDS@", lang.needs, "@SOURCE@", lang.source)
	var written []string
	for _, from := range []string{"templates/common", "templates/" + lang.dir} {
		err := fs.WalkDir(templates, from, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := templates.ReadFile(p)
			if err != nil {
				return err
			}
			// Go files are kept as .tmpl: a go.mod would make its folder
			// another module, which embed leaves out, and a .go file would
			// be built as a package of flowhost's own.
			rel := strings.TrimSuffix(strings.TrimPrefix(p, from+"/"), ".tmpl")
			dst := filepath.Join(dir, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			mode := os.FileMode(0o644)
			if path.Base(rel) == "build.sh" {
				mode = 0o755
			}
			written = append(written, rel)
			return os.WriteFile(dst, []byte(fill.Replace(string(b))), mode)
		})
		if err != nil {
			return fmt.Errorf("write the skeleton: %w", err)
		}
	}
	if len(written) == 0 {
		return errors.New("no template for " + c.Lang)
	}
	fmt.Fprintf(g.stdout, "wrote a %s task library in %s: %s\n\nNext:\n  cd %s\n  ./build.sh\n  flowhost call %s.wasm greet --input name=Ada\n  flowhost run flow.toml\n",
		lang.name, dir, strings.Join(written, ", "), dir, c.Name)
	return nil
}

// Help is the new command's detailed help.
func (c *newCmd) Help() string {
	return `Writes a task library that builds and runs as written: the source of
one task (greet), its manifest, a build script that builds the module,
embeds the manifest and inspects the result, a flow that calls the task,
and a README of the commands.

Examples:
  flowhost new --lang rust greeter
  flowhost new --lang go --dir plugins/mytasks mytasks

docs/writing-tasks.md describes writing tasks in each language.`
}
