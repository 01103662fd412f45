package host

import (
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"syscall"

	"github.com/tetratelabs/wazero"

	"github.com/flowhost/flowhost/policy"
)

// Grants are what a call may reach beyond the sandbox (the flow's
// [grants]); nil grants nothing: no files, no environment, no network, a
// fake clock and fixed randomness.
type Grants = policy.Grants

func grantsEmpty(g *Grants) bool { return g == nil || g.Empty() }

// grantsKey identifies a set of grants: instances are pooled per key, so an
// instance never serves a call with other grants than it was made with.
func grantsKey(g *Grants) string {
	if grantsEmpty(g) {
		return ""
	}
	b, _ := json.Marshal(g) // maps marshal in key order
	return string(b)
}

// CheckGrants validates grants: directories exist, guest paths are
// absolute, host patterns are well-formed.
func CheckGrants(g *Grants) error {
	if g == nil {
		return nil
	}
	for guest, dir := range g.Files {
		if !path.IsAbs(guest) {
			return fmt.Errorf("grant files: guest path %q must be absolute (like \"/data\")", guest)
		}
		st, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("grant files: %w", err)
		}
		if !st.IsDir() {
			return fmt.Errorf("grant files: %s is not a directory", dir)
		}
	}
	for _, h := range g.HTTP {
		if !policy.ValidHostPattern(h) {
			return fmt.Errorf("grant http: %q is not a host name or a pattern like \"*.example.com\"", h)
		}
	}
	return nil
}

// grantsConfig applies the grants to an instance's configuration. It
// returns the roots of the granted directories, which the instance
// closes when it is done.
//
// A granted directory is mounted through an os.Root: every path the guest
// opens is resolved beneath the directory, one component at a time, and
// a symlink that would lead out of it (absolute, or through "..") is
// refused; one that stays inside is followed. The resolution and the open
// are one step, so a symlink swapped in while the guest reads cannot win
// a race. Files are opened read-only.
func grantsConfig(g *Grants, cfg wazero.ModuleConfig) (wazero.ModuleConfig, []*os.Root, error) {
	if g == nil {
		return cfg, nil, nil
	}
	var roots []*os.Root
	if len(g.Files) > 0 {
		fs := wazero.NewFSConfig()
		guests := make([]string, 0, len(g.Files))
		for guest := range g.Files {
			guests = append(guests, guest)
		}
		sort.Strings(guests)
		for _, guest := range guests {
			root, err := os.OpenRoot(g.Files[guest])
			if err != nil {
				closeRoots(roots)
				return nil, nil, fmt.Errorf("grant files %s: %w", guest, err)
			}
			roots = append(roots, root)
			fs = fs.WithFSMount(grantFS{root.FS()}, guest)
		}
		cfg = cfg.WithFSConfig(fs)
	}
	names := make([]string, 0, len(g.Env))
	for k := range g.Env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		cfg = cfg.WithEnv(k, g.Env[k])
	}
	if g.Clock {
		cfg = cfg.WithSysWalltime().WithSysNanotime().WithSysNanosleep()
	}
	if g.Random {
		cfg = cfg.WithRandSource(crand.Reader) // else the instance's fixedRand
	}
	return cfg, roots, nil
}

// grantFS is a granted directory, an os.Root's file system, on which an
// open that os.Root refuses for escaping the directory fails with EPERM:
// the root's own error, which is no system error, would reach the guest
// as EIO.
type grantFS struct{ fs.FS }

func (g grantFS) Open(name string) (fs.File, error) {
	f, err := g.FS.Open(name)
	var errno syscall.Errno
	if err != nil && !errors.As(err, &errno) && !errors.Is(err, fs.ErrInvalid) && !errors.Is(err, fs.ErrNotExist) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return f, err
}

func closeRoots(roots []*os.Root) {
	for _, r := range roots {
		r.Close()
	}
}

// allowsHost reports whether g allows an HTTP request to host.
func allowsHost(g *Grants, host string) bool {
	if g == nil {
		return false
	}
	for _, p := range g.HTTP {
		if policy.MatchHost(p, host) {
			return true
		}
	}
	return false
}
