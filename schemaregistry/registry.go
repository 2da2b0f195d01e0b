package schemaregistry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/seamless-data/seamless/clock"
)

// Mode is a subject's validation mode.
type Mode string

// Validation modes. A subject starts in canary when its first version is registered.
const (
	// Canary checks payloads, records and counts violations, and never blocks.
	Canary Mode = "canary"
	// Strict rejects payloads that deviate with a *ViolationError (schema_violation).
	Strict Mode = "strict"
)

// ParseMode reads a mode name, case-insensitively.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case Canary, Strict:
		return m, nil
	}
	return "", &RequestError{Message: fmt.Sprintf("unknown mode %q (want canary or strict)", s)}
}

// Defaults of Options.
const (
	DefaultCanaryWindow    = 48 * time.Hour
	DefaultRefreshInterval = 5 * time.Second
	DefaultFlushInterval   = time.Second
	// MaxSubjectBytes bounds a subject name.
	MaxSubjectBytes = 1024
)

// Options tune a Registry. Zero fields take the defaults.
type Options struct {
	// Clock stamps audit records and measures canary windows (default the wall clock).
	Clock clock.Clock
	// DefaultCompatibility is the level of subjects without their own (default BACKWARD).
	DefaultCompatibility Level
	// CanaryWindow is how long a subject must run in canary without a validation
	// failure before Promote allows strict without force (default 48 h).
	CanaryWindow time.Duration
	// MinCanaryValidations is how many clean validations the window must have seen, so
	// that a subject nobody read is not called clean (default 1; negative means 0).
	MinCanaryValidations int64
	// OnValidationFailure is called once per failing validation, in both modes, e.g. to
	// count seamless_schema_validation_failures_total{subject,mode} (see
	// FailureCounter). It must be fast and safe for concurrent use.
	OnValidationFailure func(subject string, mode Mode)
	// RefreshInterval bounds how stale the approved schema Validate uses may be when
	// another process changes the registry (default 5 s). Changes made through this
	// Registry apply at once.
	RefreshInterval time.Duration
	// FlushInterval is how often a subject's validation statistics are written to the
	// store at most (default 1 s); Promote, Status and Close flush at once.
	FlushInterval time.Duration
	// Logger receives store errors met while validating, which never fail a
	// validation (default: discarded).
	Logger *slog.Logger
}

// Registry is a schema registry over a Store. It is safe for concurrent use, and
// several Registries (processes) may share one store: every change appends to the
// store's log after catching up with it, and retries on conflict.
type Registry struct {
	store Store
	opts  Options

	mu          sync.Mutex
	st          state
	lastRefresh time.Time

	statsMu sync.Mutex
	pending map[string]*pendingStats
}

// state is the replay of the audit log.
type state struct {
	seq      int64
	lastHash string
	schemas  []Schema // schema id i+1
	byFP     map[string]int64
	subjects map[string]*subject
}

type subject struct {
	versions  []int64 // schema ids; version i+1
	level     Level   // "" for the default
	mode      Mode    // "" before the first version
	modeSince time.Time
}

type pendingStats struct {
	d         StatsDelta
	lastFlush time.Time
}

