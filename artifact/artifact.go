// Package artifact publishes fetch results as immutable, content-addressed artifacts
// (SPEC §5) and reads them back: the frame as Parquet plus a JSON manifest that says
// what the data is, partitioned by node and dataset fingerprint:
//
//	{root or prefix}/{node}/{fingerprint hex}/data.parquet
//	{root or prefix}/{node}/{fingerprint hex}/manifest.json
//
// where {node} is the node id with every byte outside [A-Za-z0-9_-] percent-encoded,
// so ids holding ':', '/' or ".." name exactly one directory below the root.
//
// Invariants every Registrar keeps:
//   - An artifact is addressed by its dataset fingerprint, which Publish computes from
//     the frame (package fingerprint); the caller cannot choose it.
//   - Publishing is idempotent and first-writer-wins: publishing a fingerprint that
//     exists returns the stored manifest and writes nothing.
//   - A manifest is visible only once its data is complete (DirRegistrar renames a
//     finished directory into place; S3Registrar writes the manifest last).
//   - Get verifies what it reads: the frame's recomputed fingerprint must equal the
//     manifest's and the one asked for, or the read fails with ErrCorrupt.
package artifact

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/seamless-data/seamless/fingerprint"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// Registrar stores and serves artifacts. Implementations are safe for concurrent use.
type Registrar interface {
	// Publish stores a and returns its manifest; if an artifact with the same
	// fingerprint exists for the node it returns that one's manifest instead.
	Publish(ctx context.Context, a Artifact) (Manifest, error)
	// Get returns the manifest and frame of the artifact with the given dataset
	// fingerprint ("sha256:…"), or ErrNotFound.
	Get(ctx context.Context, nodeID, datasetFingerprint string) (Manifest, *frame.Frame, error)
	// List returns the manifests of every artifact of a node, ordered by range start,
	// then range end, then fingerprint; none is an empty list, not an error.
	List(ctx context.Context, nodeID string) ([]Manifest, error)
}

// Artifact is a frame to publish and what describes it.
type Artifact struct {
	NodeID   string
	Interval int64
	// Range is the requested [start, end) the frame answers; its rows lie inside it.
	Range grid.Range
	// Frame holds the rows, sorted and unique by ts (as Fetch returns them).
	Frame *frame.Frame
	// AsOf is the instant the data is fixed at; zero means the publication time.
	AsOf time.Time
	// ConformanceFlags counts the conformance findings of the data, by flag name.
	ConformanceFlags map[string]int
	// Producer names what published the artifact (a service, job or strategy).
	Producer string
}

// DataFile is the name of the Parquet file beside each manifest.
const DataFile = "data.parquet"

// ManifestFile is the name of each artifact's manifest.
const ManifestFile = "manifest.json"

// Manifest describes one published artifact; it is stored as manifest.json.
type Manifest struct {
	NodeID   string `json:"node_id"`
	Interval int64  `json:"interval"`
	// Range is the requested [start, end).
	Range [2]int64 `json:"range"`
	Rows  int      `json:"rows"`
	// CoverageBounds is [first ts, last ts + interval), null without rows: with
	// node_id and interval, what the fingerprint covers besides the rows.
	CoverageBounds     *[2]int64      `json:"coverage_bounds"`
	DatasetFingerprint string         `json:"dataset_fingerprint"`
	ConformanceVersion string         `json:"conformance_version"`
	AsOf               time.Time      `json:"as_of"`
	ConformanceFlags   map[string]int `json:"conformance_flags"`
	Producer           string         `json:"producer"`
	CreatedAt          time.Time      `json:"created_at"`
	Files              Files          `json:"files"`
	// URI locates the manifest (file:// or s3://); it is filled on return, not stored.
	URI string `json:"-"`
}

// Files names an artifact's files, relative to its manifest.
type Files struct {
	Data string `json:"data"`
}

// Errors a caller may handle; returned errors wrap them with the node and fingerprint.
var (
	// ErrNotFound: no artifact with that fingerprint exists for the node.
	ErrNotFound = errors.New("artifact not found")
	// ErrInvalid: the artifact, node id or fingerprint cannot be published or looked up.
	ErrInvalid = errors.New("invalid artifact")
	// ErrCorrupt: stored files are unreadable or do not match their manifest.
	ErrCorrupt = errors.New("corrupt artifact")
)

// errorf wraps err (a sentinel above or a storage error) with the node, the
// fingerprint when known, and what was being done.
func errorf(err error, node, fp, format string, args ...any) error {
	what := "artifact " + strconv.Quote(node)
	if fp != "" {
		what += " " + fp
	}
	return fmt.Errorf("%s: %s: %w", what, fmt.Sprintf(format, args...), err)
}

// maxNodeComponent bounds an escaped node id to one file-name component (255 bytes on
// common file systems).
const maxNodeComponent = 255

// NodeComponent is the node id as one path component: bytes outside [A-Za-z0-9_-]
// become %XX, so the result has no '/', '.' or NUL and is never "", "." or "..", and
// distinct ids give distinct components. It is also the partition value of exports
// (node=<NodeComponent>), which Hive-style readers percent-decode back to the id.
func NodeComponent(nodeID string) (string, error) {
	if nodeID == "" {
		return "", errorf(ErrInvalid, nodeID, "", "empty node id")
	}
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(nodeID); i++ {
		c := nodeID[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&0xf])
	}
	if b.Len() > maxNodeComponent {
		return "", errorf(ErrInvalid, nodeID, "", "node id escapes to %d bytes, more than %d", b.Len(), maxNodeComponent)
	}
	return b.String(), nil
}

