package seamless_test

import (
	"context"
	"errors"
	"testing"

	"github.com/seamless-data/seamless"
	sr "github.com/seamless-data/seamless/schemaregistry"
)

// TestSchemaRegistryGatesResponses: canary serves and labels responses with the
// approved schema; strict rejects a payload that deviates from it.
func TestSchemaRegistryGatesResponses(t *testing.T) {
	ctx := context.Background()
	var failures int
	reg, err := sr.Open(ctx, sr.NewMemStore(), sr.Options{OnValidationFailure: func(string, sr.Mode) { failures++ }})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	e := newEnv(t, seamless.Config{Schemas: reg.Validator()})
	r := req(day(1), day(1)+3600, seamless.AutoBackfill)
	res, err := e.p.Fetch(ctx, r)
	if err != nil || res.Metadata.SchemaID != 0 {
		t.Fatalf("no schema registered: %v %+v", err, res.Metadata)
	}
	// The approved schema lacks "volume": the demo payload deviates from it.
	doc := `{"fields":[{"name":"ts","dtype":"int64"},{"name":"open","dtype":"float64"},{"name":"high","dtype":"float64"},{"name":"low","dtype":"float64"},{"name":"close","dtype":"float64"}]}`
	s, err := sr.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	got, err := reg.Register(ctx, node, s)
	if err != nil {
		t.Fatal(err)
	}
	res, err = e.p.Fetch(ctx, r)
	if err != nil {
		t.Fatalf("canary blocked: %v", err)
	}
	if res.Metadata.SchemaID != got.ID || res.Metadata.SchemaVersion != 1 || failures == 0 {
		t.Fatalf("canary: metadata %+v, failures %d", res.Metadata, failures)
	}
	if _, err := reg.SetMode(sr.WithActor(ctx, "ops"), node, sr.Strict, sr.PromoteRequest{Force: true, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.p.Fetch(ctx, r)
	var ve *sr.ViolationError
	if !errors.As(err, &ve) || seamless.ErrorCode(err) != "schema_violation" {
		t.Fatalf("strict: %v", err)
	}
}
