package wire

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/grid"
)

// param is one query parameter of /v1/bars mapped to a seamless.Request field: decode
// sets the field from the parameter's value, encode gives the value to send (ok false:
// leave the parameter out). A new Request field is one more entry in requestParams.
type param struct {
	name     string
	required bool
	decode   func(*seamless.Request, string) error
	encode   func(seamless.Request) (string, bool)
}

var requestParams = []param{
	{
		name: "node_id", required: true,
		decode: func(r *seamless.Request, v string) error { r.NodeID = v; return nil },
		encode: func(r seamless.Request) (string, bool) { return r.NodeID, true },
	},
	{
		name: "interval", required: true,
		decode: func(r *seamless.Request, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("%q is not a whole number of seconds", v)
			}
			r.Interval = n
			return nil
		},
		encode: func(r seamless.Request) (string, bool) { return strconv.FormatInt(r.Interval, 10), true },
	},
	{
		name: "start", required: true,
		decode: func(r *seamless.Request, v string) (err error) { r.Start, err = grid.ParseTime(v); return err },
		encode: func(r seamless.Request) (string, bool) { return strconv.FormatInt(r.Start, 10), true },
	},
	{
		name: "end", required: true,
		decode: func(r *seamless.Request, v string) (err error) { r.End, err = grid.ParseTime(v); return err },
		encode: func(r seamless.Request) (string, bool) { return strconv.FormatInt(r.End, 10), true },
	},
	{
		name: "strategy",
		decode: func(r *seamless.Request, v string) (err error) {
			r.Strategy, err = seamless.ParseStrategy(v)
			if err != nil {
				return fmt.Errorf("unknown strategy %q (want seamless, fail_fast, auto_backfill or partial_fill)", v)
			}
			return nil
		},
		encode: func(r seamless.Request) (string, bool) { return string(r.Strategy), r.Strategy != "" },
	},
	{
		name: "partial_ok",
		decode: func(r *seamless.Request, v string) (err error) {
			r.PartialOK, err = strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%q is not a boolean (true or false)", v)
			}
			return nil
		},
		encode: func(r seamless.Request) (string, bool) { return "true", r.PartialOK },
	},
	{
		// A preset name; the budget parameters below override its fields.
		name: "sla",
		decode: func(r *seamless.Request, v string) error {
			if v == "none" {
				return nil
			}
			p, err := seamless.SLAPreset(v)
			if err != nil {
				return fmt.Errorf("unknown SLA preset %q (want one of %s, or none)", v, strings.Join(seamless.SLAPresetNames(), ", "))
			}
			r.SLA = &p
			return nil
		},
		// The client sends the policy's fields, not a preset name, so that the server
		// applies exactly the caller's policy.
		encode: func(seamless.Request) (string, bool) { return "", false },
	},
	slaInt("max_wait_storage_ms", func(p *seamless.SLAPolicy) *int64 { return &p.MaxWaitStorageMS }),
	slaInt("max_wait_backfill_ms", func(p *seamless.SLAPolicy) *int64 { return &p.MaxWaitBackfillMS }),
	slaInt("max_wait_live_ms", func(p *seamless.SLAPolicy) *int64 { return &p.MaxWaitLiveMS }),
	slaInt("total_deadline_ms", func(p *seamless.SLAPolicy) *int64 { return &p.TotalDeadlineMS }),
	slaInt("max_sync_gap_bars", func(p *seamless.SLAPolicy) *int64 { return &p.MaxSyncGapBars }),
	{
		name: "on_violation",
		decode: func(r *seamless.Request, v string) error {
			mode, err := seamless.ParseOnViolation(v)
			if err != nil {
				return err
			}
			policy(r).OnViolation = mode
			return nil
		},
		encode: func(r seamless.Request) (string, bool) {
			if r.SLA == nil {
				return "", false
			}
			return string(r.SLA.OnViolation), r.SLA.OnViolation != ""
		},
	},
	// min_coverage and max_lag_seconds are the request's overrides of the policy's
	// values; a policy's own values travel in them too (the effect is the same).
	{
		name:   "min_coverage",
		decode: func(r *seamless.Request, v string) (err error) { r.MinCoverage, err = parseFloat(v); return err },
		encode: func(r seamless.Request) (string, bool) {
			return formatFloat(override(r.MinCoverage, r.SLA, func(p *seamless.SLAPolicy) float64 { return p.MinCoverage }))
		},
	},
	{
		name:   "max_lag_seconds",
		decode: func(r *seamless.Request, v string) (err error) { r.MaxLagSeconds, err = parseFloat(v); return err },
		encode: func(r seamless.Request) (string, bool) {
			return formatFloat(override(r.MaxLagSeconds, r.SLA, func(p *seamless.SLAPolicy) float64 { return p.MaxLagSeconds }))
		},
	},
	{
		name:   "conformance",
		decode: func(r *seamless.Request, v string) error { r.Conformance = v; return nil },
		encode: func(r seamless.Request) (string, bool) { return r.Conformance, r.Conformance != "" },
	},
	{
		name: "include_forming",
		decode: func(r *seamless.Request, v string) error {
			b, err := strconv.ParseBool(v)
			r.IncludeForming = b
			return err
		},
		encode: func(r seamless.Request) (string, bool) { return "true", r.IncludeForming },
	},
	{
		name: "fingerprint",
		decode: func(r *seamless.Request, v string) error {
			b, err := strconv.ParseBool(v)
			r.Fingerprint = b
			return err
		},
		encode: func(r seamless.Request) (string, bool) { return "true", r.Fingerprint },
	},
	{
		name:   "world_id",
		decode: func(r *seamless.Request, v string) error { r.WorldID = v; return nil },
		encode: func(r seamless.Request) (string, bool) { return r.WorldID, r.WorldID != "" },
	},
	{
		name:   "execution_domain",
		decode: func(r *seamless.Request, v string) error { r.ExecutionDomain = v; return nil },
		encode: func(r seamless.Request) (string, bool) { return r.ExecutionDomain, r.ExecutionDomain != "" },
	},
	{
		name: "as_of",
		decode: func(r *seamless.Request, v string) error {
			t, err := grid.ParseTime(v)
			if err != nil {
				return err
			}
			r.AsOf = time.Unix(t, 0).UTC()
			return nil
		},
		encode: func(r seamless.Request) (string, bool) {
			return strconv.FormatInt(r.AsOf.Unix(), 10), !r.AsOf.IsZero()
		},
	},
}

