// Package filestore is the embedded schemaregistry.Store: the audit log as JSON lines in
// {dir}/log.jsonl and the validation statistics in {dir}/stats.json.
//
// Durability: an append writes one line with O_APPEND and fsyncs the file (and, when it
// creates the file, the directory) before returning. A crash mid-append leaves at most a
// torn last line without its newline; it was never acknowledged, and the next append
// cuts it off. Statistics are rewritten whole into a temporary file that is fsynced and
// renamed over stats.json, so readers see the old or the new file, never a mix.
//
// Several processes may share a directory (a server and the CLI): appends and
// statistics updates take an exclusive flock on {dir}/lock, and an append whose
// sequence number is not the next one fails with schemaregistry.ErrConflict, so writers
// never interleave or fork the chain. The records are stored byte for byte as
// encoding/json wrote them, so the chain's hashes can be recomputed from them.
package filestore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/seamless-data/seamless/schemaregistry"
)

// File names inside the store's directory.
const (
	LogFile   = "log.jsonl"
	StatsFile = "stats.json"
	lockFile  = "lock"
)

// Store is the embedded store. It is safe for concurrent use.
type Store struct {
	dir  string
	lock *os.File

	mu sync.Mutex // serialises this process's users of lock and the tail cache
	// tailSeq and tailOff are the last record seen and the offset just after its line:
	// Records(after == tailSeq) reads only what follows.
	tailSeq int64
	tailOff int64
}

var _ schemaregistry.Store = (*Store)(nil)

// Open opens (creating it if needed) the store in dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	return &Store{dir: dir, lock: lock}, nil
}

// Close releases the store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// locked runs f holding the in-process mutex and the exclusive flock.
func (s *Store) locked(f func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		return errors.New("filestore: closed")
	}
	if err := syscall.Flock(int(s.lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("filestore: lock: %w", err)
	}
	defer syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
	return f()
}

func (s *Store) logPath() string { return filepath.Join(s.dir, LogFile) }

// Append implements schemaregistry.Store.
func (s *Store) Append(ctx context.Context, rec schemaregistry.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	line = append(line, '\n')
	return s.locked(func() error {
		last, size, err := s.tail()
		if err != nil {
			return err
		}
		if rec.Seq != last+1 {
			return fmt.Errorf("%w: record %d, log ends at %d", schemaregistry.ErrConflict, rec.Seq, last)
		}
		f, err := os.OpenFile(s.logPath(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		_, err = f.Write(line)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil && size == 0 {
			err = syncDir(s.dir)
		}
		if err != nil {
			// The line may be partly written: the next tail() cuts it off.
			s.tailSeq, s.tailOff = 0, 0
			return fmt.Errorf("filestore: appending record %d: %w", rec.Seq, err)
		}
		s.tailSeq, s.tailOff = rec.Seq, size+int64(len(line))
		return nil
	})
}

// tail returns the last record's sequence number and the log's size, after cutting off
// a torn last line. The flock must be held.
func (s *Store) tail() (int64, int64, error) {
	f, err := os.OpenFile(s.logPath(), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("filestore: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("filestore: %w", err)
	}
	if st.Size() == s.tailOff && s.tailSeq > 0 {
		return s.tailSeq, s.tailOff, nil
	}
	recs, end, err := scan(f, 0)
	if err != nil {
		return 0, 0, err
	}
	if end < st.Size() {
		if err := f.Truncate(end); err != nil {
			return 0, 0, fmt.Errorf("filestore: cutting off a torn record: %w", err)
		}
		if err := f.Sync(); err != nil {
			return 0, 0, fmt.Errorf("filestore: %w", err)
		}
	}
	var last int64
	if len(recs) > 0 {
		last = recs[len(recs)-1].Seq
	}
	s.tailSeq, s.tailOff = last, end
	return last, end, nil
}

// scan parses the complete lines of r from offset off and returns the records and the
// offset just after the last complete line. A line that does not parse is an error:
// the log was damaged.
func scan(r io.ReaderAt, off int64) ([]schemaregistry.Record, int64, error) {
	br := bufio.NewReader(io.NewSectionReader(r, off, 1<<62))
	var out []schemaregistry.Record
	for {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return out, off, nil // a trailing partial line is a torn append
		}
		if err != nil {
			return nil, 0, fmt.Errorf("filestore: reading the log: %w", err)
		}
		var rec schemaregistry.Record
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			return nil, 0, fmt.Errorf("filestore: log record at byte %d does not parse: %w", off, err)
		}
		out = append(out, rec)
		off += int64(len(line))
	}
}

// Records implements schemaregistry.Store. It reads the file, from the start unless
// after is the last record this Store saw, in which case only what follows it.
func (s *Store) Records(ctx context.Context, after int64) ([]schemaregistry.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.Open(s.logPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	defer f.Close()
	var off int64
	if after > 0 && after == s.tailSeq {
		off = s.tailOff
	}
	recs, end, err := scan(f, off)
	if err != nil {
		return nil, err
	}
	if len(recs) > 0 {
		s.tailSeq, s.tailOff = recs[len(recs)-1].Seq, end
	}
	i := 0
	for i < len(recs) && recs[i].Seq <= after {
		i++
	}
	return recs[i:], nil
}

// AddStats implements schemaregistry.Store.
func (s *Store) AddStats(ctx context.Context, subject string, d schemaregistry.StatsDelta) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.locked(func() error {
		all, err := s.readStats()
		if err != nil {
			return err
		}
		all[subject] = all[subject].Merge(d)
		return s.writeStats(all)
	})
}

// Stats implements schemaregistry.Store.
func (s *Store) Stats(ctx context.Context, subject string) (schemaregistry.Stats, error) {
	if err := ctx.Err(); err != nil {
		return schemaregistry.Stats{}, err
	}
	all, err := s.readStats()
	if err != nil {
		return schemaregistry.Stats{}, err
	}
	return all[subject], nil
}

func (s *Store) readStats() (map[string]schemaregistry.Stats, error) {
	all := map[string]schemaregistry.Stats{}
	b, err := os.ReadFile(filepath.Join(s.dir, StatsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return all, nil
	}
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, fmt.Errorf("filestore: %s: %w", StatsFile, err)
	}
	return all, nil
}

func (s *Store) writeStats(all map[string]schemaregistry.Stats) error {
	b, err := json.Marshal(all)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	tmp, err := os.CreateTemp(s.dir, StatsFile+".tmp*")
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(s.dir, StatsFile))
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("filestore: writing %s: %w", StatsFile, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
