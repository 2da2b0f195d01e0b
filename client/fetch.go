package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/internal/server/wire"
)

// Fetch answers a request through the server's /v1/bars, as Provider.Fetch does
// locally: same frame, same metadata, same typed errors.
func (c *Client) Fetch(ctx context.Context, req seamless.Request) (seamless.Result, error) {
	q := wire.EncodeRequest(req)
	q.Set("format", string(c.format))
	accept := wire.MediaArrow
	if c.format == JSON {
		accept = wire.MediaJSON
	}
	resp, err := c.do(ctx, http.MethodGet, "/v1/bars", q, nil, accept, http.StatusOK)
	if err != nil {
		return seamless.Result{}, err
	}
	defer resp.Body.Close()
	var res seamless.Result
	if c.format == JSON {
		res, err = wire.ReadBars(resp.Body)
	} else {
		res, err = readArrow(resp.Body)
	}
	if err != nil {
		if ctx.Err() != nil {
			return seamless.Result{}, ctx.Err()
		}
		return seamless.Result{}, fmt.Errorf("seamless client: %s: %w", req, err)
	}
	return res, nil
}

// readArrow decodes an Arrow IPC stream of record batches into one frame.
func readArrow(body io.Reader) (seamless.Result, error) {
	rdr, err := ipc.NewReader(body, ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		return seamless.Result{}, fmt.Errorf("arrow stream: %w", err)
	}
	defer rdr.Release()
	var res seamless.Result
	raw, ok := rdr.Schema().Metadata().GetValue(wire.ArrowMetadataKey)
	if !ok {
		return res, fmt.Errorf("arrow stream: schema metadata lacks %q", wire.ArrowMetadataKey)
	}
	if err := json.Unmarshal([]byte(raw), &res.Metadata); err != nil {
		return res, fmt.Errorf("arrow stream: %s: %w", wire.ArrowMetadataKey, err)
	}
	// A single batch (any answer up to 64 Ki rows) becomes the frame without a copy:
	// the Go allocator's buffers are ordinary garbage-collected memory that the reader
	// never reuses, so the frame may keep referring to them after Release. Further
	// batches are appended into a frame sized from metadata.rows.
	var first *frame.Frame
	for rdr.Next() {
		part, err := frame.FromArrow(rdr.RecordBatch())
		if err != nil {
			return res, fmt.Errorf("arrow stream: %w", err)
		}
		switch {
		case first == nil && res.Frame == nil:
			first = part
			continue
		case res.Frame == nil:
			res.Frame = frame.New(first.Schema(), res.Metadata.Rows)
			res.Frame.AppendRows(first, 0, first.Len())
		}
		res.Frame.AppendRows(part, 0, part.Len())
	}
	if res.Frame == nil && first != nil {
		res.Frame = first
	}
	if err := rdr.Err(); err != nil {
		return res, fmt.Errorf("arrow stream: %w", err)
	}
	if res.Frame == nil {
		// A stream of no batches still has a schema: an empty frame with its columns.
		b := array.NewRecordBuilder(memory.DefaultAllocator, rdr.Schema())
		rec := b.NewRecordBatch()
		b.Release()
		defer rec.Release()
		f, err := frame.FromArrow(rec)
		if err != nil {
			return res, fmt.Errorf("arrow stream: %w", err)
		}
		res.Frame = f.Clone()
	}
	if got := res.Frame.Len(); got != res.Metadata.Rows {
		return res, fmt.Errorf("arrow stream: truncated: %d of %d rows", got, res.Metadata.Rows)
	}
	return res, nil
}
