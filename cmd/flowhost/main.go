// Command flowhost runs workflows of sandboxed WebAssembly tasks.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"

	"github.com/alecthomas/kong"
)

// Exit codes (README, "Commands").
const (
	exitOK      = 0
	exitFailed  = 1 // a task failed or the run was cancelled
	exitInvalid = 2 // the flow, a module or the command line is invalid
)

type cli struct {
	CacheDir   string `name:"cache-dir" env:"FLOWHOST_CACHE_DIR" placeholder:"DIR" help:"Where compiled modules, cached task results (results/) and in-process run records (runs/, for rerun) are kept between runs (default: the user cache directory; \"off\" disables them)."`
	LogFormat  string `name:"log-format" enum:"text,json" default:"text" help:"Log format on stderr: text or json."`
	LogLevel   string `name:"log-level" enum:",debug,info,warn,error" default:"" help:"Least severe log level shown: debug, info, warn or error (default: info for worker, warn otherwise). Guest logs go through the same logger."`
	CPUProfile string `name:"cpuprofile" placeholder:"FILE" help:"Write a CPU profile of the command to FILE (for go tool pprof)." type:"path"`

	Run      runCmd      `cmd:"" help:"Run a flow (flow.toml) and print its result: in this process, or on a broker's workers with --broker."`
	Call     callCmd     `cmd:"" help:"Run one task of a module and print its output: the fastest way to try a task."`
	Graph    graphCmd    `cmd:"" help:"Print a flow's graph as Graphviz DOT or Mermaid."`
	Worker   workerCmd   `cmd:"" help:"Serve tasks from a broker until SIGINT/SIGTERM, then drain."`
	Serve    serveCmd    `cmd:"" help:"Serve the web dashboard and the JSON API over a broker's Redis."`
	Status   statusCmd   `cmd:"" help:"Show a run's status and steps (broker runs)."`
	Wait     waitCmd     `cmd:"" help:"Wait for a run to end and print its result (broker runs)."`
	Runs     runsCmd     `cmd:"" help:"List recent runs, newest first (broker runs)."`
	Events   eventsCmd   `cmd:"" help:"Print a run's events as JSON lines, following it live until it ends (broker runs)."`
	Cancel   cancelCmd   `cmd:"" help:"Cancel a run: nothing new starts, running tasks are interrupted."`
	Rerun    rerunCmd    `cmd:"" help:"Run a run again: what succeeded is a cache hit, only what failed and what depends on it runs."`
	Schedule scheduleCmd `cmd:"" help:"Run a flow on its [schedule]: stored on a broker, whose workers fire it (add, list, remove), or in this process (run)."`
	Cache    cacheCmd    `cmd:"" help:"Count or clear the cached results of task calls."`
	Tenants  tenantsCmd  `cmd:"" help:"Register, remove and list the tenants workers serve; print a tenant's Redis ACL."`
	New      newCmd      `cmd:"" help:"Write a task library skeleton (Go, C, Rust, AssemblyScript or WAT) that builds and runs as written."`
	Inspect  inspectCmd  `cmd:"" help:"Show a module's manifest, imports, size and sha256."`
	Embed    embedCmd    `cmd:"" help:"Embed a manifest into a module as its flowhost.manifest custom section."`
}

type globals struct {
	cacheDir  string
	logFormat string
	logLevel  string
	stdout    io.Writer
	stderr    io.Writer
	logger    *slog.Logger
}

// exitError carries an exit code with an error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(err error) error { return &exitError{code: exitInvalid, err: err} }

// silentError carries an exit code for an error already reported (as
// JSON on stdout), so main prints nothing more.
type silentError struct{ error }

func silent(err error) error { return silentError{err} }

func (e silentError) Unwrap() error { return e.error }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var c cli
	g := &globals{stdout: stdout, stderr: stderr}
	exit := -1
	parser, err := kong.New(&c,
		kong.Name("flowhost"),
		kong.Description("flowhost runs workflows of sandboxed WebAssembly tasks."),
		kong.UsageOnError(),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exit = code }),
		kong.Bind(g),
		durationMapper,
	)
	if err != nil {
		fmt.Fprintln(stderr, "flowhost:", err)
		return exitInvalid
	}
	kctx, err := parser.Parse(args)
	if exit >= 0 { // --help
		return exit
	}
	if err != nil {
		fmt.Fprintln(stderr, "flowhost:", err)
		return exitInvalid
	}
	g.cacheDir, g.logFormat, g.logLevel = c.CacheDir, c.LogFormat, c.LogLevel
	g.logger = g.newLogger(slog.LevelWarn)
	if c.CPUProfile != "" {
		f, err := os.Create(c.CPUProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(stderr, "flowhost: --cpuprofile:", err)
			return exitInvalid
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if err := kctx.Run(g); err != nil {
		var se silentError
		if !errors.As(err, &se) {
			fmt.Fprintln(stderr, "flowhost:", err)
		}
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return exitFailed
	}
	return exitOK
}

func compactJSON(b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}

func defaultWorkers() int { return runtime.GOMAXPROCS(0) }

// redactURL hides a URL's password in logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// newLogger makes the logger the flags ask for; def is the command's
// default level.
func (g *globals) newLogger(def slog.Level) *slog.Logger {
	level := def
	switch g.logLevel {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	var l *slog.Logger
	if g.logFormat == "json" {
		l = slog.New(slog.NewJSONHandler(g.stderr, opts))
	} else {
		l = slog.New(slog.NewTextHandler(g.stderr, opts))
	}
	// What libraries log through slog's default (the Redis client's own
	// lines, at debug) goes where the command's own logs go.
	slog.SetDefault(l)
	return l
}
