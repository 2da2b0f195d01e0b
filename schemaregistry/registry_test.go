package schemaregistry_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/conformance"
	"github.com/seamless-data/seamless/frame"
	sr "github.com/seamless-data/seamless/schemaregistry"
	"github.com/seamless-data/seamless/schemaregistry/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ctx = context.Background()

var t0 = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)

const (
	ohlcvDoc = `{"fields":[{"name":"ts","dtype":"int64"},{"name":"open","dtype":"float64"},{"name":"high","dtype":"float64"},
		{"name":"low","dtype":"float64"},{"name":"close","dtype":"float64"},{"name":"volume","dtype":"float64"}]}`
	tradesDoc = `{"fields":[{"name":"ts","dtype":"timestamp"},{"name":"price","dtype":"double"},{"name":"size","dtype":"double"},
		{"name":"side","dtype":"string","enum":["sell","buy"],"required":false}]}`
	node = "ohlcv:binance:BTC/USDT:1m"
)

// failures counts OnValidationFailure calls.
type failures struct {
	mu sync.Mutex
	n  map[string]int
}

func (f *failures) hook(subject string, mode sr.Mode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n[subject+"|"+string(mode)]++
}

func (f *failures) get(subject string, mode sr.Mode) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n[subject+"|"+string(mode)]
}

type fixture struct {
	reg   *sr.Registry
	store *sr.MemStore
	clock *clock.Fake
	fails *failures
}

func newFixture(t *testing.T, opts sr.Options) fixture {
	t.Helper()
	f := fixture{store: sr.NewMemStore(), clock: clock.NewFake(t0), fails: &failures{n: map[string]int{}}}
	opts.Clock, opts.OnValidationFailure = f.clock, f.fails.hook
	reg, err := sr.Open(ctx, f.store, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	f.reg = reg
	return f
}

func TestContractMemStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		s := sr.NewMemStore()
		return func() sr.Store { return s }
	})
}

