package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// The streaming protocol of GET /v1/stream (docs/api.md, Streaming): events as JSON
// objects (WebSocket text messages, SSE data lines), bars optionally as Arrow IPC
// streams (WebSocket binary messages), and the client's WebSocket commands.

// Media and protocol names of /v1/stream.
const (
	MediaEventStream = "text/event-stream"
	// Subprotocol is the WebSocket subprotocol of the stream protocol; a browser
	// offers it beside bearer.<token> (BearerPrefix) to authenticate.
	Subprotocol  = "seamless.v1"
	BearerPrefix = "bearer."
	// ArrowEventKey is the Arrow schema metadata key holding a binary bars message's
	// event envelope (the JSON event without data).
	ArrowEventKey = "seamless.event"
)

// StreamEvent is the JSON form of a subscription event (seamless.StreamEvent).
type StreamEvent struct {
	Type     seamless.StreamEventType `json:"type"`
	NodeID   string                   `json:"node_id,omitempty"`
	Interval int64                    `json:"interval,omitempty"`
	Cursor   string                   `json:"cursor,omitempty"`
	Origin   string                   `json:"origin,omitempty"`
	Rows     *int                     `json:"rows,omitempty"`
	NextTS   *int64                   `json:"next_ts,omitempty"`
	Range    *grid.Range              `json:"range,omitempty"`
	Error    *ErrorBody               `json:"error,omitempty"`
	Reason   string                   `json:"reason,omitempty"`
	// TimeMS is when the server made the event, epoch milliseconds.
	TimeMS   int64              `json:"time_ms"`
	Metadata *seamless.Metadata `json:"metadata,omitempty"`
	// Data holds the columns of bars and forming events, as in a bars document.
	Data json.RawMessage `json:"data,omitempty"`
}

// NewStreamEvent is the wire form of ev; withData false leaves the frame out (the
// envelope of an Arrow message).
func NewStreamEvent(ev seamless.StreamEvent, withData bool) (StreamEvent, error) {
	out := StreamEvent{Type: ev.Type, NodeID: ev.NodeID, Interval: ev.Interval, Cursor: ev.Cursor, Origin: ev.Origin,
		Reason: ev.Reason, TimeMS: ev.Time.UnixMilli(), Metadata: ev.Metadata}
	switch ev.Type {
	case seamless.EventCaughtUp:
		out.NextTS = &ev.NextTS
	case seamless.EventGap:
		out.Range = &ev.Range
	case seamless.EventError:
		body := EncodeError(ev.Err)
		out.Error = &body
	}
	if ev.Frame != nil && (ev.Type == seamless.EventBars || ev.Type == seamless.EventForming) {
		n := ev.Frame.Len()
		out.Rows = &n
		if withData {
			data, err := ev.Frame.MarshalJSON()
			if err != nil {
				return out, err
			}
			out.Data = data
		}
	}
	return out, nil
}

// MarshalStreamEvent is the JSON text of ev (one line, no trailing newline).
func MarshalStreamEvent(ev seamless.StreamEvent) ([]byte, error) {
	w, err := NewStreamEvent(ev, true)
	if err != nil {
		return nil, err
	}
	return json.Marshal(w)
}

// Event rebuilds the library's event. The error of an error event is the library's
// typed error where it has one, else nil (Error holds the body: see ErrorBody).
func (w StreamEvent) Event() (seamless.StreamEvent, error) {
	ev := seamless.StreamEvent{Type: w.Type, NodeID: w.NodeID, Interval: w.Interval, Cursor: w.Cursor, Origin: w.Origin,
		Reason: w.Reason, Metadata: w.Metadata, Time: time.UnixMilli(w.TimeMS)}
	if w.NextTS != nil {
		ev.NextTS = *w.NextTS
	}
	if w.Range != nil {
		ev.Range = *w.Range
	}
	if w.Error != nil {
		ev.Err = w.Error.LibraryErr()
	}
	if len(w.Data) > 0 {
		f, err := decodeColumns(w.Data, schemaOf(w.NodeID))
		if err != nil {
			return ev, fmt.Errorf("%s event: %w", w.Type, err)
		}
		ev.Frame = f
	}
	return ev, nil
}

func schemaOf(nodeID string) *frame.Schema {
	if node, err := seamless.ParseNodeID(nodeID); err == nil {
		if s, ok := node.Schema(); ok {
			return &s
		}
	}
	return nil
}

