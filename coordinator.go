package seamless

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/seamless-data/seamless/grid"
)

// Coordinator hands out leases on backfill chunks so that every chunk is fetched from
// upstream by one worker at a time, even when requests overlap. Lease keys are built by
// ChunkKey from the series and the aligned chunk, so overlapping requests from any
// process claim the same key.
//
// Lifecycle of a key: free → Claim → held (Renew extends it) → Complete or Fail → free.
// A held lease whose deadline passes without Complete or Fail is a stale claim: it
// becomes free again for the next claimer.
type Coordinator interface {
	// Claim takes the lease on key for ttl. It returns ErrLeaseHeld (wrapped) when
	// another holder has it.
	Claim(ctx context.Context, key string, ttl time.Duration) (Lease, error)
	// Renew extends a held lease; it fails with ErrLeaseLost when the lease expired or
	// was taken over.
	Renew(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	// Complete releases the lease, recording the chunk as done.
	Complete(ctx context.Context, l Lease) error
	// Fail releases the lease, recording why the chunk failed.
	Fail(ctx context.Context, l Lease, reason string) error
	// Wait blocks until key is not held (completed, failed or expired) or ctx ends.
	Wait(ctx context.Context, key string) error
	// Inspect lists the leases currently held.
	Inspect(ctx context.Context) ([]LeaseInfo, error)
}

// Lease is a claim on a key. Token is a fencing token: it only grows, per coordinator,
// so storage can reject writes from a lease older than one already applied.
type Lease struct {
	Key          string `json:"key"`
	Token        uint64 `json:"token"`
	LeaseUntilMS int64  `json:"lease_until_ms"`
}

// LeaseInfo is a held lease as seen by Inspect.
type LeaseInfo struct {
	Lease
	Holder string `json:"holder,omitempty"`
}

// FailureLister is implemented by coordinators that record failed chunks, so that an
// operator can list them and retry them (seamless backfill --failed).
type FailureLister interface {
	FailedChunks(ctx context.Context) ([]ChunkFailure, error)
	// ClearFailure forgets a chunk's failure (after it was retried successfully).
	ClearFailure(ctx context.Context, key string) error
}

// ChunkFailure is a chunk whose last lease ended in Fail.
type ChunkFailure struct {
	Key    string    `json:"key"`
	Reason string    `json:"reason"`
	Token  uint64    `json:"token,omitempty"`
	At     time.Time `json:"at,omitempty"`
}

// ChunkKey is the coordinator key of an aligned backfill chunk. The node id is escaped
// so that its ':' and '/' can never be confused with the key's own separators.
func ChunkKey(s Series, chunk grid.Range) string {
	return url.QueryEscape(s.NodeID) + ":" + strconv.FormatInt(s.Interval, 10) + ":" +
		strconv.FormatInt(chunk.Start, 10) + ":" + strconv.FormatInt(chunk.End, 10)
}

// ParseChunkKey inverts ChunkKey.
func ParseChunkKey(key string) (Series, grid.Range, error) {
	parts := strings.Split(key, ":")
	if len(parts) != 4 {
		return Series{}, grid.Range{}, fmt.Errorf("chunk key %q: want node:interval:start:end", key)
	}
	node, err := url.QueryUnescape(parts[0])
	if err != nil {
		return Series{}, grid.Range{}, fmt.Errorf("chunk key %q: node: %w", key, err)
	}
	var nums [3]int64
	for i, p := range parts[1:] {
		if nums[i], err = strconv.ParseInt(p, 10, 64); err != nil {
			return Series{}, grid.Range{}, fmt.Errorf("chunk key %q: %w", key, err)
		}
	}
	r := grid.R(nums[1], nums[2])
	if nums[0] <= 0 || r.Empty() {
		return Series{}, grid.Range{}, fmt.Errorf("chunk key %q: bad interval or range", key)
	}
	return Series{NodeID: node, Interval: nums[0]}, r, nil
}