// policy returns the request's SLA policy, creating an empty one for overrides given
// without a preset.
func policy(r *seamless.Request) *seamless.SLAPolicy {
	if r.SLA == nil {
		r.SLA = &seamless.SLAPolicy{}
	} else {
		p := *r.SLA // never modify a shared preset value
		r.SLA = &p
	}
	return r.SLA
}

// slaInt is an integer budget parameter of the SLA policy.
func slaInt(name string, field func(*seamless.SLAPolicy) *int64) param {
	return param{
		name: name,
		decode: func(r *seamless.Request, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("%q is not an integer", v)
			}
			*field(policy(r)) = n
			return nil
		},
		encode: func(r seamless.Request) (string, bool) {
			if r.SLA == nil {
				return "", false
			}
			// An SLA with every budget 0 is still a policy: send one field to say so.
			n := *field(r.SLA)
			return strconv.FormatInt(n, 10), n != 0 || name == "total_deadline_ms"
		},
	}
}

func override(v float64, p *seamless.SLAPolicy, field func(*seamless.SLAPolicy) float64) float64 {
	if v <= 0 && p != nil {
		return field(p)
	}
	return v
}

func parseFloat(v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a finite number", v)
	}
	return f, nil
}

func formatFloat(f float64) (string, bool) { return strconv.FormatFloat(f, 'g', -1, 64), f > 0 }

// DecodeRequest reads a seamless.Request from query parameters. extra names the
// parameters the route reads itself (such as format); any other parameter, a repeated
// one, a missing required one or a malformed value is a *seamless.RequestError naming
// the parameter. Field-level rules (the node id grammar, start < end, the bar limit)
// are the Provider's to check.
func DecodeRequest(q url.Values, extra ...string) (seamless.Request, error) {
	var req seamless.Request
	if err := checkParams(q, requestParams, extra); err != nil {
		return req, err
	}
	for _, p := range requestParams {
		v, ok := q[p.name]
		if !ok {
			if p.required {
				return req, &seamless.RequestError{Field: p.name, Message: "required"}
			}
			continue
		}
		if err := p.decode(&req, v[0]); err != nil {
			return req, &seamless.RequestError{Field: p.name, Message: err.Error()}
		}
	}
	return req, nil
}

// EncodeRequest is the inverse of DecodeRequest.
func EncodeRequest(req seamless.Request) url.Values {
	q := url.Values{}
	for _, p := range requestParams {
		if v, ok := p.encode(req); ok {
			q.Set(p.name, v)
		}
	}
	return q
}

// EncodeSeries is the inverse of DecodeSeries.
func EncodeSeries(s seamless.Series) url.Values {
	q := EncodeRequest(seamless.Request{NodeID: s.NodeID, Interval: s.Interval})
	for _, p := range requestParams[2:] {
		q.Del(p.name)
	}
	return q
}

// DecodeSeries reads the node_id and interval parameters, the only ones allowed.
func DecodeSeries(q url.Values) (seamless.Series, error) {
	series := requestParams[:2]
	if err := checkParams(q, series, nil); err != nil {
		return seamless.Series{}, err
	}
	var req seamless.Request
	for _, p := range series {
		v, ok := q[p.name]
		if !ok {
			return seamless.Series{}, &seamless.RequestError{Field: p.name, Message: "required"}
		}
		if err := p.decode(&req, v[0]); err != nil {
			return seamless.Series{}, &seamless.RequestError{Field: p.name, Message: err.Error()}
		}
	}
	return seamless.Series{NodeID: req.NodeID, Interval: req.Interval}, nil
}

// checkParams rejects unknown and repeated parameters: a typo such as partialok must
// not be silently ignored.
func checkParams(q url.Values, known []param, extra []string) error {
	names := slices.Clone(extra)
	for _, p := range known {
		names = append(names, p.name)
	}
	for name, vs := range q {
		if !slices.Contains(names, name) {
			slices.Sort(names)
			return &seamless.RequestError{Field: name, Message: fmt.Sprintf("unknown parameter (known: %s)", strings.Join(names, ", "))}
		}
		if len(vs) > 1 {
			return &seamless.RequestError{Field: name, Message: "given more than once"}
		}
	}
	return nil
}
