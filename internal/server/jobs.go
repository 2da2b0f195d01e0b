package server

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/server/wire"
)

// errTooManyJobs: the job queue is full.
var errTooManyJobs = errors.New("too many backfill jobs queued")

// jobs owns the lifecycle of background backfill jobs:
//
//	queued ─► running ─► succeeded | failed | cancelled
//	   └──────────────► cancelled (closed before a slot freed up)
//
// At most `slots` jobs run at once and at most `maxQueued` wait. Finished jobs stay
// visible for `retention`, then are forgotten. close cancels every job and waits.
type jobs struct {
	provider  *seamless.Provider
	clock     clock.Clock
	log       *slog.Logger
	retention time.Duration
	maxQueued int
	slots     chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	queued int
	byID   map[string]*wire.Job
	// seq numbers the jobs in the order they were accepted (list is newest first even
	// when the clock has not moved).
	seq  map[string]uint64
	next uint64
}

func newJobs(p *seamless.Provider, running, maxQueued int, retention time.Duration, clk clock.Clock, log *slog.Logger) *jobs {
	ctx, cancel := context.WithCancel(context.Background())
	return &jobs{
		provider: p, clock: clk, log: log, retention: retention, maxQueued: maxQueued,
		slots: make(chan struct{}, running), ctx: ctx, cancel: cancel, byID: map[string]*wire.Job{}, seq: map[string]uint64{},
	}
}

// start queues a backfill of req and returns its job id. The request must already be
// validated.
func (j *jobs) start(req seamless.BackfillRequest) (string, error) {
	id := newJobID()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return "", seamless.ErrClosed
	}
	j.forgetExpired()
	if j.queued >= j.maxQueued {
		return "", errTooManyJobs
	}
	j.queued++
	j.next++
	j.seq[id] = j.next
	j.byID[id] = &wire.Job{
		JobID: id, State: wire.JobQueued, NodeID: req.NodeID, Interval: req.Interval, Start: req.Start, End: req.End,
		FailedChunks: []grid.Range{}, CreatedAt: j.clock.Now().UTC(),
	}
	j.wg.Add(1)
	go j.run(id, req)
	return id, nil
}

func (j *jobs) run(id string, req seamless.BackfillRequest) {
	defer j.wg.Done()
	select {
	case j.slots <- struct{}{}:
		defer func() { <-j.slots }()
	case <-j.ctx.Done():
		j.update(id, func(job *wire.Job) {
			j.queued--
			j.finish(job, wire.JobCancelled, &wire.ErrorBody{Code: seamless.CodeCanceled, Message: "server shut down before the job started"})
		})
		return
	}
	j.update(id, func(job *wire.Job) {
		j.queued--
		job.State = wire.JobRunning
		now := j.clock.Now().UTC()
		job.StartedAt = &now
	})
	req.Progress = func(p seamless.BackfillProgress) {
		j.update(id, func(job *wire.Job) {
			job.ChunksDone, job.ChunksTotal, job.Bars = p.ChunksDone, p.ChunksTotal, p.Bars
			if p.Err != nil {
				job.FailedChunks = append(job.FailedChunks, p.Chunk)
			}
		})
	}
	sum, err := j.provider.Backfill(j.ctx, req)
	j.update(id, func(job *wire.Job) {
		job.ChunksTotal, job.Bars = sum.Chunks, sum.Bars
		switch {
		case err == nil:
			job.ChunksDone = sum.Chunks
			j.finish(job, wire.JobSucceeded, nil)
		case j.ctx.Err() != nil:
			body := wire.EncodeError(err)
			j.finish(job, wire.JobCancelled, &body)
		default:
			body := wire.EncodeError(err)
			j.finish(job, wire.JobFailed, &body)
		}
	})
	j.log.Info("seamless.backfill.job_finished", "job_id", id, "node_id", req.NodeID, "interval", req.Interval,
		"chunks", sum.Chunks, "bars", sum.Bars, "failed_chunks", len(sum.Failed), "err", err)
}

// finish ends a job; j.mu is held.
func (j *jobs) finish(job *wire.Job, state string, err *wire.ErrorBody) {
	now := j.clock.Now().UTC()
	job.State, job.Error, job.FinishedAt = state, err, &now
}

func (j *jobs) update(id string, f func(*wire.Job)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if job := j.byID[id]; job != nil {
		f(job)
	}
}

// get returns a copy of the job's document.
func (j *jobs) get(id string) (wire.Job, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.forgetExpired()
	job, ok := j.byID[id]
	if !ok {
		return wire.Job{}, false
	}
	out := *job
	out.FailedChunks = append([]grid.Range{}, job.FailedChunks...)
	return out, true
}

// list returns copies of every job still visible, newest first.
func (j *jobs) list() []wire.Job {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.forgetExpired()
	out := make([]wire.Job, 0, len(j.byID))
	for _, job := range j.byID {
		c := *job
		c.FailedChunks = append([]grid.Range{}, job.FailedChunks...)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b wire.Job) int { return cmp.Compare(j.seq[b.JobID], j.seq[a.JobID]) })
	return out
}

// forgetExpired drops jobs finished more than retention ago; j.mu is held.
func (j *jobs) forgetExpired() {
	cutoff := j.clock.Now().Add(-j.retention)
	for id, job := range j.byID {
		if job.FinishedAt != nil && job.FinishedAt.Before(cutoff) {
			delete(j.byID, id)
			delete(j.seq, id)
		}
	}
}

// close cancels every job and waits for them to stop. Later starts fail with ErrClosed.
func (j *jobs) close() {
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	j.cancel()
	j.wg.Wait()
}

// newJobID returns 128 random bits in hex: ids cannot be guessed or enumerated.
func newJobID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
