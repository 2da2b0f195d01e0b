package leaseapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/internal/jsonhttp"
)

// Client is a seamless.Coordinator backed by a remote lease API.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client of the lease API at base (http://host:port).
func NewClient(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	return &Client{base: strings.TrimSuffix(base, "/"), http: hc}
}

var _ seamless.Coordinator = (*Client)(nil)

// wireError is an error answer of the API.
type wireError struct {
	Error struct{ Code, Message string } `json:"error"`
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	status, b, err := jsonhttp.Do(ctx, c.http, jsonhttp.Request{Method: method, URL: c.base + path, Body: body, Limit: 1 << 20})
	if err != nil {
		return fmt.Errorf("lease API %s: %w", path, err)
	}
	if status != http.StatusOK {
		var we wireError
		json.Unmarshal(b, &we)
		switch {
		case status == http.StatusConflict && we.Error.Code == "lease_lost":
			return fmt.Errorf("lease API %s: %w: %s", path, seamless.ErrLeaseLost, we.Error.Message)
		case status == http.StatusConflict || status == http.StatusNotFound:
			// 404 and 409 both mean "held elsewhere" in the reference protocol.
			return fmt.Errorf("lease API %s: %w: %s", path, seamless.ErrLeaseHeld, we.Error.Message)
		}
		return fmt.Errorf("lease API %s: HTTP %d %s: %s", path, status, we.Error.Code, we.Error.Message)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("lease API %s: %w", path, err)
		}
	}
	return nil
}

func lease(w WireLease) seamless.Lease {
	return seamless.Lease{Key: w.Key, Token: uint64(w.Token), LeaseUntilMS: w.LeaseUntilMS}
}

// Claim implements seamless.Coordinator.
func (c *Client) Claim(ctx context.Context, key string, ttl time.Duration) (seamless.Lease, error) {
	var out claimResp
	if err := c.do(ctx, http.MethodPost, "/v1/leases/claim", claimReq{Key: key, LeaseMS: ttl.Milliseconds()}, &out); err != nil {
		return seamless.Lease{}, err
	}
	return lease(out.Lease), nil
}

// Renew implements seamless.Coordinator.
func (c *Client) Renew(ctx context.Context, l seamless.Lease, ttl time.Duration) (seamless.Lease, error) {
	var out claimResp
	if err := c.do(ctx, http.MethodPost, "/v1/leases/renew", claimReq{Key: l.Key, Token: Token(l.Token), LeaseMS: ttl.Milliseconds()}, &out); err != nil {
		return seamless.Lease{}, err
	}
	return lease(out.Lease), nil
}

// Complete implements seamless.Coordinator.
func (c *Client) Complete(ctx context.Context, l seamless.Lease) error {
	return c.do(ctx, http.MethodPost, "/v1/leases/complete", claimReq{Key: l.Key, Token: Token(l.Token)}, nil)
}

// Fail implements seamless.Coordinator.
func (c *Client) Fail(ctx context.Context, l seamless.Lease, reason string) error {
	return c.do(ctx, http.MethodPost, "/v1/leases/fail", claimReq{Key: l.Key, Token: Token(l.Token), Reason: reason}, nil)
}

// Wait implements seamless.Coordinator by long-polling until the key is free.
func (c *Client) Wait(ctx context.Context, key string) error {
	for {
		var out struct {
			Free bool `json:"free"`
		}
		path := "/v1/leases/wait?key=" + url.QueryEscape(key) + "&timeout_ms=" + strconv.Itoa(int(maxWait/time.Millisecond))
		if err := c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if out.Free {
			return nil
		}
	}
}

// Inspect implements seamless.Coordinator.
func (c *Client) Inspect(ctx context.Context) ([]seamless.LeaseInfo, error) {
	var out struct {
		Leases []LeaseView `json:"leases"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/leases", nil, &out); err != nil {
		return nil, err
	}
	infos := make([]seamless.LeaseInfo, len(out.Leases))
	for i, v := range out.Leases {
		infos[i] = seamless.LeaseInfo{Lease: seamless.Lease{Key: v.Key, Token: uint64(v.Token), LeaseUntilMS: v.LeaseUntilMS}, Holder: v.Holder}
	}
	return infos, nil
}

// Release asks the server to free a held lease (operator action).
func (c *Client) Release(ctx context.Context, key string) error {
	return c.do(ctx, http.MethodPost, "/v1/leases/release", claimReq{Key: key}, nil)
}
