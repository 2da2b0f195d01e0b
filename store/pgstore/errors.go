package pgstore

import (
	"fmt"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/grid"
)

// StaleTokenError reports a fenced write rejected because a higher fencing token was
// already applied to an overlapping range of the series: the writer's lease expired and
// another worker has since written the chunk. Nothing was written. It wraps
// seamless.ErrLeaseLost, so callers match it with errors.Is(err, seamless.ErrLeaseLost).
type StaleTokenError struct {
	Series seamless.Series
	// Range and Token are the rejected write's.
	Range grid.Range
	Token uint64
	// Applied is the highest token applied to AppliedRange, a write range overlapping
	// Range.
	Applied      uint64
	AppliedRange grid.Range
}

func (e *StaleTokenError) Error() string {
	return fmt.Sprintf("pgstore: write %s %v with fencing token %d rejected: token %d was already applied to %v",
		e.Series, e.Range, e.Token, e.Applied, e.AppliedRange)
}

// Unwrap makes errors.Is(err, seamless.ErrLeaseLost) true.
func (e *StaleTokenError) Unwrap() error { return seamless.ErrLeaseLost }
