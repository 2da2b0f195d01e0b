package conformance

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrorCode is the stable error code of a blocked response (SPEC §2, HTTP 422).
const ErrorCode = "conformance_blocked"

// Policy decides which findings block a response. The zero Policy blocks nothing.
type Policy struct {
	// Name is the preset name, for logs and metadata.
	Name string `yaml:"-"`
	// Block lists the flags that block.
	Block []string `yaml:"block"`
	// All blocks on every flag and on any warning, as the reference does.
	All bool `yaml:"block_all"`
	// AllowPartial lets a request's partial_ok serve the normalised frame despite
	// blocking findings; without it they refuse the response regardless.
	AllowPartial bool `yaml:"partial_ok"`
}

// Preset names.
const (
	DefaultPreset    = "default"
	StrictPreset     = "strict-blocking"
	PermissivePreset = "permissive-dev"
)

//go:embed presets.yaml
var presetsYAML string

var presets = mustLoadPresets(presetsYAML)

func mustLoadPresets(doc string) map[string]Policy {
	var out map[string]Policy
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&out); err != nil {
		panic("conformance: embedded presets.yaml: " + err.Error())
	}
	for name, p := range out {
		for _, f := range p.Block {
			if !slices.Contains(flagNames[:], f) {
				panic(fmt.Sprintf("conformance: embedded preset %s blocks unknown flag %q", name, f))
			}
		}
		p.Name = name
		out[name] = p
	}
	for _, name := range []string{DefaultPreset, StrictPreset, PermissivePreset} {
		if _, ok := out[name]; !ok {
			panic("conformance: embedded presets.yaml lacks " + name)
		}
	}
	return out
}

func preset(name string) Policy {
	p := presets[name]
	p.Block = slices.Clone(p.Block)
	return p
}

// DefaultPolicy blocks on the findings that mean corrupt data and reports the rest.
func DefaultPolicy() Policy { return preset(DefaultPreset) }

// StrictPolicy (preset strict-blocking) blocks on every flag and warning, even for
// requests with partial_ok.
func StrictPolicy() Policy { return preset(StrictPreset) }

// PermissivePolicy (preset permissive-dev) blocks on nothing.
func PermissivePolicy() Policy { return preset(PermissivePreset) }

// PolicyByName returns the preset of that name; "" is the default.
func PolicyByName(name string) (Policy, error) {
	if name == "" {
		name = DefaultPreset
	}
	if _, ok := presets[name]; !ok {
		return Policy{}, fmt.Errorf("unknown conformance policy %q (want %s, %s or %s)", name, DefaultPreset, StrictPreset, PermissivePreset)
	}
	return preset(name), nil
}

// Refuses reports whether findings that block under p refuse a response whose request
// set partial_ok to partialOK.
func (p Policy) Refuses(blocking []string, partialOK bool) bool {
	return len(blocking) > 0 && (!partialOK || !p.AllowPartial)
}

// warningsFinding stands for a report's warnings in the result of Blocking.
const warningsFinding = "warnings"

// Blocking returns the findings of r that block under p, sorted: flag names, plus
// "warnings" when p.All and r has warnings. Nil means the response may be served.
func (p Policy) Blocking(r Report) []string {
	var out []string
	for _, f := range r.Raised() {
		if r.FlagsCounts[f] > 0 && (p.All || slices.Contains(p.Block, f)) {
			out = append(out, f)
		}
	}
	if p.All && len(r.Warnings) > 0 {
		out = append(out, warningsFinding)
	}
	return out
}

// Check returns a *PipelineError carrying r when r has blocking findings, else nil.
func (p Policy) Check(r Report) error {
	b := p.Blocking(r)
	if b == nil {
		return nil
	}
	return &PipelineError{Report: r, Blocking: b}
}

// PipelineError is the ConformancePipelineError: a response blocked by its findings
// (code conformance_blocked). The report stays available to the caller.
type PipelineError struct {
	Report Report
	// Blocking lists the findings that blocked (see Policy.Blocking).
	Blocking []string
}

// Error uses the reference's message, so that tools matching it keep working.
func (e *PipelineError) Error() string {
	return fmt.Sprintf("conformance pipeline blocked response (warnings=%d, flags=%d)", len(e.Report.Warnings), len(e.Report.FlagsCounts))
}

// Code returns ErrorCode.
func (e *PipelineError) Code() string { return ErrorCode }
