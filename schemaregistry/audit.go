package schemaregistry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Action is what an audit record did.
type Action string

// Actions. Every change to the registry is one record; the registry's state is the
// replay of its records.
const (
	ActionRegister         Action = "register"
	ActionSetCompatibility Action = "set_compatibility"
	ActionPromote          Action = "promote" // canary → strict
	ActionDemote           Action = "demote"  // strict → canary
)

// Record is one audit record. Records form a hash chain: Hash covers every other field,
// PrevHash included, so editing, removing or inserting a record breaks the chain at
// that point (VerifyChain).
type Record struct {
	Seq     int64     `json:"seq"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Action  Action    `json:"action"`
	Subject string    `json:"subject"`

	// register
	SchemaID    int64           `json:"schema_id,omitempty"`
	Version     int             `json:"version,omitempty"`
	Fingerprint string          `json:"fingerprint,omitempty"`
	Schema      json.RawMessage `json:"schema,omitempty"` // canonical document

	// set_compatibility
	Compatibility Level `json:"compatibility,omitempty"`

	// promote, demote
	Mode   Mode   `json:"mode,omitempty"`
	Forced bool   `json:"forced,omitempty"`
	Bundle string `json:"bundle_fingerprint,omitempty"`
	// CleanSeconds is how long the subject had run clean in canary when promoted.
	CleanSeconds int64 `json:"clean_seconds,omitempty"`

	Reason   string `json:"reason,omitempty"`
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// ComputeHash is the hash the record must carry: "sha256:" + the hex SHA-256 of its
// JSON encoding with Hash empty.
func (r Record) ComputeHash() string {
	r.Hash = ""
	b, err := json.Marshal(r)
	if err != nil { // only a RawMessage that is not JSON can fail, and Schema is canonical
		panic(err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// VerifyChain checks records (the whole log, in order): sequence numbers 1, 2, 3…,
// each PrevHash equal to the previous record's Hash ("" for the first) and each Hash
// equal to ComputeHash. The first break is a *ChainError.
func VerifyChain(records []Record) error {
	prev := ""
	for i, r := range records {
		switch want := int64(i + 1); {
		case r.Seq != want:
			return &ChainError{Seq: want, Reason: fmt.Sprintf("found sequence number %d (a record was removed or inserted)", r.Seq)}
		case r.PrevHash != prev:
			return &ChainError{Seq: r.Seq, Reason: "prev_hash does not match the previous record's hash"}
		case r.ComputeHash() != r.Hash:
			return &ChainError{Seq: r.Seq, Reason: "hash does not match the record's contents (it was edited)"}
		}
		prev = r.Hash
	}
	return nil
}

// AuditQuery selects audit records; zero fields select everything.
type AuditQuery struct {
	Subject string
	Action  Action
	Actor   string
	Since   time.Time // records at or after
	// Limit keeps the newest Limit records; <= 0 keeps all.
	Limit int
}

func (q AuditQuery) match(r Record) bool {
	return (q.Subject == "" || r.Subject == q.Subject) &&
		(q.Action == "" || r.Action == q.Action) &&
		(q.Actor == "" || r.Actor == q.Actor) &&
		(q.Since.IsZero() || !r.Time.Before(q.Since))
}

type actorKey struct{}

// WithActor returns ctx carrying the name of whoever acts through it (the API token's
// name); the registry writes it into the audit records of the changes made with ctx.
func WithActor(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, actorKey{}, name)
}

// ActorFrom returns the actor WithActor put in ctx, or "anonymous".
func ActorFrom(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return "anonymous"
}
