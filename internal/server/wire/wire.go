// Package wire is the HTTP API's wire format, shared by the server (internal/server)
// and the public client (package client) so that both sides agree by construction:
// the query parameters of a request, the JSON documents of every route, the error
// body and its status codes, and the names of the headers and media types.
//
// Documents mirror the CLI's JSON output: a bars document is exactly what
// `seamless fetch --format json` prints, a coverage document what
// `seamless coverage --format json` prints.
package wire

import (
	"encoding/json"
	"io"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// Media types of /v1/bars responses.
const (
	MediaJSON  = "application/json"
	MediaCSV   = "text/csv"
	MediaArrow = "application/vnd.apache.arrow.stream"
	// MediaParquet is the type the Apache Parquet project registered.
	MediaParquet = "application/vnd.apache.parquet"
)

// Formats of /v1/bars, the values of its format parameter.
const (
	FormatJSON  = "json"
	FormatCSV   = "csv"
	FormatArrow = "arrow"
	// FormatParquet is one Parquet file (zstd), metadata in its footer under
	// ParquetMetadataKey. Unlike the others it cannot stream: a reader needs the
	// footer, so the server builds the whole file before sending it.
	FormatParquet = "parquet"
)

// APIVersion is the version of this HTTP API that GET /healthz reports as
// api_version, "MAJOR.MINOR". Clients refuse a server whose major version differs
// from the one they were written for; a minor version only adds (routes, optional
// parameters, document fields), so any minor of the same major is compatible.
const APIVersion = "1.0"

// APIMajor is the major part of APIVersion.
const APIMajor = "1"

// Health is the GET /healthz document.
type Health struct {
	Status     string `json:"status"`
	APIVersion string `json:"api_version"`
}

// CompatibleVersion reports whether a server reporting api_version v speaks this
// package's major version.
func CompatibleVersion(v string) bool {
	major, _, _ := strings.Cut(v, ".")
	return major == APIMajor
}

// MetadataHeader carries the metadata JSON of a CSV response.
const MetadataHeader = "X-Seamless-Metadata"

// ArrowMetadataKey is the Arrow schema metadata key holding the metadata JSON of an
// Arrow response.
const ArrowMetadataKey = "seamless.metadata"

// ParquetMetadataKey is the key-value metadata key (in the file footer) holding the
// metadata JSON of a Parquet response.
const ParquetMetadataKey = "seamless.metadata"

// WriteBars writes the bars document {"metadata":{…},"data":{…}} followed by a
// newline: the CLI's `fetch --format json` output byte for byte.
func WriteBars(w io.Writer, res seamless.Result) error {
	md, err := res.Metadata.MarshalJSON()
	if err != nil {
		return err
	}
	return WriteBarsMetadata(w, res, md)
}

// WriteBarsMetadata is WriteBars with the metadata already encoded (md), for a caller
// that needed it before the body (a header, a log line). The columns stream from the
// frame in pieces (frame.WriteJSON), so the document is never held whole: a million
// bars cost 32 KiB of buffer, not 60 MB of text.
func WriteBarsMetadata(w io.Writer, res seamless.Result, md []byte) error {
	f := res.Frame
	if f == nil {
		f = &frame.Frame{}
	}
	for _, b := range [][]byte{[]byte(`{"metadata":`), md, []byte(`,"data":`)} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	if err := f.WriteJSON(w); err != nil {
		return err
	}
	_, err := io.WriteString(w, "}\n")
	return err
}

// ArrowBatchRows is the size of the record batches of an Arrow response: small enough
// for a reader to start on the first batch while the rest streams, large enough that
// the per-batch framing is noise.
const ArrowBatchRows = 64 << 10

// WriteArrow writes the frame as an Arrow IPC stream whose schema metadata holds the
// metadata JSON md under ArrowMetadataKey, in record batches of ArrowBatchRows. The
// record shares the frame's memory; the frame outlives it.
func WriteArrow(w io.Writer, res seamless.Result, md []byte) error {
	meta := arrow.NewMetadata([]string{ArrowMetadataKey}, []string{string(md)})
	rec, err := res.Frame.ToArrow(memory.DefaultAllocator, &meta)
	if err != nil {
		return err
	}
	defer rec.Release()
	iw := ipc.NewWriter(w, ipc.WithSchema(rec.Schema()))
	n := rec.NumRows()
	if n <= ArrowBatchRows { // one batch: the record itself
		if err := iw.Write(rec); err != nil {
			iw.Close()
			return err
		}
		return iw.Close()
	}
	for i := int64(0); i < n; i += ArrowBatchRows {
		batch := rec.NewSlice(i, min(i+ArrowBatchRows, n))
		err := iw.Write(batch)
		batch.Release()
		if err != nil {
			iw.Close()
			return err
		}
	}
	return iw.Close()
}

// Coverage is the /v1/coverage document (as `seamless coverage --format json`).
type Coverage struct {
	NodeID   string       `json:"node_id"`
	Interval int64        `json:"interval"`
	Ranges   []grid.Range `json:"ranges"`
}

// NewCoverage builds the document of a coverage set; an empty set has ranges [].
func NewCoverage(nodeID string, interval int64, cov grid.Set) Coverage {
	rs := cov.Ranges()
	if rs == nil {
		rs = []grid.Range{}
	}
	return Coverage{NodeID: nodeID, Interval: interval, Ranges: rs}
}

// SeriesList is the /v1/series document.
type SeriesList struct {
	Series []seamless.SeriesInfo `json:"series"`
}

// BackfillRequest is the body of POST /v1/backfill. Start and End are epoch seconds or
// RFC 3339 strings.
type BackfillRequest struct {
	NodeID   string `json:"node_id"`
	Interval int64  `json:"interval"`
	Start    Time   `json:"start"`
	End      Time   `json:"end"`
}

// Time is an instant in epoch seconds that unmarshals from a JSON number or an RFC 3339
// (or decimal) string, and marshals as a number.
type Time int64

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	} else {
		s = string(b)
	}
	v, err := grid.ParseTime(s)
	if err != nil {
		return err
	}
	*t = Time(v)
	return nil
}

// JobAccepted is the 202 answer of POST /v1/backfill.
type JobAccepted struct {
	JobID string `json:"job_id"`
}

// Job states of a background backfill.
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
)

// JobList is the GET /v1/backfill document: the jobs still visible, newest first.
type JobList struct {
	Jobs []Job `json:"jobs"`
}

// Job is the /v1/backfill/{job_id} document.
type Job struct {
	JobID    string `json:"job_id"`
	State    string `json:"state"`
	NodeID   string `json:"node_id"`
	Interval int64  `json:"interval"`
	Start    int64  `json:"start"`
	End      int64  `json:"end"`
	// ChunksTotal is the number of missing chunks, known once the first chunk ends.
	ChunksDone   int          `json:"chunks_done"`
	ChunksTotal  int          `json:"chunks_total"`
	Bars         int          `json:"bars"`
	FailedChunks []grid.Range `json:"failed_chunks"`
	// Error is the job's failure, in the same form as an error response's body.
	Error      *ErrorBody `json:"error"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// Terminal reports whether the state is final.
func (j Job) Terminal() bool {
	return j.State == JobSucceeded || j.State == JobFailed || j.State == JobCancelled
}
