// Package export writes a series as a Hive-partitioned Parquet dataset, the layout
// DuckDB, Polars, Spark and pandas read as one table with node and date columns:
//
//	{dir}/node={artifact.NodeComponent(node id)}/date=YYYY-MM-DD/part-0.parquet
//
// One file per UTC day that has bars, written by artifact.WriteParquet (zstd) with the
// SPEC column types (ts int64 epoch seconds, then the frame's columns) and, in its
// footer, what the day's rows are: the fetch metadata, the dataset fingerprint of the
// rows and the covered ranges of the day (see the Key* constants). A day without bars
// has no file; whether it was covered (a market gap) or not is in the neighbours'
// metadata only if they share the day, so the covered ranges of the whole export are
// in the Summary.
//
// Each day is fetched like any other request (same strategy, SLA and conformance), so
// an export holds exactly what `seamless fetch` returns for the range. Files appear
// atomically (written under a temporary name, then renamed), so a reader never sees a
// partial file.
package export

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/artifact"
	"github.com/seamless-data/seamless/grid"
)

// Footer keys of every exported file.
const (
	// KeyMetadata is the day's fetch metadata (SPEC §2), as /v1/bars returns it.
	KeyMetadata = "seamless.metadata"
	// KeyFingerprint is the dataset fingerprint of the file's rows.
	KeyFingerprint = "seamless.dataset_fingerprint"
	// KeyCoverage is the covered half-open ranges inside the day, [[start,end),…] in
	// epoch seconds: where the store holds authoritative data, bars or a market gap.
	KeyCoverage = "seamless.coverage"
	// KeyNodeID and KeyInterval name the series (the node also is the partition).
	KeyNodeID   = "seamless.node_id"
	KeyInterval = "seamless.interval"
)

// FileName is the one data file of each partition.
const FileName = "part-0.parquet"

// day is a partition's width: UTC days, like the date= partition values.
const day = 86400

// Source is what an export reads: a seamless.Provider, or the HTTP client.
type Source interface {
	Fetch(ctx context.Context, req seamless.Request) (seamless.Result, error)
	Coverage(ctx context.Context, nodeID string, interval int64) (grid.Set, error)
}

// Options says what to export where.
type Options struct {
	// Request names the series and range; its strategy, SLA and conformance settings
	// apply to every day's fetch. Fingerprint is always on.
	Request seamless.Request
	// Dir is the dataset root. It must be absent or empty unless Overwrite, which
	// replaces the files of the days exported and leaves everything else in Dir.
	Dir       string
	Overwrite bool
	// Progress, if set, is called after each day.
	Progress func(Progress)
}

// Progress is the state after one day.
type Progress struct {
	Day         time.Time
	DaysDone    int
	DaysTotal   int
	Bars, Files int
}

// Summary is what an export wrote.
type Summary struct {
	Files int
	Bars  int
	Bytes int64
	// Coverage is the stored coverage of the exported range after the export.
	Coverage grid.Set
}

// Run exports opts.Request's range from src into opts.Dir.
func Run(ctx context.Context, src Source, opts Options) (Summary, error) {
	req := opts.Request
	if req.Start >= req.End {
		return Summary{}, &seamless.RequestError{Field: "end", Message: fmt.Sprintf("start %d is not before end %d", req.Start, req.End)}
	}
	node, err := artifact.NodeComponent(req.NodeID)
	if err != nil {
		return Summary{}, &seamless.RequestError{Field: "node", Message: err.Error()}
	}
	if err := checkDir(opts.Dir, opts.Overwrite); err != nil {
		return Summary{}, err
	}
	var sum Summary
	first := floorDay(req.Start)
	total := int((req.End - first + day - 1) / day)
	for i, d := 0, first; d < req.End; i, d = i+1, d+day {
		r := grid.R(max(d, req.Start), min(d+day, req.End))
		dayReq := req
		dayReq.Start, dayReq.End, dayReq.Fingerprint = r.Start, r.End, true
		res, err := src.Fetch(ctx, dayReq)
		if err != nil {
			return sum, err
		}
		n, size, err := writeDay(ctx, src, opts.Dir, node, d, r, res)
		res.Release()
		if err != nil {
			return sum, err
		}
		if n > 0 {
			sum.Files++
			sum.Bars += n
			sum.Bytes += size
		}
		if opts.Progress != nil {
			opts.Progress(Progress{Day: time.Unix(d, 0).UTC(), DaysDone: i + 1, DaysTotal: total, Bars: sum.Bars, Files: sum.Files})
		}
	}
	cov, err := src.Coverage(ctx, req.NodeID, req.Interval)
	if err != nil {
		return sum, err
	}
	sum.Coverage = cov.IntersectRange(grid.R(req.Start, req.End))
	return sum, nil
}