// Open returns a Registry over store, replaying its log. The caller keeps ownership
// of store and closes it after the Registry.
func Open(ctx context.Context, store Store, opts Options) (*Registry, error) {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.DefaultCompatibility == "" {
		opts.DefaultCompatibility = Backward
	}
	if _, err := ParseLevel(string(opts.DefaultCompatibility)); err != nil {
		return nil, err
	}
	if opts.CanaryWindow <= 0 {
		opts.CanaryWindow = DefaultCanaryWindow
	}
	switch {
	case opts.MinCanaryValidations == 0:
		opts.MinCanaryValidations = 1
	case opts.MinCanaryValidations < 0:
		opts.MinCanaryValidations = 0
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = DefaultRefreshInterval
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := &Registry{
		store:   store,
		opts:    opts,
		st:      state{byFP: map[string]int64{}, subjects: map[string]*subject{}},
		pending: map[string]*pendingStats{},
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.catchUp(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Close writes the validation statistics not yet flushed. It does not close the store.
func (r *Registry) Close() error {
	return r.flush(context.Background(), "")
}

func (r *Registry) now() time.Time { return r.opts.Clock.Now().UTC().Truncate(time.Microsecond) }

// catchUp applies the records appended since the last one seen. r.mu must be held.
func (r *Registry) catchUp(ctx context.Context) error {
	recs, err := r.store.Records(ctx, r.st.seq)
	if err != nil {
		return fmt.Errorf("schemaregistry: reading the log: %w", err)
	}
	for _, rec := range recs {
		if err := r.st.apply(rec); err != nil {
			return fmt.Errorf("schemaregistry: replaying record %d: %w", rec.Seq, err)
		}
	}
	r.lastRefresh = r.opts.Clock.Now()
	return nil
}

func (st *state) subject(name string) *subject {
	s, ok := st.subjects[name]
	if !ok {
		s = &subject{}
		st.subjects[name] = s
	}
	return s
}

func (st *state) apply(rec Record) error {
	if rec.Seq != st.seq+1 {
		return fmt.Errorf("sequence number %d after %d", rec.Seq, st.seq)
	}
	sub := st.subject(rec.Subject)
	switch rec.Action {
	case ActionRegister:
		s, err := Parse(rec.Schema)
		if err != nil {
			return err
		}
		fp := s.Fingerprint()
		id, known := st.byFP[fp]
		switch {
		case known && id != rec.SchemaID:
			return fmt.Errorf("schema %s has id %d, record says %d", fp, id, rec.SchemaID)
		case !known && rec.SchemaID != int64(len(st.schemas))+1:
			return fmt.Errorf("new schema id %d, want %d", rec.SchemaID, len(st.schemas)+1)
		case !known:
			st.schemas = append(st.schemas, s)
			st.byFP[fp] = rec.SchemaID
		}
		if rec.Version != len(sub.versions)+1 {
			return fmt.Errorf("subject %q version %d after %d", rec.Subject, rec.Version, len(sub.versions))
		}
		sub.versions = append(sub.versions, rec.SchemaID)
		if sub.mode == "" {
			sub.mode, sub.modeSince = Canary, rec.Time
		}
	case ActionSetCompatibility:
		sub.level = rec.Compatibility
	case ActionPromote, ActionDemote:
		sub.mode, sub.modeSince = rec.Mode, rec.Time
	default:
		return fmt.Errorf("unknown action %q", rec.Action)
	}
	st.seq, st.lastHash = rec.Seq, rec.Hash
	return nil
}

// maxAttempts bounds the retries of a change that keeps losing the race to append.
const maxAttempts = 8

// mutate appends the record build returns (nil: nothing to change) after catching up
// with the log, retrying when another writer appended first.
func (r *Registry) mutate(ctx context.Context, build func(st *state, now time.Time) (*Record, error)) (*Record, error) {
	for range maxAttempts {
		rec, err := r.tryMutate(ctx, build)
		if !errors.Is(err, ErrConflict) {
			return rec, err
		}
	}
	return nil, fmt.Errorf("schemaregistry: %w: gave up after %d attempts", ErrConflict, maxAttempts)
}

func (r *Registry) tryMutate(ctx context.Context, build func(st *state, now time.Time) (*Record, error)) (*Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.catchUp(ctx); err != nil {
		return nil, err
	}
	now := r.now()
	rec, err := build(&r.st, now)
	if err != nil || rec == nil {
		return nil, err
	}
	rec.Seq, rec.PrevHash, rec.Time, rec.Actor = r.st.seq+1, r.st.lastHash, now, ActorFrom(ctx)
	rec.Hash = rec.ComputeHash()
	if err := r.store.Append(ctx, *rec); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, err
		}
		return nil, fmt.Errorf("schemaregistry: appending record %d: %w", rec.Seq, err)
	}
	if err := r.st.apply(*rec); err != nil {
		return nil, fmt.Errorf("schemaregistry: applying record %d: %w", rec.Seq, err)
	}
	return rec, nil
}

// read runs f on the state after catching up with the log.
func (r *Registry) read(ctx context.Context, f func(st *state) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.catchUp(ctx); err != nil {
		return err
	}
	return f(&r.st)
}

// CheckSubject validates a subject name: non-empty, valid UTF-8 without control
// characters, at most MaxSubjectBytes. Node ids (with ':' and '/') are valid subjects.
func CheckSubject(name string) error {
	switch {
	case name == "":
		return &RequestError{Message: "empty subject"}
	case len(name) > MaxSubjectBytes:
		return &RequestError{Message: fmt.Sprintf("subject of %d bytes (at most %d)", len(name), MaxSubjectBytes)}
	case !utf8.ValidString(name):
		return &RequestError{Message: fmt.Sprintf("subject %q is not valid UTF-8", name)}
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return &RequestError{Message: fmt.Sprintf("subject %q contains a control character", name)}
	}
	return nil
}

// Registered is the outcome of Register.
type Registered struct {
	Subject     string `json:"subject"`
	ID          int64  `json:"id"`
	Version     int    `json:"version"`
	Fingerprint string `json:"fingerprint"`
	// Existing is true when the subject already had this schema: nothing was recorded.
	Existing bool `json:"existing"`
}

// Register adds s as the subject's next version, if it passes the subject's
// compatibility level (*IncompatibleError otherwise), and returns its globally unique
// id: the id every subject shares for this schema's fingerprint. Registering a schema
// the subject already has returns that version and records nothing.
func (r *Registry) Register(ctx context.Context, subjectName string, s Schema) (Registered, error) {
	if err := CheckSubject(subjectName); err != nil {
		return Registered{}, err
	}
	if len(s.Fields) == 0 {
		return Registered{}, &ParseError{Message: "no fields: a schema needs at least one column"}
	}
	fp := s.Fingerprint()
	out := Registered{Subject: subjectName, Fingerprint: fp}
	_, err := r.mutate(ctx, func(st *state, _ time.Time) (*Record, error) {
		sub := st.subjects[subjectName]
		var history []Schema
		if sub != nil {
			for i, id := range sub.versions {
				if st.schemas[id-1].Fingerprint() == fp {
					out.ID, out.Version, out.Existing = id, i+1, true
					return nil, nil
				}
				history = append(history, st.schemas[id-1])
			}
		}
		level := st.level(subjectName, r.opts.DefaultCompatibility)
		if reasons := Check(level, s, history); len(reasons) > 0 {
			return nil, &IncompatibleError{Subject: subjectName, Level: level, Latest: len(history), Reasons: reasons}
		}
		id, ok := st.byFP[fp]
		if !ok {
			id = int64(len(st.schemas)) + 1
		}
		out.ID, out.Version = id, len(history)+1
		return &Record{Action: ActionRegister, Subject: subjectName, SchemaID: id, Version: out.Version, Fingerprint: fp, Schema: s.Canonical()}, nil
	})
	if err != nil {
		return Registered{}, err
	}
	return out, nil
}

func (st *state) level(subjectName string, def Level) Level {
	if sub := st.subjects[subjectName]; sub != nil && sub.level != "" {
		return sub.level
	}
	return def
}

// CheckCompatibility returns the incompatibilities of s with the subject's versions
// under its level; none means Register would accept s. A subject without versions
// accepts anything.
func (r *Registry) CheckCompatibility(ctx context.Context, subjectName string, s Schema) ([]string, error) {
	if err := CheckSubject(subjectName); err != nil {
		return nil, err
	}
	var reasons []string
	err := r.read(ctx, func(st *state) error {
		var history []Schema
		if sub := st.subjects[subjectName]; sub != nil {
			for _, id := range sub.versions {
				history = append(history, st.schemas[id-1])
			}
		}
		reasons = Check(st.level(subjectName, r.opts.DefaultCompatibility), s, history)
		return nil
	})
	return reasons, err
}

// Subjects lists the subjects that have at least one version, sorted.
func (r *Registry) Subjects(ctx context.Context) ([]string, error) {
	out := []string{}
	err := r.read(ctx, func(st *state) error {
		for name, sub := range st.subjects {
			if len(sub.versions) > 0 {
				out = append(out, name)
			}
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// Versions lists the subject's versions, 1…n.
func (r *Registry) Versions(ctx context.Context, subjectName string) ([]int, error) {
	var out []int
	err := r.read(ctx, func(st *state) error {
		sub := st.subjects[subjectName]
		if sub == nil || len(sub.versions) == 0 {
			return &NotFoundError{Subject: subjectName}
		}
		for i := range sub.versions {
			out = append(out, i+1)
		}
		return nil
	})
	return out, err
}

// SubjectVersion is one version of a subject.
type SubjectVersion struct {
	Subject string
	Version int
	ID      int64
	Schema  Schema
}

// Latest is the subject's newest version.
func (r *Registry) Latest(ctx context.Context, subjectName string) (SubjectVersion, error) {
	return r.Version(ctx, subjectName, -1)
}

// Version returns version v of the subject; v = -1 is the latest.
func (r *Registry) Version(ctx context.Context, subjectName string, v int) (SubjectVersion, error) {
	var out SubjectVersion
	err := r.read(ctx, func(st *state) error {
		sub := st.subjects[subjectName]
		if sub == nil || len(sub.versions) == 0 {
			return &NotFoundError{Subject: subjectName}
		}
		if v == -1 {
			v = len(sub.versions)
		}
		if v < 1 || v > len(sub.versions) {
			return &NotFoundError{Subject: subjectName, Version: v}
		}
		id := sub.versions[v-1]
		out = SubjectVersion{Subject: subjectName, Version: v, ID: id, Schema: st.schemas[id-1]}
		return nil
	})
	return out, err
}

// SchemaByID returns the schema with the given global id.
func (r *Registry) SchemaByID(ctx context.Context, id int64) (Schema, error) {
	var out Schema
	err := r.read(ctx, func(st *state) error {
		if id < 1 || id > int64(len(st.schemas)) {
			return &NotFoundError{ID: id}
		}
		out = st.schemas[id-1]
		return nil
	})
	return out, err
}

// SubjectFor returns the subject that governs a node id: the node id itself when it
// has versions (a per-node override), else its kind (the part before the first ':',
// e.g. "ohlcv"), else a *NotFoundError.
func (r *Registry) SubjectFor(ctx context.Context, nodeID string) (string, error) {
	var out string
	err := r.read(ctx, func(st *state) error {
		kind, _, _ := strings.Cut(nodeID, ":")
		for _, name := range []string{nodeID, kind} {
			if sub := st.subjects[name]; sub != nil && len(sub.versions) > 0 {
				out = name
				return nil
			}
		}
		return &NotFoundError{Subject: nodeID}
	})
	return out, err
}

// Compatibility returns the subject's level (the default when it has none of its own).
func (r *Registry) Compatibility(ctx context.Context, subjectName string) (Level, error) {
	var out Level
	err := r.read(ctx, func(st *state) error {
		out = st.level(subjectName, r.opts.DefaultCompatibility)
		return nil
	})
	return out, err
}

// SetCompatibility sets the subject's level, recording the change (nothing when the
// level is already in force). The subject need not have versions yet.
func (r *Registry) SetCompatibility(ctx context.Context, subjectName string, level Level) (*Record, error) {
	if err := CheckSubject(subjectName); err != nil {
		return nil, err
	}
	level, err := ParseLevel(string(level))
	if err != nil {
		return nil, err
	}
	return r.mutate(ctx, func(st *state, _ time.Time) (*Record, error) {
		if sub := st.subjects[subjectName]; sub != nil && sub.level == level {
			return nil, nil
		}
		return &Record{Action: ActionSetCompatibility, Subject: subjectName, Compatibility: level}, nil
	})
}

// Audit returns the audit records q selects, oldest first.
func (r *Registry) Audit(ctx context.Context, q AuditQuery) ([]Record, error) {
	recs, err := r.store.Records(ctx, 0)
	if err != nil {
		return nil, fmt.Errorf("schemaregistry: reading the log: %w", err)
	}
	out := []Record{}
	for _, rec := range recs {
		if q.match(rec) {
			out = append(out, rec)
		}
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[len(out)-q.Limit:]
	}
	return out, nil
}

// VerifyAudit checks the stored audit chain (VerifyChain) and returns the number of
// records verified; a break is a *ChainError naming the first bad record.
func (r *Registry) VerifyAudit(ctx context.Context) (int, error) {
	recs, err := r.store.Records(ctx, 0)
	if err != nil {
		return 0, fmt.Errorf("schemaregistry: reading the log: %w", err)
	}
	return len(recs), VerifyChain(recs)
}
