package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/artifact"
	"github.com/seamless-data/seamless/internal/csvio"
	"github.com/seamless-data/seamless/internal/server/admission"
	"github.com/seamless-data/seamless/internal/server/wire"
)

// bars serves GET /v1/bars.
func (s *Server) bars(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	format, err := negotiate(q.Get("format"), r.Header.Get("Accept"))
	if errors.Is(err, errNotAcceptable) {
		writeError(w, wire.NewError(wire.CodeNotAcceptable, "%v: Accept %q; use %s, %s, %s or %s, or the format parameter",
			err, r.Header.Get("Accept"), wire.MediaJSON, wire.MediaCSV, wire.MediaArrow, wire.MediaParquet))
		return
	}
	if err != nil {
		fail(w, err)
		return
	}
	q.Del("format")
	req, err := wire.DecodeRequest(q)
	if err != nil {
		fail(w, err)
		return
	}
	release, err := s.fetches.Acquire(r.Context())
	if err != nil {
		s.refuse(w, err)
		return
	}
	res, err := s.provider.Fetch(r.Context(), req)
	release()
	if err != nil {
		fail(w, err)
		return
	}
	// Every writer below is done with the frame when it returns.
	defer res.Release()
	// Writing holds a stream slot, not the fetch slot: a slow reader delays only the
	// answers queued behind it for a stream slot, never the fetches.
	releaseStream, err := s.barStreams.Acquire(r.Context())
	if err != nil {
		s.refuse(w, err)
		return
	}
	defer releaseStream()
	stall := &stallGuard{rc: http.NewResponseController(w), stall: s.cfg.StreamStallTimeout}
	stall.deadline, _ = r.Context().Deadline()
	md, err := res.Metadata.MarshalJSON() // direct: json.Marshal would re-validate it
	if err != nil {
		fail(w, err)
		return
	}
	// From here the status is sent: a failure can only cut the stream short, which
	// the client sees as a truncated body (the Arrow stream lacks its end marker, the
	// JSON document does not parse, the CSV has fewer rows than metadata.rows).
	switch format {
	case wire.FormatCSV:
		w.Header().Set("Content-Type", wire.MediaCSV+"; charset=utf-8")
		w.Header().Set(wire.MetadataHeader, string(md))
		err = buffered(w, stall, func(bw io.Writer) error { return csvio.Write(bw, res.Frame) })
	case wire.FormatArrow:
		w.Header().Set("Content-Type", wire.MediaArrow)
		// Buffered: the IPC writer emits each small message and buffer separately, and
		// unbuffered each would be its own chunk and syscall.
		err = buffered(w, stall, func(bw io.Writer) error { return wire.WriteArrow(bw, res, md) })
	case wire.FormatParquet:
		w.Header().Set("Content-Type", wire.MediaParquet)
		err = buffered(w, stall, func(bw io.Writer) error {
			return artifact.WriteParquet(bw, res.Frame, artifact.ParquetOptions{
				Codec: artifact.Zstd, Metadata: map[string]string{wire.ParquetMetadataKey: string(md)},
			})
		})
	default:
		w.Header().Set("Content-Type", wire.MediaJSON)
		err = buffered(w, stall, func(bw io.Writer) error { return wire.WriteBarsMetadata(bw, res, md) })
	}
	if err != nil {
		stalled := errors.Is(err, os.ErrDeadlineExceeded)
		s.metrics.answersCut.WithLabelValues(strconv.FormatBool(stalled)).Inc()
		s.cfg.Logger.Warn("seamless.http.stream_failed", "node_id", req.NodeID, "format", format, "stalled", stalled, "err", err)
	}
}

// refuse answers a request that admission did not let in: 429 when the server is
// saturated, else the context's error (the client went away, or the route's deadline
// passed while it waited).
func (s *Server) refuse(w http.ResponseWriter, err error) {
	var sat *admission.Saturated
	if errors.As(err, &sat) {
		writeError(w, wire.NewError(wire.CodeTooManyRequests, "%v", sat))
		return
	}
	fail(w, err)
}

// stallGuard bounds each write of an answer: before every write to the connection the
// write deadline moves to stall from now (never past the route's own deadline), so a
// reader that keeps reading is never cut off however slow the whole answer is, and one
// that stops is, within stall.
type stallGuard struct {
	rc       *http.ResponseController
	stall    time.Duration
	deadline time.Time // the route's deadline; zero if none
}

func (g *stallGuard) arm() {
	if g == nil {
		return
	}
	d := time.Now().Add(g.stall)
	if !g.deadline.IsZero() && g.deadline.Before(d) {
		d = g.deadline
	}
	// Not every ResponseWriter supports deadlines (httptest's recorder does not).
	_ = g.rc.SetWriteDeadline(d)
}

// writers pools the 64 KiB response buffers: allocating one per request was a large
// share of the garbage of small, frequent requests.
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// buffered runs write against a pooled buffer in front of w. A response that fits in the
// buffer goes out with a Content-Length in one write (no chunked framing, no separate
// terminating chunk); a larger one streams in chunks as the buffer fills.
func buffered(w http.ResponseWriter, stall *stallGuard, write func(io.Writer) error) error {
	bw := writers.Get().(*bufio.Writer)
	dst := &sink{w: w, stall: stall}
	bw.Reset(dst)
	defer func() {
		bw.Reset(nil)
		writers.Put(bw)
	}()
	if err := write(bw); err != nil {
		return err
	}
	if !dst.wrote {
		w.Header().Set("Content-Length", strconv.Itoa(bw.Buffered()))
	}
	return bw.Flush()
}

// sink is the pooled buffer's destination; it records whether the buffer has spilled.
type sink struct {
	w     io.Writer
	stall *stallGuard
	wrote bool
}

func (s *sink) Write(p []byte) (int, error) {
	s.wrote = true
	s.stall.arm()
	return s.w.Write(p)
}

// formatOfMedia maps Accept media types to formats.
var formatOfMedia = map[string]string{
	wire.MediaJSON:    wire.FormatJSON,
	wire.MediaCSV:     wire.FormatCSV,
	wire.MediaArrow:   wire.FormatArrow,
	wire.MediaParquet: wire.FormatParquet,
	"*/*":             wire.FormatJSON,
	"application/*":   wire.FormatJSON,
	"text/*":          wire.FormatCSV,
}

var errNotAcceptable = errors.New("no supported media type accepted")

// negotiate picks the response format: the format parameter if given, else the
// Accept header's most preferred supported type, else JSON.
func negotiate(param, accept string) (string, error) {
	if param != "" {
		if param != wire.FormatJSON && param != wire.FormatCSV && param != wire.FormatArrow && param != wire.FormatParquet {
			return "", &seamless.RequestError{Field: "format", Message: fmt.Sprintf("unknown format %q (want json, csv, arrow or parquet)", param)}
		}
		return param, nil
	}
	if strings.TrimSpace(accept) == "" {
		return wire.FormatJSON, nil
	}
	type choice struct {
		format string
		q      float64
	}
	var choices []choice
	for _, part := range strings.Split(accept, ",") {
		media, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(v, 64); err != nil {
				continue
			}
		}
		if f, ok := formatOfMedia[media]; ok && q > 0 {
			choices = append(choices, choice{f, q})
		}
	}
	if len(choices) == 0 {
		return "", errNotAcceptable
	}
	// Stable: among equal q values the first listed wins.
	slices.SortStableFunc(choices, func(a, b choice) int {
		switch {
		case a.q > b.q:
			return -1
		case a.q < b.q:
			return 1
		}
		return 0
	})
	return choices[0].format, nil
}
