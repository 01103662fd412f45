package host

import (
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

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
func grantsConfig(g *Grants, cfg wazero.ModuleConfig, asked *askedPaths) (wazero.ModuleConfig, []*os.Root, error) {
	var roots []*os.Root
	fsc := wazero.NewFSConfig()
	if g != nil && len(g.Files) > 0 {
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
			fsc = fsc.WithFSMount(grantFS{root.FS(), asked}, guest)
		}
	}
	// Everywhere else, nothing: but what the guest asked for is kept, so
	// that its failure can say which grant it lacked.
	if g == nil || g.Files["/"] == "" {
		fsc = fsc.WithFSMount(ungrantedFS{asked}, "/")
	}
	cfg = cfg.WithFSConfig(fsc)
	if g == nil {
		return cfg, roots, nil
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
type grantFS struct {
	fs.FS
	asked *askedPaths
}

func (g grantFS) Open(name string) (fs.File, error) {
	f, err := g.FS.Open(name)
	if err == nil {
		g.asked.descriptorChanged()
	}
	var errno syscall.Errno
	if err != nil && !errors.As(err, &errno) && !errors.Is(err, fs.ErrInvalid) && !errors.Is(err, fs.ErrNotExist) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return f, err
}

// askedPaths are the paths a call's guest asked for where no directory
// is granted (a few: enough to name the culprit).
//
// It also records whether, since the instance started (sealed), the
// table of descriptors the runtime keeps for it may have changed: a file
// or directory opened, the root closed. No reset empties that table, so
// an instance whose call changed it is not used again (see Task.call): a
// call must not see what another opened, nor fill the table call after
// call outside any limit.
type askedPaths struct {
	paths   []string
	sealed  bool // the instance has started
	changed bool // a descriptor was opened or closed since
}

const maxAsked = 4

func (a *askedPaths) reset() { a.paths = a.paths[:0] }

// descriptorChanged records a descriptor opened or closed, once the
// instance started.
func (a *askedPaths) descriptorChanged() {
	if a.sealed {
		a.changed = true
	}
}

// hint says what the guest asked for that no grant gives, for the error
// of a call that failed; "" when it asked for nothing.
func (a *askedPaths) hint(g *Grants) string {
	if len(a.paths) == 0 {
		return ""
	}
	granted := "no directory is granted"
	if g != nil && len(g.Files) > 0 {
		guests := make([]string, 0, len(g.Files))
		for guest := range g.Files {
			guests = append(guests, guest)
		}
		sort.Strings(guests)
		granted = "no directory is granted there (granted: " + strings.Join(guests, ", ") + ")"
	}
	return fmt.Sprintf("the task asked for %s, but %s: grant one in the flow's [grants] files, or with call --grant files=GUEST:DIR", strings.Join(a.paths, ", "), granted)
}

// ungrantedFS is what a guest finds at "/", below any granted directory:
// nothing. Every open fails with ENOENT, as it would without it; the
// path is kept.
type ungrantedFS struct{ asked *askedPaths }

func (u ungrantedFS) Open(name string) (fs.File, error) {
	if name == "." {
		u.asked.descriptorChanged()
		return emptyDir{u.asked}, nil // the mount point itself
	}
	if len(u.asked.paths) < maxAsked {
		p := "/" + name
		if len(p) > 256 {
			p = p[:256] + "…"
		}
		if !slices.Contains(u.asked.paths, p) {
			u.asked.paths = append(u.asked.paths, p)
		}
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// emptyDir is the directory "/" of ungrantedFS: it lists nothing.
type emptyDir struct{ asked *askedPaths }

func (d emptyDir) Stat() (fs.FileInfo, error) { return d, nil }
func (emptyDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: "/", Err: syscall.EISDIR}
}
func (d emptyDir) Close() error {
	if d.asked != nil {
		d.asked.descriptorChanged()
	}
	return nil
}
func (emptyDir) ReadDir(int) ([]fs.DirEntry, error) { return nil, nil }
func (emptyDir) Name() string                       { return "/" }
func (emptyDir) Size() int64                        { return 0 }
func (emptyDir) Mode() fs.FileMode                  { return fs.ModeDir | 0o555 }
func (emptyDir) ModTime() time.Time                 { return time.Time{} }
func (emptyDir) IsDir() bool                        { return true }
func (emptyDir) Sys() any                           { return nil }

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
