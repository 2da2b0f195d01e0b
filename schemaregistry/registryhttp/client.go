package registryhttp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/seamless-data/seamless/internal/jsonhttp"
	sr "github.com/seamless-data/seamless/schemaregistry"
)

// Client talks to a registry served by New. Its methods mirror *schemaregistry.Registry
// so the CLI drives either the same way.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client of the server at baseURL; token, if non-empty, is sent
// as a bearer token.
func NewClient(baseURL, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &sr.RequestError{Message: fmt.Sprintf("server URL %q: want http(s)://host[:port]", baseURL)}
	}
	if hc == nil {
		hc = &http.Client{Timeout: time.Minute}
	}
	return &Client{base: trimSlash(baseURL), token: token, http: hc}, nil
}

// Error is a failed request: the server's error code and message. schemaregistry.ErrorCode
// reads Code, and errors.Is(err, schemaregistry.ErrNotFound) holds for not_found.
type Error struct {
	Status   int
	ErrCode  string
	Message  string
	Messages []string
}

func (e *Error) Error() string { return e.Message }

// Code is the server's error code.
func (e *Error) Code() string { return e.ErrCode }

// Is matches schemaregistry.ErrNotFound for not_found errors.
func (e *Error) Is(target error) bool {
	return target == sr.ErrNotFound && e.ErrCode == sr.CodeNotFound
}

func seg(s string) string { return url.PathEscape(s) }

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	status, data, err := jsonhttp.Do(ctx, c.http, jsonhttp.Request{Method: method, URL: c.base + path, Body: body, Token: c.token, Limit: 64 << 20})
	if err != nil {
		return fmt.Errorf("schema registry %s: %w", c.base, err)
	}
	if status/100 != 2 {
		var eb ErrorBody
		e := &Error{Status: status, ErrCode: sr.CodeInternal, Message: fmt.Sprintf("%s %s: HTTP %d", method, path, status)}
		if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
			e.ErrCode, e.Message, e.Messages = eb.Error.Code, eb.Error.Message, eb.Error.Messages
		} else if status == http.StatusUnauthorized {
			e.ErrCode = "unauthorized"
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("schema registry %s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// Register registers s under subject.
func (c *Client) Register(ctx context.Context, subject string, s sr.Schema) (sr.Registered, error) {
	var out RegisterResponse
	err := c.do(ctx, http.MethodPost, "/subjects/"+seg(subject)+"/versions", map[string]string{"schema": string(s.Canonical())}, &out)
	return sr.Registered{Subject: subject, ID: out.ID, Version: out.Version, Fingerprint: out.Fingerprint, Existing: out.Existing}, err
}

// Subjects lists the subjects.
func (c *Client) Subjects(ctx context.Context) ([]string, error) {
	var out []string
	err := c.do(ctx, http.MethodGet, "/subjects", nil, &out)
	return out, err
}

// Versions lists a subject's versions.
func (c *Client) Versions(ctx context.Context, subject string) ([]int, error) {
	var out []int
	err := c.do(ctx, http.MethodGet, "/subjects/"+seg(subject)+"/versions", nil, &out)
	return out, err
}

// Version returns version v of subject (-1: the latest).
func (c *Client) Version(ctx context.Context, subject string, v int) (sr.SubjectVersion, error) {
	ver := "latest"
	if v != -1 {
		ver = strconv.Itoa(v)
	}
	var out VersionResponse
	if err := c.do(ctx, http.MethodGet, "/subjects/"+seg(subject)+"/versions/"+ver, nil, &out); err != nil {
		return sr.SubjectVersion{}, err
	}
	s, err := sr.Parse([]byte(out.Schema))
	return sr.SubjectVersion{Subject: out.Subject, Version: out.Version, ID: out.ID, Schema: s}, err
}

// SchemaByID returns the schema with a global id.
func (c *Client) SchemaByID(ctx context.Context, id int64) (sr.Schema, error) {
	var out SchemaResponse
	if err := c.do(ctx, http.MethodGet, "/schemas/ids/"+strconv.FormatInt(id, 10), nil, &out); err != nil {
		return sr.Schema{}, err
	}
	return sr.Parse([]byte(out.Schema))
}

// CheckCompatibility returns the incompatibilities of s with subject's versions.
func (c *Client) CheckCompatibility(ctx context.Context, subject string, s sr.Schema) ([]string, error) {
	var out CompatibilityResponse
	err := c.do(ctx, http.MethodPost, "/compatibility/subjects/"+seg(subject)+"/versions/latest?verbose=true",
		map[string]string{"schema": string(s.Canonical())}, &out)
	if err == nil && !out.IsCompatible && len(out.Messages) == 0 {
		out.Messages = []string{"incompatible (the server gave no reason)"}
	}
	return out.Messages, err
}

// Compatibility returns subject's level.
func (c *Client) Compatibility(ctx context.Context, subject string) (sr.Level, error) {
	var out ConfigBody
	err := c.do(ctx, http.MethodGet, "/config/"+seg(subject), nil, &out)
	return out.Compatibility, err
}

// SetCompatibility sets subject's level.
func (c *Client) SetCompatibility(ctx context.Context, subject string, level sr.Level) (*sr.Record, error) {
	var out ConfigBody
	err := c.do(ctx, http.MethodPut, "/config/"+seg(subject), ConfigBody{Compatibility: level}, &out)
	return out.Record, err
}

// Status returns subject's mode and canary evidence.
func (c *Client) Status(ctx context.Context, subject string) (sr.Status, error) {
	var out sr.Status
	err := c.do(ctx, http.MethodGet, "/v1/schema/mode/"+seg(subject), nil, &out)
	return out, err
}

// SetMode promotes (strict) or demotes (canary) subject.
func (c *Client) SetMode(ctx context.Context, subject string, mode sr.Mode, req sr.PromoteRequest) (*sr.Record, error) {
	var out ModeResponse
	err := c.do(ctx, http.MethodPut, "/v1/schema/mode/"+seg(subject),
		ModeRequest{Mode: mode, Force: req.Force, Reason: req.Reason, BundleFingerprint: req.Bundle}, &out)
	return out.Record, err
}

// Promote moves subject from canary to strict.
func (c *Client) Promote(ctx context.Context, subject string, req sr.PromoteRequest) (*sr.Record, error) {
	var out ModeResponse
	err := c.do(ctx, http.MethodPost, "/v1/schema/promote/"+seg(subject),
		ModeRequest{Force: req.Force, Reason: req.Reason, BundleFingerprint: req.Bundle}, &out)
	return out.Record, err
}

// Audit returns the audit records q selects.
func (c *Client) Audit(ctx context.Context, q sr.AuditQuery) ([]sr.Record, error) {
	v := url.Values{}
	for k, s := range map[string]string{"subject": q.Subject, "action": string(q.Action), "actor": q.Actor} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/v1/schema/audit"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out AuditResponse
	err := c.do(ctx, http.MethodGet, path, nil, &out)
	return out.Records, err
}

// VerifyAudit asks the server to verify its audit chain; a break is a
// *schemaregistry.ChainError.
func (c *Client) VerifyAudit(ctx context.Context) (int, error) {
	var out VerifyResponse
	if err := c.do(ctx, http.MethodGet, "/v1/schema/audit/verify", nil, &out); err != nil {
		return 0, err
	}
	if !out.OK {
		return out.Records, &sr.ChainError{Seq: out.BrokenAt, Reason: out.Error}
	}
	return out.Records, nil
}
