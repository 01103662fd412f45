//go:build unix

package host_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/internal/testmod"
)

// secret is the content of the file outside the grant: no read may
// return it.
const secret = "SECRET-outside-the-grant"

// grantTree makes parent/grant (granted, holding sub/file = "inside") and
// parent/outside/secret, and returns the grant's directory and the
// outside one.
func grantTree(t *testing.T) (grant, outside string) {
	parent := t.TempDir()
	grant, outside = filepath.Join(parent, "grant"), filepath.Join(parent, "outside")
	for _, d := range []string{filepath.Join(grant, "sub"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(grant, "sub", "file"), "inside")
	write(t, filepath.Join(outside, "secret"), secret)
	return grant, outside
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// readGranted has the guest read path beneath /data and returns what it
// read, or "errno N" when the open or the read failed.
func readGranted(t *testing.T, read *host.Task, lim host.Limits, path string) string {
	t.Helper()
	in, _ := json.Marshal(map[string]string{"path": path})
	out, err := read.Call(context.Background(), in, lim)
	if strings.Contains(string(out), "SECRET") || (err != nil && strings.Contains(err.Error(), "SECRET")) {
		t.Fatalf("read %s returned the file outside the grant: %s %v", path, out, err)
	}
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	var s string
	if json.Unmarshal(out, &s) == nil {
		return s
	}
	return "errno " + string(out)
}

// TestGrantedFilesStayInside: a granted directory gives its own files and
// nothing else. Every path is resolved beneath the grant, symlinks
// included: one that leads outside (absolute, relative, through a chain,
// through "..") is refused; one that stays inside is followed.
func TestGrantedFilesStayInside(t *testing.T) {
	grant, outside := grantTree(t)
	symlink(t, outside, filepath.Join(grant, "abs"))                               // absolute, to a directory outside
	symlink(t, "../outside", filepath.Join(grant, "rel"))                          // relative, outside
	symlink(t, filepath.Join(outside, "secret"), filepath.Join(grant, "leak"))     // absolute, to a file outside
	symlink(t, "chain2", filepath.Join(grant, "chain1"))                           // a chain whose end is outside
	symlink(t, "../outside/secret", filepath.Join(grant, "chain2"))                //
	symlink(t, "..", filepath.Join(grant, "up"))                                   // the grant's parent
	symlink(t, "sub/file", filepath.Join(grant, "alias"))                          // inside: followed
	symlink(t, "sub", filepath.Join(grant, "subdir"))                              // inside, a directory
	symlink(t, "alias", filepath.Join(grant, "alias2"))                            // a chain inside
	symlink(t, filepath.Join(grant, "sub", "file"), filepath.Join(grant, "absin")) // absolute, inside: refused too
	e := newEngine(t)
	m := load(t, e, testmod.Module(t, "testdata/files.wat", "testdata/files.json"))
	lim := testLimits
	lim.Grants = &host.Grants{Files: map[string]string{"/data": grant}}
	if err := host.CheckGrants(lim.Grants); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path string
		want string // the content, or the errno of a refusal (63: EPERM)
	}{
		{"sub/file", "inside"},
		{"alias", "inside"},
		{"alias2", "inside"},
		{"subdir/file", "inside"},
		{"sub/../sub/file", "inside"},
		{"abs/secret", "errno 63"},
		{"rel/secret", "errno 63"},
		{"leak", "errno 63"},
		{"chain1", "errno 63"},
		{"up/outside/secret", "errno 63"},
		{"../outside/secret", "errno 63"},
		{"sub/../../outside/secret", "errno 63"},
		{"absin", "errno 63"},
	}
	read := task(t, m, "read")
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			got := readGranted(t, read, lim, c.path)
			if got != c.want {
				t.Fatalf("read %s: %q; want %s", c.path, got, c.want)
			}
		})
	}
	t.Run("read-only", func(t *testing.T) {
		for _, p := range []string{"sub/file", "sub/new", "leak"} {
			in, _ := json.Marshal(map[string]string{"path": p})
			out, err := task(t, m, "write").Call(context.Background(), in, lim)
			if err != nil || string(out) == "0" {
				t.Fatalf("write %s: %s %v; want an errno", p, out, err)
			}
		}
		if b, _ := os.ReadFile(filepath.Join(grant, "sub", "file")); string(b) != "inside" {
			t.Fatalf("sub/file holds %q", b)
		}
		if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != secret {
			t.Fatalf("the file outside holds %q", b)
		}
		if _, err := os.Stat(filepath.Join(grant, "sub", "new")); !os.IsNotExist(err) {
			t.Fatalf("the guest created sub/new: %v", err)
		}
	})
}

// TestGrantedFilesSymlinkRace: a symlink to a file outside the grant
// swapped in and out while guests read it: no read ever returns the
// outside file. (Checking a path and then opening it would lose this
// race; the host resolves and opens in one step beneath the grant.)
func TestGrantedFilesSymlinkRace(t *testing.T) {
	grant, outside := grantTree(t)
	swap := filepath.Join(grant, "swap")
	write(t, swap, "inside")
	e := newEngine(t)
	m := load(t, e, testmod.Module(t, "testdata/files.wat", "testdata/files.json"))
	lim := testLimits
	lim.Grants = &host.Grants{Files: map[string]string{"/data": grant}}
	read := task(t, m, "read")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // swaps swap between a file inside and a symlink outside, atomically
		defer wg.Done()
		tmpFile, tmpLink := filepath.Join(grant, "swap.file"), filepath.Join(grant, "swap.link")
		for {
			select {
			case <-stop:
				return
			default:
			}
			if os.WriteFile(tmpFile, []byte("inside"), 0o644) != nil || os.Rename(tmpFile, swap) != nil {
				panic("cannot swap in the file")
			}
			os.Remove(tmpLink)
			if os.Symlink(filepath.Join(outside, "secret"), tmpLink) != nil || os.Rename(tmpLink, swap) != nil {
				panic("cannot swap in the symlink")
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	// Until both states have been read, at least 2,000 reads; 200,000 reads
	// without seeing both would mean the race was not run at all.
	var inside, refused int
	for i := 0; i < 200_000 && (i < 2000 || inside == 0 || refused == 0); i++ {
		switch got := readGranted(t, read, lim, "swap"); {
		case got == "inside":
			inside++
		case strings.HasPrefix(got, "errno "): // EPERM, or ELOOP when the swap lands mid-open
			refused++
		default:
			t.Fatalf("read swap: %q", got)
		}
	}
	if inside == 0 || refused == 0 {
		t.Fatalf("the race was not run: %d reads of the file, %d refusals", inside, refused)
	}
	t.Logf("%d reads of the file inside, %d refusals of the symlink, none of the file outside", inside, refused)
}
