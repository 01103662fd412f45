package cache

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"
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

// Disk is a Store in a directory, shared by every process that opens it.
// Each process appends its entries to a pack file of its own (records of
// key, length, hash and value; a record torn by a crash fails its hash
// and ends its pack), and keeps an index of every pack in the directory,
// read when it opens the store and refreshed when a key is missing. So a
// hit is one read at a known offset, a store one buffered append: the
// cost of a file per entry (~200 µs to write, ~15 µs to read here) would
// exceed the calls it saves. Packs are trimmed whole, the least recently
// written first, to stay within the store's size and TTL.
type Disk struct {
	dir     string
	maxSize int64
	ttl     time.Duration

	mu      sync.Mutex
	index   map[string]loc
	packs   map[string]*os.File // read handles, by name
	seen    map[string]int64    // bytes of each pack indexed so far
	own     *os.File            // this process's pack, appended to
	ownName string
	buf     *bufio.Writer
	ownSize int64
	scanned time.Time // when the packs were last indexed

	Evictions atomic.Int64
}

// rescanEvery bounds how often a miss looks for entries other processes
// stored since: a directory read per miss would cost more than the calls.
const rescanEvery = time.Second

// loc is where an entry's record lies, and, for a small entry this
// process wrote or already read (and checked), its value.
type loc struct {
	pack   string
	off    int64 // of the sealed value
	length int64
	value  []byte
}

// memoMax is the largest value a Disk keeps in memory once checked: a
// hit on it then costs a map lookup.
const memoMax = 4 << 10

// Defaults of a Disk store.
const (
	DefaultMaxSize = 1 << 30
	DefaultTTL     = 30 * 24 * time.Hour
	packSuffix     = ".pack"
	keyLen         = 64
)

// OpenDisk opens (making it) the store in dir, trimmed to maxSize bytes
// and packs written within ttl (zero: the defaults). Close it to write
// what it buffers.
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
	d := &Disk{dir: dir, maxSize: maxSize, ttl: ttl, index: map[string]loc{}, packs: map[string]*os.File{}, seen: map[string]int64{}}
	d.Trim()
	d.mu.Lock()
	d.scan()
	d.mu.Unlock()
	return d, nil
}

// scan indexes what the packs hold past what was indexed. Called with d.mu held.
func (d *Disk) scan() {
	d.scanned = time.Now()
	names, _ := filepath.Glob(filepath.Join(d.dir, "*"+packSuffix))
	for _, p := range names {
		name := filepath.Base(p)
		f := d.packs[name]
		if f == nil {
			var err error
			if f, err = os.Open(p); err != nil {
				continue
			}
			d.packs[name] = f
		}
		st, err := f.Stat()
		if err != nil || st.Size() <= d.seen[name] {
			continue
		}
		r := bufio.NewReaderSize(io.NewSectionReader(f, d.seen[name], st.Size()-d.seen[name]), 1<<16)
		off := d.seen[name]
		var head [keyLen + 8]byte
		for {
			if _, err := io.ReadFull(r, head[:]); err != nil {
				break
			}
			n := int64(binary.LittleEndian.Uint64(head[keyLen:]))
			if n < sha256.Size || off+int64(len(head))+n > st.Size() {
				break // torn or foreign: the pack ends here
			}
			if _, err := r.Discard(int(n)); err != nil {
				break
			}
			d.index[string(head[:keyLen])] = loc{pack: name, off: off + int64(len(head)), length: n}
			off += int64(len(head)) + n
		}
		d.seen[name] = off
	}
}

// Get implements Store.
func (d *Disk) Get(_ context.Context, key string) ([]byte, bool, error) {
	if len(key) != keyLen {
		return nil, false, nil
	}
	d.mu.Lock()
	l, ok := d.index[key]
	if !ok && time.Since(d.scanned) > rescanEvery {
		d.scan() // another process may have stored it since
		l, ok = d.index[key]
	}
	if ok && l.value == nil && l.pack == d.ownName && d.buf != nil {
		d.buf.Flush()
	}
	f := d.packs[l.pack]
	d.mu.Unlock()
	if ok && l.value != nil {
		return l.value, true, nil
	}
	if !ok || f == nil {
		return nil, false, nil
	}
	b := make([]byte, l.length)
	if _, err := f.ReadAt(b, l.off); err != nil {
		return nil, false, nil
	}
	v, ok := Unseal(b)
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, same := d.index[key]
	same = same && cur.pack == l.pack && cur.off == l.off
	if !ok { // corrupt: never returned; a new record will supersede it
		if same {
			delete(d.index, key)
		}
		return nil, false, nil
	}
	if same && len(v) <= memoMax {
		cur.value = v
		d.index[key] = cur
	}
	return v, true, nil
}

