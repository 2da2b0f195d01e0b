// Package reportlog archives conformance reports as JSON lines, one file per series
// (node id, interval), and computes each report's regression digest against the
// previous report of its series (SPEC §3).
//
// Files live directly in the log's directory (the provider uses {data-dir}/reports).
// A file name is derived from the node id by escaping every byte outside [A-Za-z0-9-],
// truncating, and appending a hash of the full id, so hostile ids ("../x", "a/b", NUL,
// very long ids, ids differing only in case) can neither leave the directory nor share a
// file. A file is rotated before an append would take it past Options.MaxFileBytes;
// Options.Rotated older files are kept (name.jsonl.1 is the newest of them).
//
// Appends are safe for concurrent use within one process; one Log must own its
// directory. Appends are not fsynced: reports are diagnostics, and a line torn by a
// crash is cut off when the series is next loaded.
package reportlog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/conformance"
	"github.com/seamless-data/seamless/grid"
)

// Record is one archived report.
type Record struct {
	Time     time.Time          `json:"time"`
	NodeID   string             `json:"node_id"`
	Interval int64              `json:"interval"`
	Range    grid.Range         `json:"range"`
	Report   conformance.Report `json:"report"`
	// Digest compares Report with the previous record of the series; Append computes it.
	Digest Digest `json:"digest"`
}

// Digest is a regression digest: the flags raised now but not before, and the flags
// whose count grew.
type Digest struct {
	NewFlags  []string          `json:"new_flags"`
	Increased map[string]Change `json:"increased"`
}

// Change is a flag count before and now.
type Change struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// Regressed reports whether the digest marks any new or increased flag.
func (d Digest) Regressed() bool { return len(d.NewFlags) > 0 || len(d.Increased) > 0 }

// Compare returns the digest of cur against prev. Against an empty prev (the first
// report of a series) every raised flag is new.
func Compare(prev, cur conformance.Report) Digest {
	d := Digest{NewFlags: []string{}, Increased: map[string]Change{}}
	for _, f := range cur.Raised() {
		now, before := cur.FlagsCounts[f], prev.FlagsCounts[f]
		switch {
		case now <= 0:
		case before <= 0:
			d.NewFlags = append(d.NewFlags, f)
		case now > before:
			d.Increased[f] = Change{From: before, To: now}
		}
	}
	return d
}

// Options tune a Log. Zero fields take the defaults.
type Options struct {
	// MaxFileBytes bounds a series' current file (default 8 MiB); a single record
	// larger than that still gets a file of its own.
	MaxFileBytes int64
	// Rotated is the number of rotated files kept per series (default 3).
	Rotated int
	// Clock stamps records that carry no time (default the wall clock).
	Clock clock.Clock
}

// Defaults.
const (
	DefaultMaxFileBytes = 8 << 20
	DefaultRotated      = 3
)

// Log is an archive of conformance reports under one directory.
type Log struct {
	dir  string
	opts Options

	mu     sync.Mutex
	series map[seriesKey]*series
}

type seriesKey struct {
	node     string
	interval int64
}

// series is the state of one series' files, guarded by mu.
type series struct {
	mu     sync.Mutex
	path   string
	loaded bool
	size   int64          // of the current file
	last   map[string]int // flag counts of the newest record; nil when there is none
}

// Open opens (creating it if needed) the report archive in dir with default options.
func Open(dir string) (*Log, error) { return OpenWith(dir, Options{}) }

// OpenWith opens the report archive in dir with the given options.
func OpenWith(dir string, o Options) (*Log, error) {
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	if o.Rotated <= 0 {
		o.Rotated = DefaultRotated
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("reportlog: %w", err)
	}
	return &Log{dir: dir, opts: o, series: map[seriesKey]*series{}}, nil
}

// Append archives rec and returns it as stored: with its digest against the previous
// record of the series (read back from disk on the series' first use) and, if rec.Time
// is zero, the current time.
func (l *Log) Append(ctx context.Context, rec Record) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	s, err := l.get(rec.NodeID, rec.Interval)
	if err != nil {
		return Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.load(); err != nil {
		return Record{}, err
	}
	if rec.Time.IsZero() {
		rec.Time = l.opts.Clock.Now().UTC()
	}
	rec.Report = nonNil(rec.Report)
	rec.Digest = Compare(conformance.Report{FlagsCounts: s.last}, rec.Report)
	line, err := json.Marshal(rec)
	if err != nil {
		return Record{}, fmt.Errorf("reportlog: %s@%ds: %w", rec.NodeID, rec.Interval, err)
	}
	line = append(line, '\n')
	if s.size > 0 && s.size+int64(len(line)) > l.opts.MaxFileBytes {
		if err := l.rotate(s.path); err != nil {
			return Record{}, fmt.Errorf("reportlog: rotating %s: %w", s.path, err)
		}
		s.size = 0
	}
	if err := appendLine(s.path, line); err != nil {
		s.loaded = false // the file may hold part of the line: repair on the next use
		return Record{}, fmt.Errorf("reportlog: %s@%ds: %w", rec.NodeID, rec.Interval, err)
	}
	s.size += int64(len(line))
	s.last = maps.Clone(rec.Report.FlagsCounts)
	return rec, nil
}