func TestParse(t *testing.T) {
	s, err := sr.Parse([]byte(tradesDoc))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"fields":[{"name":"price","dtype":"float64","required":true},{"name":"side","dtype":"string","enum":["buy","sell"],"required":false},` +
		`{"name":"size","dtype":"float64","required":true},{"name":"ts","dtype":"timestamp","required":true}]}`
	if got := string(s.Canonical()); got != want {
		t.Errorf("Canonical =\n%s\nwant\n%s", got, want)
	}
	bad := map[string]string{
		`{"fields":[{"name":"a","dtype":"decimal"}]}`:                            `column "a": unknown dtype "decimal"`,
		`{"fields":[{"name":"a","dtype":"int64"},{"name":"a","dtype":"int64"}]}`: `column "a": duplicate column`,
		`{"fields":[{"name":"","dtype":"int64"}]}`:                               `fields[0]: empty column name`,
		`{"fields":[{"name":"n","dtype":"int64","enum":["1"]}]}`:                 `enum on a int64 column`,
		`{"fields":[{"name":"ts","dtype":"float64"}]}`:                           `the ts column holds epoch seconds`,
		`{"fields":[]}`:  `no fields`,
		`{"columns":[]}`: `unknown field "columns"`,
		`[1,2]`:          `invalid schema`,
	}
	for doc, msg := range bad {
		_, err := sr.Parse([]byte(doc))
		var pe *sr.ParseError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), msg) || sr.ErrorCode(err) != sr.CodeInvalidSchema {
			t.Errorf("Parse(%s) = %v, want a ParseError containing %q", doc, err, msg)
		}
	}
}

func TestFingerprintIgnoresSpelling(t *testing.T) {
	a := sr.MustParse(`{"fields":[{"name":"side","dtype":"TEXT","enum":["sell","buy","buy"]},{"name":"ts","dtype":"long"}]}`)
	b := sr.MustParse(`{"fields":[{"name":"ts","dtype":"int64","required":true},{"name":"side","dtype":"string","enum":["buy","sell"]}]}`)
	if a.Fingerprint() != b.Fingerprint() || !strings.HasPrefix(a.Fingerprint(), "sha256:") {
		t.Errorf("fingerprints differ: %s %s", a.Fingerprint(), b.Fingerprint())
	}
	c := sr.MustParse(`{"fields":[{"name":"ts","dtype":"int64"},{"name":"side","dtype":"string","enum":["buy","sell"],"required":false}]}`)
	if c.Fingerprint() == b.Fingerprint() {
		t.Error("the required flag does not change the fingerprint")
	}
}

func TestFrameConversion(t *testing.T) {
	s := sr.MustParse(ohlcvDoc)
	if fs := s.Frame(); !fs.Equal(frame.OHLCV) {
		t.Errorf("Frame() = %v, want OHLCV %v", fs, frame.OHLCV)
	}
	back, err := sr.FromFrame(frame.OHLCV)
	if err != nil || !back.Equal(s) {
		t.Errorf("FromFrame(OHLCV) = %s, %v", back.Canonical(), err)
	}
	tr := sr.MustParse(tradesDoc)
	o := tr.ConformanceOptions(conformance.Options{Interval: 60})
	if !o.Schema.Equal(frame.Trades) || o.Interval != 60 || len(o.Optional) != 1 || o.Optional[0] != "side" ||
		strings.Join(o.Enums["side"], ",") != "buy,sell" {
		t.Errorf("ConformanceOptions = %+v", o)
	}
}

// TestIDDedupAcrossSubjects: one schema under two subjects (spelled differently) has
// one id; re-registering is idempotent; a new schema gets the next id.
func TestIDDedupAcrossSubjects(t *testing.T) {
	f := newFixture(t, sr.Options{})
	a, err := f.reg.Register(ctx, node, sr.MustParse(ohlcvDoc))
	if err != nil {
		t.Fatal(err)
	}
	respelled := sr.MustParse(`{"fields":[{"name":"volume","dtype":"double"},{"name":"close","dtype":"double"},{"name":"low","dtype":"float"},
		{"name":"high","dtype":"float64"},{"name":"open","dtype":"number"},{"name":"ts","dtype":"long"}]}`)
	b, err := f.reg.Register(ctx, "ohlcv:demo:ETH-USD:5m", respelled)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != 1 || b.ID != 1 || a.Version != 1 || b.Version != 1 || a.Fingerprint != b.Fingerprint {
		t.Errorf("registrations %+v and %+v: want id 1 version 1 for both", a, b)
	}
	again, err := f.reg.Register(ctx, node, respelled)
	if err != nil || !again.Existing || again.ID != 1 || again.Version != 1 {
		t.Errorf("re-register = %+v, %v; want the existing version", again, err)
	}
	c, err := f.reg.Register(ctx, "trades:binance:BTC/USDT:1m", sr.MustParse(tradesDoc))
	if err != nil || c.ID != 2 {
		t.Errorf("new schema: %+v, %v; want id 2", c, err)
	}
	if s, err := f.reg.SchemaByID(ctx, 1); err != nil || !s.Equal(sr.MustParse(ohlcvDoc)) {
		t.Errorf("SchemaByID(1) = %s, %v", s.Canonical(), err)
	}
	if _, err := f.reg.SchemaByID(ctx, 9); !errors.Is(err, sr.ErrNotFound) {
		t.Errorf("SchemaByID(9) = %v", err)
	}
	recs, _ := f.reg.Audit(ctx, sr.AuditQuery{Action: sr.ActionRegister})
	if len(recs) != 3 {
		t.Errorf("%d register records, want 3 (the idempotent one records nothing)", len(recs))
	}
	subjects, _ := f.reg.Subjects(ctx)
	if strings.Join(subjects, " ") != "ohlcv:binance:BTC/USDT:1m ohlcv:demo:ETH-USD:5m trades:binance:BTC/USDT:1m" {
		t.Errorf("Subjects = %q", subjects)
	}
	if got, err := f.reg.SubjectFor(ctx, "ohlcv:binance:BTC/USDT:1m"); err != nil || got != node {
		t.Errorf("SubjectFor(node) = %q, %v", got, err)
	}
	if _, err := f.reg.Register(ctx, "ohlcv", sr.MustParse(ohlcvDoc)); err != nil {
		t.Fatal(err)
	}
	if got, err := f.reg.SubjectFor(ctx, "ohlcv:binance:ETH/USDT:1h"); err != nil || got != "ohlcv" {
		t.Errorf("SubjectFor(other node) = %q, %v; want the kind subject", got, err)
	}
}

func TestRegisterIncompatible(t *testing.T) {
	f := newFixture(t, sr.Options{})
	if _, err := f.reg.Register(ctx, node, sr.MustParse(ohlcvDoc)); err != nil {
		t.Fatal(err)
	}
	withVWAP := sr.MustParse(strings.Replace(ohlcvDoc, `{"name":"ts"`, `{"name":"vwap","dtype":"float64"},{"name":"ts"`, 1))
	_, err := f.reg.Register(ctx, node, withVWAP)
	var ie *sr.IncompatibleError
	if !errors.As(err, &ie) || ie.Latest != 1 || len(ie.Reasons) != 1 ||
		!strings.Contains(err.Error(), "Schema update rejected: incompatible with previous version 1") {
		t.Fatalf("Register = %v, want an IncompatibleError against version 1", err)
	}
	if msgs, err := f.reg.CheckCompatibility(ctx, node, withVWAP); err != nil || len(msgs) != 1 {
		t.Errorf("CheckCompatibility = %q, %v", msgs, err)
	}
	if _, err := f.reg.SetCompatibility(ctx, node, sr.Forward); err != nil {
		t.Fatal(err)
	}
	if r, err := f.reg.Register(ctx, node, withVWAP); err != nil || r.Version != 2 || r.ID != 2 {
		t.Errorf("under FORWARD: %+v, %v", r, err)
	}
	if l, _ := f.reg.Compatibility(ctx, node); l != sr.Forward {
		t.Errorf("Compatibility = %s", l)
	}
	if l, _ := f.reg.Compatibility(ctx, "other"); l != sr.Backward {
		t.Errorf("default Compatibility = %s", l)
	}
	if _, err := f.reg.Register(ctx, "bad\x00subject", withVWAP); sr.ErrorCode(err) != sr.CodeBadRequest {
		t.Errorf("subject with NUL: %v", err)
	}
}

func ohlcvFrame(extra ...frame.Field) *frame.Frame {
	s := frame.OHLCV
	s.Fields = append(append([]frame.Field(nil), s.Fields...), extra...)
	fr := frame.New(s, 1)
	fr.TS = append(fr.TS, 60)
	for i := range fr.Cols {
		c := &fr.Cols[i]
		switch c.Type {
		case frame.Float64:
			c.F64 = append(c.F64, 1)
		case frame.String:
			c.Str = append(c.Str, "x")
		case frame.Int64:
			c.I64 = append(c.I64, 1)
		case frame.Bool:
			c.Bool = append(c.Bool, true)
		}
	}
	return fr
}

// TestCanaryServesStrictBlocks: in canary a deviating payload is recorded and counted
// but passes; in strict it is rejected with schema_violation and counted.
func TestCanaryServesStrictBlocks(t *testing.T) {
	f := newFixture(t, sr.Options{})
	if _, err := f.reg.Register(ctx, node, sr.MustParse(ohlcvDoc)); err != nil {
		t.Fatal(err)
	}
	good := ohlcvFrame()
	res, err := f.reg.Validate(ctx, node, good)
	if err != nil || !res.OK() || res.SchemaID != 1 || res.Version != 1 || res.Mode != sr.Canary {
		t.Fatalf("good payload: %+v, %v", res, err)
	}
	bad := ohlcvFrame(frame.Field{Name: "note", Type: frame.String})
	bad.Cols = bad.Cols[1:] // drop open
	res, err = f.reg.Validate(ctx, node, bad)
	if err != nil {
		t.Fatalf("canary blocked: %v", err)
	}
	if len(res.Violations) != 2 || !strings.Contains(res.Violations[0], `missing required column "open"`) ||
		!strings.Contains(res.Violations[1], `unexpected column "note"`) {
		t.Errorf("canary violations = %q", res.Violations)
	}
	if n := f.fails.get(node, sr.Canary); n != 1 {
		t.Errorf("canary failures counted = %d, want 1", n)
	}

	if _, err := f.reg.Promote(ctx, node, sr.PromoteRequest{Force: true, Reason: "incident 42"}); err != nil {
		t.Fatal(err)
	}
	res, err = f.reg.Validate(ctx, node, bad)
	var ve *sr.ViolationError
	if !errors.As(err, &ve) || sr.ErrorCode(err) != sr.CodeSchemaViolation || res.Mode != sr.Strict || len(ve.Result.Violations) != 2 {
		t.Fatalf("strict: %+v, %v; want a schema_violation", res, err)
	}
	if n := f.fails.get(node, sr.Strict); n != 1 {
		t.Errorf("strict failures counted = %d, want 1", n)
	}
	if res, err := f.reg.ValidateSchema(ctx, node, frame.OHLCV); err != nil || !res.OK() {
		t.Errorf("strict, conforming columns: %+v, %v", res, err)
	}
	if _, err := f.reg.Validate(ctx, "ohlcv:nobody:X:1m", good); !errors.Is(err, sr.ErrNotFound) {
		t.Errorf("unregistered subject: %v", err)
	}
}

func TestValidateEnumsAndTypes(t *testing.T) {
	f := newFixture(t, sr.Options{})
	subject := "trades:binance:BTC/USDT:1m"
	if _, err := f.reg.Register(ctx, subject, sr.MustParse(tradesDoc)); err != nil {
		t.Fatal(err)
	}
	fr := frame.New(frame.Trades, 4)
	fr.TS = []int64{1, 2, 3, 4}
	fr.Cols[0].F64 = []float64{1, 1, 1, 1}
	fr.Cols[1].F64 = []float64{1, 1, 1, 1}
	fr.Cols[2].Str = []string{"buy", "hold", "", "short"}
	res, err := f.reg.Validate(ctx, subject, fr)
	if err != nil || len(res.Violations) != 1 || !strings.Contains(res.Violations[0], `2 value(s) outside the enumeration [buy sell], e.g. ["hold" "short"]`) {
		t.Errorf("enum: %q, %v", res.Violations, err)
	}
	noSide := frame.Schema{Fields: []frame.Field{{Name: "price", Type: frame.Float64}, {Name: "size", Type: frame.Int64}}}
	res, _ = f.reg.ValidateSchema(ctx, subject, noSide)
	if len(res.Violations) != 1 || !strings.Contains(res.Violations[0], `column "size" is int64, the schema says float64`) {
		t.Errorf("types, optional side absent: %q", res.Violations)
	}
}

// TestPromotionWindow: promotion is refused inside the canary window, restarted by a
// failure, refused without traffic, and allowed after a clean window.
func TestPromotionWindow(t *testing.T) {
	f := newFixture(t, sr.Options{CanaryWindow: 48 * time.Hour, MinCanaryValidations: 2})
	if _, err := f.reg.Register(ctx, node, sr.MustParse(ohlcvDoc)); err != nil {
		t.Fatal(err)
	}
	promote := func() error {
		_, err := f.reg.Promote(ctx, node, sr.PromoteRequest{Reason: "clean canary"})
		return err
	}
	refused := func(when, want string) {
		t.Helper()
		err := promote()
		var pe *sr.PromotionError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: Promote = %v, want a refusal saying %q", when, err, want)
		}
	}
	f.clock.Advance(47 * time.Hour)
	refused("after 47h", "clean for 47h0m0s since the entered canary")
	if _, err := f.reg.Validate(ctx, node, ohlcvFrame(frame.Field{Name: "x", Type: frame.Bool})); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Hour)
	refused("49h after registering, 2h after a failure", "since the last validation failure")
	f.clock.Advance(46 * time.Hour)
	refused("48h clean without traffic", "no traffic")
	for range 2 {
		if _, err := f.reg.Validate(ctx, node, ohlcvFrame()); err != nil {
			t.Fatal(err)
		}
	}
	st, err := f.reg.Status(ctx, node)
	if err != nil || !st.Eligible || st.CleanSeconds != 48*3600 || st.Stats.Validations != 3 || st.Stats.Failures != 1 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	if err := promote(); err != nil {
		t.Fatalf("after a clean window: %v", err)
	}
	st, _ = f.reg.Status(ctx, node)
	if st.Mode != sr.Strict {
		t.Errorf("mode %s after promotion", st.Mode)
	}
	refused("again", "already strict")

	// Demotion needs a reason and restarts the window.
	if _, err := f.reg.Demote(ctx, node, sr.PromoteRequest{}); sr.ErrorCode(err) != sr.CodeBadRequest {
		t.Errorf("demotion without reason: %v", err)
	}
	if _, err := f.reg.SetMode(ctx, node, sr.Canary, sr.PromoteRequest{Reason: "noisy source"}); err != nil {
		t.Fatal(err)
	}
	refused("just demoted", "clean for 0s")
	if _, err := f.reg.Promote(ctx, node, sr.PromoteRequest{Force: true}); sr.ErrorCode(err) != sr.CodeBadRequest {
		t.Errorf("forced without reason: %v", err)
	}
	rec, err := f.reg.Promote(ctx, node, sr.PromoteRequest{Force: true, Reason: "hotfix", Bundle: bundleA})
	if err != nil || !rec.Forced || rec.Reason != "hotfix" || rec.Bundle != bundleA {
		t.Errorf("forced promotion: %+v, %v", rec, err)
	}
}

// TestAuditTrail: every change is recorded with actor, reason and bundle; the chain
// verifies, and an edited record is found.
func TestAuditTrail(t *testing.T) {
	f := newFixture(t, sr.Options{})
	alice := sr.WithActor(ctx, "alice")
	if _, err := f.reg.Register(alice, node, sr.MustParse(ohlcvDoc)); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	if _, err := f.reg.SetCompatibility(alice, node, sr.Full); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.Promote(sr.WithActor(ctx, "bob"), node, sr.PromoteRequest{Force: true, Reason: "go live", Bundle: bundleB}); err != nil {
		t.Fatal(err)
	}
	recs, err := f.reg.Audit(ctx, sr.AuditQuery{})
	if err != nil || len(recs) != 3 {
		t.Fatalf("Audit = %d records, %v", len(recs), err)
	}
	p := recs[2]
	if p.Action != sr.ActionPromote || p.Actor != "bob" || !p.Forced || p.Reason != "go live" || p.Bundle != bundleB ||
		!p.Time.Equal(t0.Add(time.Hour)) || p.Mode != sr.Strict || p.PrevHash != recs[1].Hash {
		t.Errorf("promotion record = %+v", p)
	}
	if got, _ := f.reg.Audit(ctx, sr.AuditQuery{Actor: "alice", Since: t0.Add(time.Minute)}); len(got) != 1 || got[0].Action != sr.ActionSetCompatibility {
		t.Errorf("query by actor and time = %+v", got)
	}
	if got, _ := f.reg.Audit(ctx, sr.AuditQuery{Limit: 1}); len(got) != 1 || got[0].Seq != 3 {
		t.Errorf("Limit 1 = %+v", got)
	}
	if n, err := f.reg.VerifyAudit(ctx); err != nil || n != 3 {
		t.Fatalf("VerifyAudit = %d, %v", n, err)
	}
	edited := recs[1]
	edited.Compatibility = sr.None
	f.store.Tamper(edited)
	_, err = f.reg.VerifyAudit(ctx)
	var ce *sr.ChainError
	if !errors.As(err, &ce) || ce.Seq != 2 || sr.ErrorCode(err) != sr.CodeAuditTampered {
		t.Errorf("after editing record 2: %v", err)
	}
	// Rehashing the edited record is caught by the next record's prev_hash.
	edited.Hash = edited.ComputeHash()
	f.store.Tamper(edited)
	if _, err := f.reg.VerifyAudit(ctx); !errors.As(err, &ce) || ce.Seq != 3 {
		t.Errorf("after rehashing record 2: %v", err)
	}
}

func TestBundle(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("ohlcv.json", ohlcvDoc)
	write("trades/binance.json", tradesDoc)
	b1, err := sr.BundleDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(b1.Files) != 2 || b1.Files[0].Path != "ohlcv.json" || b1.Files[1].Path != "trades/binance.json" {
		t.Errorf("files = %+v", b1.Files)
	}
	again, _ := sr.BundleDir(dir)
	if again.Fingerprint != b1.Fingerprint {
		t.Error("fingerprint not deterministic")
	}
	write("trades/binance.json", tradesDoc+" ")
	b2, _ := sr.BundleDir(dir)
	if b2.Fingerprint == b1.Fingerprint {
		t.Error("a changed file keeps the fingerprint")
	}
	// Moving bytes between the path and the content changes it too.
	d2 := t.TempDir()
	os.WriteFile(filepath.Join(d2, "ab"), []byte("c"), 0o644)
	d3 := t.TempDir()
	os.WriteFile(filepath.Join(d3, "a"), []byte("bc"), 0o644)
	x, _ := sr.BundleDir(d2)
	y, _ := sr.BundleDir(d3)
	if x.Fingerprint == y.Fingerprint {
		t.Error("ambiguous encoding")
	}
	if _, err := sr.BundleDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing directory accepted")
	}
}

// Bundle fingerprints as BundleDir computes them.
const (
	bundleA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	bundleB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// TestBundleFingerprintChecked: a promotion or demotion naming a bundle must name it
// by a real fingerprint, so the audit trail never records a hand-typed one.
func TestBundleFingerprintChecked(t *testing.T) {
	f := newFixture(t, sr.Options{})
	for _, bad := range []string{"sha256:b", "sha256:" + strings.Repeat("B", 64), "md5:" + strings.Repeat("a", 64), strings.Repeat("a", 64)} {
		_, err := f.reg.Promote(ctx, node, sr.PromoteRequest{Force: true, Reason: "x", Bundle: bad})
		var re *sr.RequestError
		if !errors.As(err, &re) {
			t.Errorf("promote with bundle %q: %v, want a RequestError", bad, err)
		}
		if _, err := f.reg.Demote(ctx, node, sr.PromoteRequest{Reason: "x", Bundle: bad}); !errors.As(err, &re) {
			t.Errorf("demote with bundle %q: %v, want a RequestError", bad, err)
		}
	}
}