// Put implements Store.
func (d *Disk) Put(_ context.Context, key string, value []byte) error {
	if len(key) != keyLen {
		return errors.New("cache: invalid key")
	}
	sealed := Seal(value)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.own == nil {
		name := fmt.Sprintf("%d-%d-%016x%s", time.Now().UnixNano(), os.Getpid(), rand.Uint64(), packSuffix)
		f, err := os.OpenFile(filepath.Join(d.dir, name), os.O_CREATE|os.O_EXCL|os.O_RDWR|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		d.own, d.ownName, d.buf = f, name, bufio.NewWriterSize(f, 1<<16)
		d.packs[name] = f
	}
	var head [keyLen + 8]byte
	copy(head[:], key)
	binary.LittleEndian.PutUint64(head[keyLen:], uint64(len(sealed)))
	d.buf.Write(head[:])
	if _, err := d.buf.Write(sealed); err != nil {
		return err
	}
	l := loc{pack: d.ownName, off: d.ownSize + int64(len(head)), length: int64(len(sealed))}
	if len(value) <= memoMax {
		l.value = sealed[sha256.Size:]
	}
	d.index[key] = l
	d.ownSize += int64(len(head)) + int64(len(sealed))
	d.seen[d.ownName] = d.ownSize
	return nil
}

// Evicted counts the packs Trim removed.
func (d *Disk) Evicted() int64 { return d.Evictions.Load() }

// Close writes what the store buffers and closes its files.
func (d *Disk) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var err error
	if d.buf != nil {
		err = d.buf.Flush()
	}
	for _, f := range d.packs {
		f.Close()
	}
	d.packs, d.own, d.buf = map[string]*os.File{}, nil, nil
	return err
}

// Stats are a store's entries and bytes.
type Stats struct {
	Entries int64 `json:"entries"`
	Bytes   int64 `json:"bytes"`
}

// Stats counts the store's entries (the latest of each key) and the bytes
// its packs take.
func (d *Disk) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.buf != nil {
		d.buf.Flush()
	}
	d.scan()
	s := Stats{Entries: int64(len(d.index))}
	for _, n := range d.seen {
		s.Bytes += n
	}
	return s
}

// Trim removes the packs written longer than the TTL ago, then the
// oldest ones until the store is within its size; it returns how many
// packs it removed. This process's own pack is never removed.
func (d *Disk) Trim() int {
	names, _ := filepath.Glob(filepath.Join(d.dir, "*"+packSuffix))
	type pack struct {
		path string
		size int64
		mod  time.Time
	}
	var ps []pack
	for _, p := range names {
		if st, err := os.Stat(p); err == nil {
			ps = append(ps, pack{p, st.Size(), st.ModTime()})
		}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].mod.After(ps[j].mod) })
	var total int64
	removed := 0
	now := time.Now()
	for _, p := range ps {
		if filepath.Base(p.path) != d.ownName && (now.Sub(p.mod) > d.ttl || total+p.size > d.maxSize) {
			if os.Remove(p.path) == nil {
				removed++
			}
			continue
		}
		total += p.size
	}
	d.Evictions.Add(int64(removed))
	d.mu.Lock()
	for _, p := range ps {
		name := filepath.Base(p.path)
		if _, err := os.Stat(p.path); err != nil && d.packs[name] != nil && name != d.ownName {
			d.packs[name].Close()
			delete(d.packs, name)
			delete(d.seen, name)
			for k, l := range d.index {
				if l.pack == name {
					delete(d.index, k)
				}
			}
		}
	}
	d.mu.Unlock()
	return removed
}

// Clear removes every entry.
func (d *Disk) Clear() (int, error) {
	st := d.Stats()
	d.Close()
	names, _ := filepath.Glob(filepath.Join(d.dir, "*"+packSuffix))
	for _, p := range names {
		os.Remove(p)
	}
	d.mu.Lock()
	d.index, d.seen = map[string]loc{}, map[string]int64{}
	d.mu.Unlock()
	return int(st.Entries), nil
}

// WriteOnly is store for writing only: every Get misses. A step re-run on
// purpose computes its calls again and stores the results.
func WriteOnly(store Store) Store { return writeOnly{store} }

type writeOnly struct{ Store }

func (writeOnly) Get(context.Context, string) ([]byte, bool, error) { return nil, false, nil }