// List returns up to limit records of the series, newest first (all when limit <= 0).
// Lines that do not parse are skipped.
func (l *Log) List(nodeID string, interval int64, limit int) ([]Record, error) {
	s, err := l.get(nodeID, interval)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Record{}
	for i := 0; i <= l.opts.Rotated; i++ {
		b, err := os.ReadFile(rotatedName(s.path, i))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reportlog: %w", err)
		}
		lines := bytes.Split(b, []byte{'\n'})
		for j := len(lines) - 1; j >= 0; j-- {
			var rec Record
			if json.Unmarshal(lines[j], &rec) != nil || rec.NodeID != nodeID || rec.Interval != interval {
				continue
			}
			out = append(out, rec)
			if limit > 0 && len(out) == limit {
				return out, nil
			}
		}
	}
	return out, nil
}

func (l *Log) get(nodeID string, interval int64) (*series, error) {
	if nodeID == "" {
		return nil, errors.New("reportlog: empty node id")
	}
	if interval <= 0 {
		return nil, fmt.Errorf("reportlog: %s: interval %d <= 0", nodeID, interval)
	}
	k := seriesKey{nodeID, interval}
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.series[k]
	if !ok {
		s = &series{path: filepath.Join(l.dir, FileName(nodeID, interval))}
		l.series[k] = s
	}
	return s, nil
}

// load reads the series' state from disk once: the current file's size, after cutting
// off a torn last line, and the flag counts of the newest record.
func (s *series) load() error {
	if s.loaded {
		return nil
	}
	size, last, err := readTail(s.path, true)
	for i := 1; err == nil && last == nil; i++ {
		// The current file holds no record (new, or just rotated): look in older files.
		p := rotatedName(s.path, i)
		if _, serr := os.Stat(p); serr != nil {
			break
		}
		_, last, err = readTail(p, false)
	}
	if err != nil {
		return fmt.Errorf("reportlog: reading %s: %w", s.path, err)
	}
	s.size, s.loaded, s.last = size, true, nil
	if last != nil {
		s.last = last.Report.FlagsCounts
	}
	return nil
}

// rotate shifts path.i to path.i+1, dropping the oldest, and path to path.1.
func (l *Log) rotate(path string) error {
	for i := l.opts.Rotated - 1; i >= 0; i-- {
		err := os.Rename(rotatedName(path, i), rotatedName(path, i+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

func rotatedName(path string, i int) string {
	if i == 0 {
		return path
	}
	return fmt.Sprintf("%s.%d", path, i)
}

func appendLine(path string, line []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// nonNil gives a report's nil fields their empty values, so that every stored record
// has the same JSON shape.
func nonNil(r conformance.Report) conformance.Report {
	e := conformance.Empty()
	if r.Warnings == nil {
		r.Warnings = e.Warnings
	}
	if r.FlagsCounts == nil {
		r.FlagsCounts = e.FlagsCounts
	}
	if r.Samples == nil {
		r.Samples = e.Samples
	}
	return r
}

// maxReadable bounds the escaped node id in a file name, keeping names well under the
// usual 255-byte limit; the hash keeps truncated names distinct.
const maxReadable = 96

// FileName is the archive file of a series: "{interval}s_{escaped node id}_{hash}.jsonl".
// It is a single path element that never contains a separator, "..", or a character
// that is special on common file systems, and distinct series get distinct names.
func FileName(nodeID string, interval int64) string {
	var b strings.Builder
	for i := 0; i < len(nodeID) && b.Len() < maxReadable; i++ {
		switch c := nodeID[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	sum := sha256.Sum256([]byte(nodeID))
	return fmt.Sprintf("%ds_%s_%x.jsonl", interval, b.String(), sum[:8])
}

// tailBlock is how much of a file readTail reads at a time, backwards.
const tailBlock = 32 << 10

// readTail returns the size of the file at path and its newest parsable record (nil if
// none; a missing file is empty). With repair, a torn last line — one without its
// newline, left by a crash mid-append — is cut off first, so that the next append
// starts on a line of its own.
func readTail(path string, repair bool) (int64, *Record, error) {
	flag := os.O_RDONLY
	if repair {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, nil, err
	}
	size := st.Size()
	end, err := lastNewline(f, size)
	if err != nil {
		return 0, nil, err
	}
	if repair && end+1 < size {
		if err := f.Truncate(end + 1); err != nil {
			return 0, nil, err
		}
		size = end + 1
	}
	// Walk back over complete lines until one parses.
	for end >= 0 {
		start, err := lastNewline(f, end)
		if err != nil {
			return 0, nil, err
		}
		line := make([]byte, end-start-1)
		if _, err := f.ReadAt(line, start+1); err != nil {
			return 0, nil, err
		}
		var rec Record
		if json.Unmarshal(line, &rec) == nil {
			return size, &rec, nil
		}
		end = start
	}
	return size, nil, nil
}

// lastNewline returns the offset of the last '\n' before offset p, or -1.
func lastNewline(f io.ReaderAt, p int64) (int64, error) {
	buf := make([]byte, tailBlock)
	for p > 0 {
		n := min(int64(len(buf)), p)
		p -= n
		if _, err := f.ReadAt(buf[:n], p); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return p + int64(i), nil
		}
	}
	return -1, nil
}
