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
	"math"
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
	Get(ctx context.Context, key Key) ([]byte, bool, error)
	// Put stores value under key. The store may keep value: the caller
	// must not modify it afterwards (nor a value Get returned).
	Put(ctx context.Context, key Key, value []byte) error
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
	index   map[Key]loc
	packs   map[string]*os.File // read handles, by name
	seen    map[string]int64    // bytes of each pack indexed so far
	ids     map[string]uint32   // a number for each pack name, from 1
	names   []string            // the pack names by number (names[0] is "")
	own     *os.File            // this process's pack, appended to
	ownName string
	ownID   uint32
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
	off    int64  // of the sealed value
	pack   uint32 // Disk.packID
	length uint32
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
	keyLen         = len(Key{})
	// maxEntry bounds a record's sealed value (its length is a uint32
	// in the index).
	maxEntry = math.MaxUint32
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
	d := &Disk{dir: dir, maxSize: maxSize, ttl: ttl, index: map[Key]loc{}, packs: map[string]*os.File{}, seen: map[string]int64{}, ids: map[string]uint32{}}
	d.Trim()
	d.mu.Lock()
	d.scan()
	d.mu.Unlock()
	return d, nil
}

// packID is the number of the pack named name. Called with d.mu held.
func (d *Disk) packID(name string) uint32 {
	id, ok := d.ids[name]
	if !ok {
		if len(d.names) == 0 {
			d.names = append(d.names, "")
		}
		id = uint32(len(d.names))
		d.ids[name] = id
		d.names = append(d.names, name)
	}
	return id
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
		off, id := d.seen[name], d.packID(name)
		var head [keyLen + 8]byte
		for {
			if _, err := io.ReadFull(r, head[:]); err != nil {
				break
			}
			n := int64(binary.LittleEndian.Uint64(head[keyLen:]))
			if n < sha256.Size || n > maxEntry || off+int64(len(head))+n > st.Size() {
				break // torn or foreign: the pack ends here
			}
			if _, err := r.Discard(int(n)); err != nil {
				break
			}
			d.index[Key(head[:keyLen])] = loc{pack: id, off: off + int64(len(head)), length: uint32(n)}
			off += int64(len(head)) + n
		}
		d.seen[name] = off
	}
}

// Get implements Store.
func (d *Disk) Get(ctx context.Context, key Key) ([]byte, bool, error) {
	vs, _ := d.GetMany(ctx, []Key{key})
	return vs[0], vs[0] != nil, nil
}

// GetMany implements Many: the store's lock is taken once for the batch,
// and a value kept in memory costs a map lookup.
func (d *Disk) GetMany(_ context.Context, keys []Key) ([][]byte, error) {
	out := make([][]byte, len(keys))
	type read struct {
		i int
		l loc
		f *os.File
	}
	var reads []read
	d.mu.Lock()
	own := d.ids[d.ownName]
	rescan := time.Since(d.scanned) > rescanEvery
	for i, key := range keys {
		if key == (Key{}) {
			continue
		}
		l, ok := d.index[key]
		if !ok && rescan {
			d.scan() // another process may have stored it since
			rescan = false
			l, ok = d.index[key]
		}
		switch {
		case !ok:
		case l.value != nil:
			out[i] = l.value
		default:
			if l.pack == own && d.buf != nil {
				d.buf.Flush()
			}
			if f := d.packs[d.names[l.pack]]; f != nil {
				reads = append(reads, read{i, l, f})
			}
		}
	}
	d.mu.Unlock()
	for _, r := range reads {
		b := make([]byte, r.l.length)
		if _, err := r.f.ReadAt(b, r.l.off); err != nil {
			continue
		}
		v, ok := Unseal(b)
		d.mu.Lock()
		cur, same := d.index[keys[r.i]]
		same = same && cur.pack == r.l.pack && cur.off == r.l.off
		switch {
		case !ok: // corrupt: never returned; a new record will supersede it
			if same {
				delete(d.index, keys[r.i])
			}
		case same && len(v) <= memoMax:
			cur.value = v
			d.index[keys[r.i]] = cur
		}
		d.mu.Unlock()
		if ok {
			out[r.i] = v
		}
	}
	return out, nil
}

// Put implements Store.
func (d *Disk) Put(ctx context.Context, key Key, value []byte) error {
	return d.PutMany(ctx, []Key{key}, [][]byte{value})
}

// PutMany implements Many: the batch's records are appended under one
// lock.
func (d *Disk) PutMany(_ context.Context, keys []Key, values [][]byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, key := range keys {
		if err := d.putLocked(key, values[i]); err != nil {
			return err
		}
	}
	d.seen[d.ownName] = d.ownSize
	return nil
}

// putLocked appends one record to this process's pack, made on the first
// one. Called with d.mu held.
func (d *Disk) putLocked(key Key, value []byte) error {
	if key == (Key{}) {
		return errors.New("cache: no key")
	}
	if len(value) > maxEntry-sha256.Size {
		return fmt.Errorf("cache: a value of %d bytes is too large to store", len(value))
	}
	if d.own == nil {
		name := fmt.Sprintf("%d-%d-%016x%s", time.Now().UnixNano(), os.Getpid(), rand.Uint64(), packSuffix)
		f, err := os.OpenFile(filepath.Join(d.dir, name), os.O_CREATE|os.O_EXCL|os.O_RDWR|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		d.own, d.ownName, d.ownID, d.buf = f, name, d.packID(name), bufio.NewWriterSize(f, 1<<16)
		d.packs[name] = f
	}
	sum := sha256.Sum256(value)
	var head [keyLen + 8 + sha256.Size]byte
	copy(head[:], key[:])
	binary.LittleEndian.PutUint64(head[keyLen:], uint64(sha256.Size+len(value)))
	copy(head[keyLen+8:], sum[:])
	d.buf.Write(head[:])
	if _, err := d.buf.Write(value); err != nil {
		return err
	}
	l := loc{pack: d.ownID, off: d.ownSize + int64(keyLen+8), length: uint32(sha256.Size + len(value))}
	if len(value) <= memoMax {
		l.value = value
	}
	d.index[key] = l
	d.ownSize += int64(len(head)) + int64(len(value))
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
			id := d.packID(name)
			for k, l := range d.index {
				if l.pack == id {
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
	d.index, d.seen = map[Key]loc{}, map[string]int64{}
	d.mu.Unlock()
	return int(st.Entries), nil
}

// WriteOnly is store for writing only: every Get misses. A step re-run on
// purpose computes its calls again and stores the results.
func WriteOnly(store Store) Store { return writeOnly{store} }

type writeOnly struct{ Store }

func (writeOnly) Get(context.Context, Key) ([]byte, bool, error) { return nil, false, nil }