// fingerprintHex validates a dataset fingerprint and returns its 64 hex digits, the
// artifact's directory name.
func fingerprintHex(nodeID, fp string) (string, error) {
	h, ok := strings.CutPrefix(fp, fingerprint.Prefix)
	if !ok || !isHexDigest(h) {
		return "", errorf(ErrInvalid, nodeID, fp, "not a dataset fingerprint (want %s and 64 lower-case hex digits)", fingerprint.Prefix)
	}
	return h, nil
}

func isHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// prepared is an artifact ready to store: its manifest, path components, frame and,
// after encode, its files.
type prepared struct {
	manifest     Manifest
	node, hex    string
	frame        *frame.Frame
	data, mfJSON []byte
}

// prepare validates a and builds its manifest, with now as created_at.
func prepare(a Artifact, now time.Time) (prepared, error) {
	node, err := NodeComponent(a.NodeID)
	if err != nil {
		return prepared{}, err
	}
	f := a.Frame
	if f == nil {
		f = &frame.Frame{}
	}
	invalid := func(format string, args ...any) error { return errorf(ErrInvalid, a.NodeID, "", format, args...) }
	switch {
	case a.Interval <= 0:
		return prepared{}, invalid("interval %d is not positive", a.Interval)
	case a.Range.Empty():
		return prepared{}, invalid("empty range %v", a.Range)
	case !f.IsSortedUnique():
		return prepared{}, invalid("frame is not sorted and unique by ts")
	}
	if err := f.Validate(); err != nil {
		return prepared{}, invalid("%v", err)
	}
	var bounds *[2]int64
	if n := f.Len(); n > 0 {
		if first, last := f.TS[0], f.TS[n-1]; !a.Range.Contains(first) || !a.Range.Contains(last) {
			return prepared{}, invalid("rows [%d, %d] outside range %v", first, last, a.Range)
		}
		bounds = &[2]int64{f.TS[0], f.TS[n-1] + a.Interval}
	}
	fp := fingerprint.Dataset(f, fingerprint.Meta{NodeID: a.NodeID, Interval: a.Interval, CoverageBounds: bounds})
	now = now.UTC()
	asOf := a.AsOf.UTC()
	if a.AsOf.IsZero() {
		asOf = now
	}
	flags := maps.Clone(a.ConformanceFlags)
	if flags == nil {
		flags = map[string]int{}
	}
	m := Manifest{
		NodeID:             a.NodeID,
		Interval:           a.Interval,
		Range:              [2]int64{a.Range.Start, a.Range.End},
		Rows:               f.Len(),
		CoverageBounds:     bounds,
		DatasetFingerprint: fp,
		ConformanceVersion: fingerprint.ConformanceVersion,
		AsOf:               asOf,
		ConformanceFlags:   flags,
		Producer:           a.Producer,
		CreatedAt:          now,
		Files:              Files{Data: DataFile},
	}
	return prepared{manifest: m, node: node, hex: strings.TrimPrefix(fp, fingerprint.Prefix), frame: f}, nil
}

// encode fills p's file contents. It is separate from prepare so that republishing an
// existing artifact costs a fingerprint, not a Parquet encoding.
func (p *prepared) encode() error {
	m := &p.manifest
	data, err := encodeParquet(p.frame)
	if err != nil {
		return errorf(ErrInvalid, m.NodeID, m.DatasetFingerprint, "encode parquet: %v", err)
	}
	mfJSON, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return errorf(ErrInvalid, m.NodeID, m.DatasetFingerprint, "encode manifest: %v", err)
	}
	p.data, p.mfJSON = data, append(mfJSON, '\n')
	return nil
}

// decodeManifest parses a stored manifest and checks that it is the one asked for.
func decodeManifest(nodeID, fp string, b []byte) (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Manifest{}, errorf(ErrCorrupt, nodeID, fp, "manifest: %v", err)
	}
	if m.NodeID != nodeID || m.DatasetFingerprint != fp {
		return Manifest{}, errorf(ErrCorrupt, nodeID, fp, "manifest describes %s %s", m.NodeID, m.DatasetFingerprint)
	}
	if m.Files.Data != DataFile {
		// Only the fixed name is read, so a manifest cannot point outside its artifact.
		return Manifest{}, errorf(ErrCorrupt, nodeID, fp, "manifest names data file %q, want %q", m.Files.Data, DataFile)
	}
	return m, nil
}

// decodeData reads an artifact's Parquet data and verifies it against its manifest by
// recomputing the fingerprint.
func decodeData(m Manifest, data []byte) (*frame.Frame, error) {
	f, err := decodeParquet(data)
	if err != nil {
		return nil, errorf(ErrCorrupt, m.NodeID, m.DatasetFingerprint, "data: %v", err)
	}
	fp := fingerprint.Dataset(f, fingerprint.Meta{NodeID: m.NodeID, Interval: m.Interval, CoverageBounds: m.CoverageBounds})
	if f.Len() != m.Rows || fp != m.DatasetFingerprint {
		return nil, errorf(ErrCorrupt, m.NodeID, m.DatasetFingerprint, "data has %d rows and fingerprint %s, manifest says %d rows", f.Len(), fp, m.Rows)
	}
	return f, nil
}

// sortManifests puts List results in their documented order.
func sortManifests(ms []Manifest) {
	slices.SortFunc(ms, func(a, b Manifest) int {
		return cmp.Or(cmp.Compare(a.Range[0], b.Range[0]), cmp.Compare(a.Range[1], b.Range[1]),
			cmp.Compare(a.DatasetFingerprint, b.DatasetFingerprint))
	})
}