// WriteArrowEvent writes a bars event as one Arrow IPC stream: the schema's metadata
// holds the envelope (ArrowEventKey), one record batch the bars. A message is
// self-contained, so a reader can decode any one alone.
func WriteArrowEvent(w io.Writer, ev seamless.StreamEvent) error {
	env, err := NewStreamEvent(ev, false)
	if err != nil {
		return err
	}
	head, err := json.Marshal(env)
	if err != nil {
		return err
	}
	meta := arrow.NewMetadata([]string{ArrowEventKey}, []string{string(head)})
	rec, err := ev.Frame.ToArrow(memory.DefaultAllocator, &meta)
	if err != nil {
		return err
	}
	defer rec.Release()
	iw := ipc.NewWriter(w, ipc.WithSchema(rec.Schema()))
	if err := iw.Write(rec); err != nil {
		iw.Close()
		return err
	}
	return iw.Close()
}

// ReadArrowEvent decodes a message written by WriteArrowEvent. The frame shares the
// message's memory.
func ReadArrowEvent(msg []byte) (StreamEvent, *frame.Frame, error) {
	var env StreamEvent
	rdr, err := ipc.NewReader(bytes.NewReader(msg), ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		return env, nil, fmt.Errorf("arrow event: %w", err)
	}
	defer rdr.Release()
	head, ok := rdr.Schema().Metadata().GetValue(ArrowEventKey)
	if !ok {
		return env, nil, fmt.Errorf("arrow event: schema metadata lacks %q", ArrowEventKey)
	}
	if err := json.Unmarshal([]byte(head), &env); err != nil {
		return env, nil, fmt.Errorf("arrow event: %s: %w", ArrowEventKey, err)
	}
	var f *frame.Frame
	for rdr.Next() {
		part, err := frame.FromArrow(rdr.RecordBatch())
		if err != nil {
			return env, nil, fmt.Errorf("arrow event: %w", err)
		}
		if f == nil {
			f = part
		} else {
			f.AppendRows(part, 0, part.Len())
		}
	}
	if err := rdr.Err(); err != nil {
		return env, nil, fmt.Errorf("arrow event: %w", err)
	}
	if f == nil {
		b := array.NewRecordBuilder(memory.DefaultAllocator, rdr.Schema())
		rec := b.NewRecordBatch()
		b.Release()
		defer rec.Release()
		if f, err = frame.FromArrow(rec); err != nil {
			return env, nil, fmt.Errorf("arrow event: %w", err)
		}
		f = f.Clone()
	}
	if env.Rows != nil && *env.Rows != f.Len() {
		return env, nil, fmt.Errorf("arrow event: truncated: %d of %d rows", f.Len(), *env.Rows)
	}
	return env, f, nil
}

// Stream parameters besides the Request parameters a subscription shares with Fetch.
const (
	paramCursor  = "cursor"
	paramFormat  = "format"
	paramForming = "forming"
)

// subscribeShared are the parameters of /v1/bars a subscription takes as they are.
var subscribeShared = func() []param {
	var out []param
	for _, p := range requestParams {
		switch p.name {
		case "node_id", "interval", "start", "strategy", "partial_ok", "sla", "max_wait_storage_ms", "max_wait_backfill_ms",
			"max_wait_live_ms", "total_deadline_ms", "max_sync_gap_bars", "on_violation", "min_coverage",
			"max_lag_seconds", "conformance":
			p.required = false
			out = append(out, p)
		}
	}
	return out
}()

// DecodeSubscribe reads a subscription from query parameters (or a subscribe
// command's fields): node_id, interval, start, cursor, forming and the Fetch options
// (strategy, partial_ok, SLA, conformance). It also returns format (json, arrow, or
// "" when absent). Unknown, repeated and malformed parameters are a
// *seamless.RequestError naming the parameter; node_id is required unless
// optionalSeries, and then absent means no subscription (NodeID "").
func DecodeSubscribe(q url.Values, optionalSeries bool) (seamless.SubscribeRequest, string, error) {
	var sub seamless.SubscribeRequest
	if err := checkParams(q, subscribeShared, []string{paramCursor, paramFormat, paramForming}); err != nil {
		return sub, "", err
	}
	format := q.Get(paramFormat)
	if format != "" && format != FormatJSON && format != FormatArrow {
		return sub, "", &seamless.RequestError{Field: paramFormat, Message: fmt.Sprintf("unknown format %q (want json or arrow)", format)}
	}
	if !q.Has("node_id") {
		others := len(q)
		if q.Has(paramFormat) {
			others--
		}
		if !optionalSeries || others > 0 {
			return sub, "", &seamless.RequestError{Field: "node_id", Message: "required"}
		}
		return sub, format, nil
	}
	var req seamless.Request
	for _, p := range subscribeShared {
		if v, ok := q[p.name]; ok {
			if err := p.decode(&req, v[0]); err != nil {
				return sub, "", &seamless.RequestError{Field: p.name, Message: err.Error()}
			}
		}
	}
	sub = seamless.SubscribeRequest{NodeID: req.NodeID, Interval: req.Interval, Start: req.Start, Cursor: q.Get(paramCursor),
		Strategy: req.Strategy, PartialOK: req.PartialOK, SLA: req.SLA, MinCoverage: req.MinCoverage,
		MaxLagSeconds: req.MaxLagSeconds, Conformance: req.Conformance}
	if v := q.Get(paramForming); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return sub, "", &seamless.RequestError{Field: paramForming, Message: fmt.Sprintf("%q is not a boolean (true or false)", v)}
		}
		sub.Forming = b
	}
	return sub, format, nil
}

