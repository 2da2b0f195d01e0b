// Package schemaregistry governs the schemas of Seamless's series: versioned schemas
// per subject, compatibility levels, canary and strict validation of live payloads,
// promotion between them, and a tamper-evident audit trail.
//
// # Schema documents
//
// A schema is {"fields":[{"name":"ts","dtype":"int64"},{"name":"close","dtype":"float64"},
// {"name":"side","dtype":"string","enum":["buy","sell"],"required":false}]}. Dtypes are
// int64, float64, string, bool and timestamp (epoch seconds, an int64 column in a frame).
// Parse normalises: dtype names are case-insensitive and aliases map to one name
// (int, integer, long, bigint → int64; float, double, double precision, number →
// float64; str, text, utf8 → string; boolean → bool; datetime, timestamp[s] →
// timestamp); fields are sorted by name; enums (string columns only) are sorted and
// deduplicated; "required" defaults to true. Schema.Frame, Enums, Optional and
// ConformanceOptions turn a schema into what frames and the conformance pipeline use.
//
// # Subjects, versions, ids
//
// A subject is any UTF-8 name without control characters: a node id
// (ohlcv:binance:BTC/USDT:1m) or a node kind (ohlcv) that SubjectFor falls back to.
// Each registration of a new schema appends the subject's next version. Schema ids are
// global: the canonical fingerprint — "sha256:" + SHA-256 of Schema.Canonical(), the
// compact JSON of the normalised document with "required" on every field — maps to one
// id, so the same schema under two subjects, however spelled, has the same id.
// Registering a schema the subject already has returns that version and records
// nothing.
//
// # Compatibility
//
// A subject's level (default BACKWARD) decides which of its versions a new schema is
// checked against and in which direction. Backward: readers of the new schema read
// data written under the old. Forward: readers of the old read data written under the
// new.
//
//	level                 checks the new schema against     direction
//	BACKWARD              the latest version                backward
//	BACKWARD_TRANSITIVE   every version                     backward
//	FORWARD               the latest version                forward
//	FORWARD_TRANSITIVE    every version                     forward
//	FULL                  the latest version                both
//	FULL_TRANSITIVE       every version                     both
//	NONE                  nothing
//
// What each kind of change between an old and a new version means for columnar bars:
//
//	change                                   backward   forward
//	add an optional column                   ok         ok
//	add a required column                    breaks     ok        old data lacks it
//	remove an optional column                ok         ok
//	remove a required column                 ok         breaks    old readers need it
//	make an optional column required         breaks     ok
//	make a required column optional          ok         breaks
//	widen int64 → float64                    ok         breaks    exact up to 2^53
//	narrow float64 → int64                   breaks     ok
//	timestamp → int64                        ok         breaks    same epoch seconds
//	int64 → timestamp                        breaks     ok        not every integer is a time
//	any other dtype change                   breaks     breaks
//	add an enumeration to a string column    breaks     ok        old data may hold other values
//	remove an enumeration                    ok         breaks
//	narrow an enumeration (remove values)    breaks     ok
//	widen an enumeration (add values)        ok         breaks
//	rename a required column                 breaks     breaks    a removal plus an addition
//	reorder fields, respell dtypes           (the same schema: no new version)
//
// A rejected registration is an *IncompatibleError ("Schema update rejected:
// incompatible with previous version N") listing every incompatibility, each naming
// the version and column it concerns.
//
// # Validation modes and promotion
//
// A subject starts in canary when its first version is registered. Validate checks a
// payload against the subject's latest version: required columns present, columns of
// the declared type, no columns the schema lacks, string values inside enumerations.
// In canary a failure is counted (Options.OnValidationFailure, e.g. FailureCounter's
// seamless_schema_validation_failures_total{subject,mode}) and the payload served; in
// strict it is counted and rejected with a *ViolationError (code schema_violation).
//
// Promote moves a subject to strict once it has run clean for Options.CanaryWindow
// (default 48 h, measured on the injected clock) since it entered canary or since its
// last failure, whichever is later, with at least Options.MinCanaryValidations clean
// validations in that time (so a subject nobody read is not called clean) — or at once
// when forced with a reason. Demote moves it back to canary; it always needs a reason,
// and the window starts again. Validation counts are kept per subject in the Store,
// merged across processes, and flushed at most every Options.FlushInterval.
//
// # Audit trail
//
// Every change — register, set_compatibility, promote, demote — is a Record appended to
// the store's log: who (the actor WithActor put in the context: the API token's name),
// what, when, the reason, whether it was forced, the schema bundle's fingerprint
// (BundleDir) and the canary's clean time. The log is the registry's whole state: a
// Registry replays it on Open and catches up before each change, so several processes
// can share a store. Records form a hash chain (each Hash covers the record and the
// previous Hash); VerifyAudit finds the first edited, removed or inserted record.
//
// # Storage
//
// Store has three implementations: MemStore (tests), filestore (embedded: JSON lines
// with fsync, crash-safe appends) and pgstore (PostgreSQL); storetest is their shared
// contract. registryhttp serves the Confluent-style HTTP API and is its client.
package schemaregistry
