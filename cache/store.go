package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/flowhost/flowhost/internal/atomicfile"
)

// Store keeps entries by key. Implementations are safe for concurrent
// use, by several processes too.
type Store interface {
	// Get returns the value stored under key; a missing, expired or
	// corrupt entry is a miss (and a corrupt one is removed).
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Put stores value under key.
	Put(ctx context.Context, key string, value []byte) error
}

// Seal is an entry as stored: the sha256 of the value, then the value.
// Unseal refuses an entry whose bytes do not match their hash.
func Seal(value []byte) []byte {
	sum := sha256.Sum256(value)
	return append(sum[:], value...)
}

// Unseal returns the value of a sealed entry, or false when it is corrupt.
func Unseal(entry []byte) ([]byte, bool) {
	if len(entry) < sha256.Size {
		return nil, false
	}
	sum := sha256.Sum256(entry[sha256.Size:])
	if !bytes.Equal(sum[:], entry[:sha256.Size]) {
		return nil, false
	}
	return entry[sha256.Size:], true
}

// Disk is a Store in a directory, in the manner of Go's build cache: one
// file per entry, named by its key, written to a temporary file and
// renamed into place (so several processes may write the same entry at
// once, and a reader never sees half an entry), its modification time
// refreshed when it is read (for least-recently-used trimming).
type Disk struct {
	dir     string
	maxSize int64
	ttl     time.Duration

	puts      atomic.Int64
	Evictions atomic.Int64
}

// Defaults of a Disk store.
const (
	DefaultMaxSize = 1 << 30
	DefaultTTL     = 30 * 24 * time.Hour
)

// OpenDisk opens (making it) the store in dir, trimmed to maxSize bytes
// and entries read within ttl (zero: the defaults).
func OpenDisk(dir string, maxSize int64, ttl time.Duration) (*Disk, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &Disk{dir: dir, maxSize: maxSize, ttl: ttl}, nil
}

func (d *Disk) path(key string) string {
	if len(key) < 2 || strings.ContainsAny(key, `/\.`) {
		return ""
	}
	return filepath.Join(d.dir, key[:2], key)
}

// Get implements Store.
func (d *Disk) Get(_ context.Context, key string) ([]byte, bool, error) {
	p := d.path(key)
	if p == "" {
		return nil, false, nil
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, ok := Unseal(b)
	if !ok {
		os.Remove(p) // corrupt: never returned, recomputed
		return nil, false, nil
	}
	now := time.Now()
	if st, err := os.Stat(p); err == nil {
		if now.Sub(st.ModTime()) > d.ttl {
			os.Remove(p)
			return nil, false, nil
		}
		if now.Sub(st.ModTime()) > time.Hour { // as Go's build cache: at most once an hour
			os.Chtimes(p, now, now)
		}
	}
	return v, true, nil
}

// Put implements Store.
func (d *Disk) Put(_ context.Context, key string, value []byte) error {
	p := d.path(key)
	if p == "" {
		return errors.New("cache: invalid key")
	}
	if err := atomicfile.Write(p, Seal(value)); err != nil {
		return err
	}
	if d.puts.Add(1)%1024 == 0 {
		d.Trim()
	}
	return nil
}

// Stats are a store's entries and bytes.
type Stats struct {
	Entries int64 `json:"entries"`
	Bytes   int64 `json:"bytes"`
}

type entry struct {
	path string
	size int64
	mod  time.Time
}

func (d *Disk) entries() []entry {
	var out []entry
	filepath.WalkDir(d.dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return nil
		}
		if info, err := de.Info(); err == nil {
			out = append(out, entry{p, info.Size(), info.ModTime()})
		}
		return nil
	})
	return out
}

// Stats counts the store's entries.
func (d *Disk) Stats() Stats {
	var s Stats
	for _, e := range d.entries() {
		s.Entries++
		s.Bytes += e.size
	}
	return s
}

// Trim removes expired entries, then the least recently used ones until
// the store is within its size; it returns how many it removed.
func (d *Disk) Trim() int {
	es := d.entries()
	sort.Slice(es, func(i, j int) bool { return es[i].mod.After(es[j].mod) })
	var total int64
	removed := 0
	now := time.Now()
	for _, e := range es {
		if now.Sub(e.mod) > d.ttl || total+e.size > d.maxSize {
			if os.Remove(e.path) == nil {
				removed++
			}
			continue
		}
		total += e.size
	}
	d.Evictions.Add(int64(removed))
	return removed
}

// Clear removes every entry.
func (d *Disk) Clear() (int, error) {
	n := 0
	for _, e := range d.entries() {
		if os.Remove(e.path) == nil {
			n++
		}
	}
	return n, nil
}

// WriteOnly is store for writing only: every Get misses. A step re-run on
// purpose computes its calls again and stores the results.
func WriteOnly(store Store) Store { return writeOnly{store} }

type writeOnly struct{ Store }

func (writeOnly) Get(context.Context, string) ([]byte, bool, error) { return nil, false, nil }