// EncodeSubscribe is the inverse of DecodeSubscribe.
func EncodeSubscribe(sub seamless.SubscribeRequest, format string) url.Values {
	req := seamless.Request{NodeID: sub.NodeID, Interval: sub.Interval, Start: sub.Start, Strategy: sub.Strategy,
		PartialOK: sub.PartialOK, SLA: sub.SLA, MinCoverage: sub.MinCoverage, MaxLagSeconds: sub.MaxLagSeconds,
		Conformance: sub.Conformance}
	q := url.Values{}
	for _, p := range subscribeShared {
		if v, ok := p.encode(req); ok && !(p.name == "start" && sub.Start == 0) && !(p.name == "interval" && sub.Interval == 0) {
			q.Set(p.name, v)
		}
	}
	if sub.Cursor != "" {
		q.Set(paramCursor, sub.Cursor)
	}
	if sub.Forming {
		q.Set(paramForming, "true")
	}
	if format != "" {
		q.Set(paramFormat, format)
	}
	return q
}

// Commands a WebSocket client sends.
const (
	CommandAuth        = "auth"
	CommandSubscribe   = "subscribe"
	CommandUnsubscribe = "unsubscribe"
)

// Command is a client's WebSocket message: {"type":"auth","token":…},
// {"type":"subscribe", node_id, interval, start, cursor, …} (the parameters of
// DecodeSubscribe as JSON fields: strings, numbers or booleans) or
// {"type":"unsubscribe", node_id, interval}.
type Command struct {
	Type  string
	Token string
	// Subscribe is the subscription of a subscribe or unsubscribe command.
	Subscribe seamless.SubscribeRequest
}

// DecodeCommand reads one client message. Malformed ones are *seamless.RequestError.
func DecodeCommand(msg []byte) (Command, error) {
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.UseNumber()
	if err := dec.Decode(&fields); err != nil {
		return Command{}, &seamless.RequestError{Field: "message", Message: fmt.Sprintf("want a JSON object with a type: %v", err)}
	}
	var cmd Command
	if err := json.Unmarshal(fields["type"], &cmd.Type); err != nil {
		return Command{}, &seamless.RequestError{Field: "type", Message: "want auth, subscribe or unsubscribe"}
	}
	delete(fields, "type")
	switch cmd.Type {
	case CommandAuth:
		if err := json.Unmarshal(fields["token"], &cmd.Token); err != nil || cmd.Token == "" || len(fields) != 1 {
			return Command{}, &seamless.RequestError{Field: "token", Message: `an auth message is {"type":"auth","token":"…"}`}
		}
		return cmd, nil
	case CommandSubscribe, CommandUnsubscribe:
	default:
		return Command{}, &seamless.RequestError{Field: "type", Message: fmt.Sprintf("unknown message type %q (want auth, subscribe or unsubscribe)", cmd.Type)}
	}
	q := url.Values{}
	for k, raw := range fields {
		v, err := scalar(raw)
		if err != nil {
			return Command{}, &seamless.RequestError{Field: k, Message: err.Error()}
		}
		q.Set(k, v)
	}
	if cmd.Type == CommandUnsubscribe {
		for k := range q {
			if k != "node_id" && k != "interval" {
				return Command{}, &seamless.RequestError{Field: k, Message: "an unsubscribe message names only node_id and interval"}
			}
		}
	}
	if q.Has(paramFormat) {
		return Command{}, &seamless.RequestError{Field: paramFormat, Message: "the format is the connection's (the URL's format parameter)"}
	}
	sub, _, err := DecodeSubscribe(q, false)
	if err != nil {
		return Command{}, err
	}
	cmd.Subscribe = sub
	return cmd, nil
}

// scalar is the parameter text of a JSON string, number or boolean.
func scalar(raw json.RawMessage) (string, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	return "", errors.New("want a string, number or boolean")
}

// EncodeCommand is the JSON of a subscribe or unsubscribe command (the client's).
func EncodeCommand(typ string, sub seamless.SubscribeRequest) ([]byte, error) {
	q := EncodeSubscribe(sub, "")
	if typ == CommandUnsubscribe {
		q = url.Values{"node_id": {sub.NodeID}}
		if sub.Interval != 0 {
			q.Set("interval", strconv.FormatInt(sub.Interval, 10))
		}
	}
	fields := map[string]string{"type": typ}
	for k := range q {
		fields[k] = q.Get(k)
	}
	return json.Marshal(fields)
}