// PartitionDir is the directory of one day's partition below the dataset root.
func PartitionDir(root, nodeComponent string, dayStart int64) string {
	return filepath.Join(root, "node="+nodeComponent, "date="+time.Unix(dayStart, 0).UTC().Format(time.DateOnly))
}

// writeDay writes the file of one day (nothing for a day without bars) and returns
// its bars and bytes.
func writeDay(ctx context.Context, src Source, root, node string, dayStart int64, r grid.Range, res seamless.Result) (int, int64, error) {
	dir := PartitionDir(root, node, dayStart)
	path := filepath.Join(dir, FileName)
	if res.Frame == nil || res.Frame.Len() == 0 {
		// An earlier export's file for this day would now be stale (Overwrite).
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, 0, fmt.Errorf("export: %w", err)
		}
		return 0, 0, nil
	}
	md, err := res.Metadata.MarshalJSON()
	if err != nil {
		return 0, 0, err
	}
	cov, err := src.Coverage(ctx, res.Metadata.NodeID, res.Metadata.Interval)
	if err != nil {
		return 0, 0, err
	}
	covJSON, err := json.Marshal(rangesOf(cov.IntersectRange(r)))
	if err != nil {
		return 0, 0, err
	}
	meta := map[string]string{
		KeyMetadata:    string(md),
		KeyFingerprint: res.Metadata.DatasetFingerprint,
		KeyCoverage:    string(covJSON),
		KeyNodeID:      res.Metadata.NodeID,
		KeyInterval:    fmt.Sprint(res.Metadata.Interval),
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, 0, fmt.Errorf("export: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".part-*.tmp")
	if err != nil {
		return 0, 0, fmt.Errorf("export: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	bw := bufio.NewWriterSize(tmp, 1<<20)
	err = artifact.WriteParquet(bw, res.Frame, artifact.ParquetOptions{Codec: artifact.Zstd, Metadata: meta})
	if err == nil {
		err = bw.Flush()
	}
	var size int64
	if err == nil {
		var st os.FileInfo
		if st, err = tmp.Stat(); err == nil {
			size = st.Size()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("export %s: %w", path, err)
	}
	return res.Frame.Len(), size, nil
}

// rangesOf is the set as [[start, end), …] pairs: the compact form of the footer.
func rangesOf(s grid.Set) [][2]int64 {
	out := [][2]int64{}
	for _, r := range s.Ranges() {
		out = append(out, [2]int64{r.Start, r.End})
	}
	return out
}

// checkDir refuses a non-empty output directory unless overwrite: an export into a
// directory holding other files would mix datasets silently.
func checkDir(dir string, overwrite bool) error {
	if dir == "" {
		return &seamless.RequestError{Field: "output", Message: "required: the dataset directory"}
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return &seamless.RequestError{Field: "output", Message: err.Error()}
	case len(entries) > 0 && !overwrite:
		return &seamless.RequestError{Field: "output", Message: fmt.Sprintf("%s is not empty (%d entries); pass --overwrite to replace the exported days' files", dir, len(entries))}
	}
	return nil
}

func floorDay(t int64) int64 {
	d := t / day * day
	if d > t {
		d -= day
	}
	return d
}
