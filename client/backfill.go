package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/server/wire"
)

// JobState is the state of a background backfill job.
type JobState string

// Job states: queued → running → succeeded | failed | cancelled.
const (
	JobQueued    JobState = wire.JobQueued
	JobRunning   JobState = wire.JobRunning
	JobSucceeded JobState = wire.JobSucceeded
	JobFailed    JobState = wire.JobFailed
	JobCancelled JobState = wire.JobCancelled
)

// Job is a background backfill on the server.
type Job struct {
	ID         string
	State      JobState
	NodeID     string
	Interval   int64
	Start, End int64
	// ChunksTotal is the number of missing chunks (known once the first one ends).
	ChunksDone, ChunksTotal int
	Bars                    int
	FailedChunks            []grid.Range
	// Err is why the job failed or was cancelled: the library's typed error (an
	// *seamless.UpstreamError for a chunk that failed after retries) or an *Error.
	Err error
	// CreatedAt is when the job was accepted; StartedAt and FinishedAt are zero until
	// it starts and ends.
	CreatedAt, StartedAt, FinishedAt time.Time
}

// Done reports whether the job has ended.
func (j Job) Done() bool {
	return j.State == JobSucceeded || j.State == JobFailed || j.State == JobCancelled
}

func jobOf(doc wire.Job) Job {
	j := Job{
		ID: doc.JobID, State: JobState(doc.State), NodeID: doc.NodeID, Interval: doc.Interval, Start: doc.Start, End: doc.End,
		ChunksDone: doc.ChunksDone, ChunksTotal: doc.ChunksTotal, Bars: doc.Bars, FailedChunks: doc.FailedChunks,
		CreatedAt: doc.CreatedAt,
	}
	if doc.StartedAt != nil {
		j.StartedAt = *doc.StartedAt
	}
	if doc.FinishedAt != nil {
		j.FinishedAt = *doc.FinishedAt
	}
	if doc.Error != nil {
		j.Err = errorOf(wire.Status(doc.Error.Code), *doc.Error)
	}
	return j
}

// StartBackfill asks the server to backfill [req.Start, req.End) of a series in the
// background and returns the job id. A malformed request fails here, with the same
// error Provider.Backfill would return. req.Progress is not used.
func (c *Client) StartBackfill(ctx context.Context, req seamless.BackfillRequest) (string, error) {
	body, err := json.Marshal(wire.BackfillRequest{NodeID: req.NodeID, Interval: req.Interval, Start: wire.Time(req.Start), End: wire.Time(req.End)})
	if err != nil {
		return "", err
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/backfill", nil, bytes.NewReader(body), wire.MediaJSON, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var doc wire.JobAccepted
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return "", fmt.Errorf("seamless client: POST /v1/backfill: decode: %w", err)
	}
	return doc.JobID, nil
}

// BackfillJob returns the state of a job. An unknown (or long finished) job is an
// *Error matching ErrNotFound.
func (c *Client) BackfillJob(ctx context.Context, id string) (Job, error) {
	var doc wire.Job
	if err := c.getJSON(ctx, "/v1/backfill/"+url.PathEscape(id), nil, &doc); err != nil {
		return Job{}, err
	}
	return jobOf(doc), nil
}

// BackfillJobs lists the server's queued, running and recently finished jobs
// (finished ones are kept for an hour), newest first.
func (c *Client) BackfillJobs(ctx context.Context) ([]Job, error) {
	var doc wire.JobList
	if err := c.getJSON(ctx, "/v1/backfill", nil, &doc); err != nil {
		return nil, err
	}
	out := make([]Job, 0, len(doc.Jobs))
	for _, j := range doc.Jobs {
		out = append(out, jobOf(j))
	}
	return out, nil
}

// Backfill runs a backfill on the server and waits for it, polling the job and
// calling req.Progress as chunks finish. It returns the final job and, when the job
// did not succeed, its error (as Provider.Backfill, an *seamless.UpstreamError for
// failed chunks). Cancelling ctx stops the waiting, not the job.
func (c *Client) Backfill(ctx context.Context, req seamless.BackfillRequest) (Job, error) {
	id, err := c.StartBackfill(ctx, req)
	if err != nil {
		return Job{}, err
	}
	done := -1
	for {
		job, err := c.BackfillJob(ctx, id)
		if err != nil {
			return job, err
		}
		if req.Progress != nil && job.ChunksDone != done && job.ChunksTotal > 0 {
			done = job.ChunksDone
			req.Progress(seamless.BackfillProgress{ChunksDone: job.ChunksDone, ChunksTotal: job.ChunksTotal, Bars: job.Bars})
		}
		if job.Done() {
			return job, job.Err
		}
		if err := (clock.Real{}).Sleep(ctx, c.poll); err != nil {
			return job, err
		}
	}
}
