// Package jsonhttp sends the JSON requests of the project's small API clients (the
// lease API's and the schema registry's): the request building and bounded reading
// they share, leaving each client its own mapping of statuses to typed errors.
package jsonhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// Request is one JSON call.
type Request struct {
	Method, URL string
	// Body, when non-nil, is sent encoded as JSON.
	Body any
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// Limit bounds how much of the answer is read; a longer one is an error.
	Limit int64
}

// Do sends r with hc and returns the answer's status and body. Only a failure to send
// or read is an error; any status is returned for the caller to judge.
func Do(ctx context.Context, hc *http.Client, r Request) (int, []byte, error) {
	var rd io.Reader
	if r.Body != nil {
		b, err := json.Marshal(r.Body)
		if err != nil {
			return 0, nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if r.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, r.Limit+1))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if int64(len(data)) > r.Limit {
		return resp.StatusCode, nil, fmt.Errorf("answer over %d bytes", r.Limit)
	}
	return resp.StatusCode, data, nil
}
