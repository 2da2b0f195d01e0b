package schemaregistry

import (
	"context"
	"errors"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
)

// Validator adapts the registry to seamless.SchemaValidator: each response is checked
// against the approved schema of its node's subject (the node id, or its kind). Nodes
// with no registered schema are not validated.
func (r *Registry) Validator() seamless.SchemaValidator { return validator{r} }

type validator struct{ r *Registry }

func (v validator) Validate(ctx context.Context, nodeID string, f *frame.Frame) (seamless.SchemaResult, error) {
	subject, err := v.r.SubjectFor(ctx, nodeID)
	if errors.Is(err, ErrNotFound) {
		return seamless.SchemaResult{}, nil
	}
	if err != nil {
		return seamless.SchemaResult{}, err
	}
	res, err := v.r.Validate(ctx, subject, f)
	if err != nil {
		return seamless.SchemaResult{}, err
	}
	return seamless.SchemaResult{SchemaID: res.SchemaID, Version: res.Version}, nil
}
