package schemaregistry

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Store persists a registry: its audit log, which is the registry's whole state, and
// per-subject validation statistics, which are too frequent to be audit records.
// Implementations: MemStore (tests), filestore (embedded, under a directory) and
// pgstore (PostgreSQL); storetest is the contract suite they all pass.
type Store interface {
	// Append adds rec at the end of the log. rec.Seq must be one more than the last
	// record's (1 for the first); otherwise Append returns ErrConflict and stores
	// nothing. An appended record is durable when Append returns.
	Append(ctx context.Context, rec Record) error
	// Records returns the records with Seq > after, in order, read from durable
	// storage (so that VerifyAudit sees what is stored, not a cache).
	Records(ctx context.Context, after int64) ([]Record, error)
	// AddStats merges d into the subject's statistics (Stats.Merge).
	AddStats(ctx context.Context, subject string, d StatsDelta) error
	// Stats returns the subject's statistics; a subject never validated has zero Stats.
	Stats(ctx context.Context, subject string) (Stats, error)
	Close() error
}

// Stats count a subject's validations, across every process sharing the store.
type Stats struct {
	Validations int64     `json:"validations"`
	Failures    int64     `json:"failures"`
	LastFailure time.Time `json:"last_failure"` // zero when none
	// CleanValidations counts the validations after LastFailure (all, when none).
	CleanValidations int64     `json:"clean_validations"`
	LastValidation   time.Time `json:"last_validation"`
}

// StatsDelta is what one process saw since it last flushed.
type StatsDelta struct {
	Validations int64
	Failures    int64
	LastFailure time.Time // of these failures; zero when Failures is 0
	// CleanAfter counts the validations of this delta after its LastFailure (all of
	// them when Failures is 0).
	CleanAfter     int64
	LastValidation time.Time
}

func (d StatsDelta) empty() bool { return d.Validations == 0 && d.Failures == 0 }

// Merge returns s with d added. A failure in d newer than s.LastFailure restarts the
// clean count from d's; a delta without failures extends it. A delta whose failures
// are older than s.LastFailure (another process saw a later one) leaves it alone:
// which of d's clean validations came after that failure is unknown, and undercounting
// only delays a promotion.
func (s Stats) Merge(d StatsDelta) Stats {
	s.Validations += d.Validations
	s.Failures += d.Failures
	switch {
	case d.Failures == 0:
		s.CleanValidations += d.Validations
	case !d.LastFailure.Before(s.LastFailure):
		s.LastFailure = d.LastFailure
		s.CleanValidations = d.CleanAfter
	}
	if d.LastValidation.After(s.LastValidation) {
		s.LastValidation = d.LastValidation
	}
	return s
}

// MemStore is a Store in memory, for tests and throwaway registries.
type MemStore struct {
	mu      sync.Mutex
	records []Record
	stats   map[string]Stats
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{stats: map[string]Stats{}} }

// Append implements Store.
func (m *MemStore) Append(ctx context.Context, rec Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if rec.Seq != int64(len(m.records))+1 {
		return fmt.Errorf("%w: record %d, log has %d", ErrConflict, rec.Seq, len(m.records))
	}
	m.records = append(m.records, rec)
	return nil
}

// Records implements Store.
func (m *MemStore) Records(ctx context.Context, after int64) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if after < 0 {
		after = 0
	}
	if after >= int64(len(m.records)) {
		return nil, nil
	}
	return slices.Clone(m.records[after:]), nil
}

// AddStats implements Store.
func (m *MemStore) AddStats(ctx context.Context, subject string, d StatsDelta) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats[subject] = m.stats[subject].Merge(d)
	return nil
}

// Stats implements Store.
func (m *MemStore) Stats(ctx context.Context, subject string) (Stats, error) {
	if err := ctx.Err(); err != nil {
		return Stats{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats[subject], nil
}

// Close implements Store.
func (m *MemStore) Close() error { return nil }

// Tamper replaces the stored record with r's Seq by r, bypassing the chain: tests use
// it to check that VerifyAudit notices.
func (m *MemStore) Tamper(r Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.Seq >= 1 && r.Seq <= int64(len(m.records)) {
		m.records[r.Seq-1] = r
	}
}
