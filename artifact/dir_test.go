package artifact_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/seamless-data/seamless/artifact"
	"github.com/seamless-data/seamless/artifact/artifacttest"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/grid"
)

func TestDirRegistrarContract(t *testing.T) {
	artifacttest.Run(t, func(t *testing.T, clk clock.Clock) artifact.Registrar {
		return artifact.NewDirRegistrar(filepath.Join(t.TempDir(), "artifacts"), clk)
	})
}

// files lists every file under dir, relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDirLayout(t *testing.T) {
	root := t.TempDir()
	r := artifact.NewDirRegistrar(root, clock.NewFake(artifacttest.Epoch))
	m, err := r.Publish(context.Background(), artifact.Artifact{NodeID: "ohlcv:binance:BTC/USDT:1m", Interval: 60, Range: grid.R(0, 600), Frame: artifacttest.OHLCV(0, 60, 10)})
	if err != nil {
		t.Fatal(err)
	}
	hex := strings.TrimPrefix(m.DatasetFingerprint, "sha256:")
	dir := "ohlcv%3Abinance%3ABTC%2FUSDT%3A1m/" + hex
	if got, want := files(t, root), []string{dir + "/data.parquet", dir + "/manifest.json"}; !slices.Equal(got, want) {
		t.Errorf("files %v, want %v", got, want)
	}
	if want := "file://" + filepath.ToSlash(root) + "/ohlcv%253Abinance%253ABTC%252FUSDT%253A1m/" + hex + "/manifest.json"; m.URI != want {
		t.Errorf("URI %s, want %s", m.URI, want)
	}
}

// TestDirHostileNodesStayInside publishes under node ids that are traversals as raw
// paths and checks every file landed in its own directory directly under the root.
func TestDirHostileNodesStayInside(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "a", "b")
	r := artifact.NewDirRegistrar(root, nil)
	ctx := context.Background()
	nodes := 0
	for i, node := range artifacttest.HostileNodeIDs {
		if node == "" {
			continue
		}
		nodes++
		if _, err := r.Publish(ctx, artifact.Artifact{NodeID: node, Interval: 1, Range: grid.R(0, 100), Frame: artifacttest.OHLCV(int64(i), 1, 3)}); err != nil {
			t.Fatalf("%q: %v", node, err)
		}
	}
	if got := files(t, parent); len(got) != 2*nodes {
		t.Fatalf("%d files under %s, want %d: %v", len(got), parent, 2*nodes, got)
	}
	dirs := map[string]bool{}
	for _, f := range files(t, root) {
		parts := strings.Split(f, "/")
		if len(parts) != 3 || strings.HasPrefix(parts[0], ".") {
			t.Errorf("file %s is not {node}/{fingerprint}/{file}", f)
		}
		dirs[parts[0]] = true
	}
	if len(dirs) != nodes {
		t.Errorf("%d node directories for %d nodes: %v", len(dirs), nodes, dirs)
	}
}

func TestDirIgnoresLeftoverTempDirs(t *testing.T) {
	root := t.TempDir()
	r := artifact.NewDirRegistrar(root, nil)
	ctx := context.Background()
	a := artifact.Artifact{NodeID: "n", Interval: 1, Range: grid.R(0, 100), Frame: artifacttest.OHLCV(0, 1, 3)}
	m, err := r.Publish(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	// A publisher that crashed before its rename leaves a temporary directory behind.
	hex := strings.TrimPrefix(m.DatasetFingerprint, "sha256:")
	if err := os.MkdirAll(filepath.Join(root, "n", ".tmp-"+hex+"-123"), 0o755); err != nil {
		t.Fatal(err)
	}
	if list, err := r.List(ctx, "n"); err != nil || len(list) != 1 {
		t.Errorf("List = %d, %v", len(list), err)
	}
	if got := files(t, root); len(got) != 2 {
		t.Errorf("Publish left files behind: %v", got)
	}
}

func TestDirDetectsCorruption(t *testing.T) {
	root := t.TempDir()
	r := artifact.NewDirRegistrar(root, nil)
	ctx := context.Background()
	node := "ohlcv:x:y:1m"
	pub := func(start int64) (artifact.Manifest, string) {
		m, err := r.Publish(ctx, artifact.Artifact{NodeID: node, Interval: 60, Range: grid.R(0, 60_000), Frame: artifacttest.OHLCV(start, 60, 100)})
		if err != nil {
			t.Fatal(err)
		}
		return m, filepath.Join(root, "ohlcv%3Ax%3Ay%3A1m", strings.TrimPrefix(m.DatasetFingerprint, "sha256:"))
	}
	a, aDir := pub(0)
	_, bDir := pub(60)
	// Swap in another artifact's data: readable Parquet, wrong fingerprint.
	other, err := os.ReadFile(filepath.Join(bDir, artifact.DataFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(aDir, artifact.DataFile), other, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Get(ctx, node, a.DatasetFingerprint); !errors.Is(err, artifact.ErrCorrupt) {
		t.Errorf("Get with swapped data: %v, want ErrCorrupt", err)
	}
	if err := os.WriteFile(filepath.Join(aDir, artifact.DataFile), other[:len(other)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Get(ctx, node, a.DatasetFingerprint); !errors.Is(err, artifact.ErrCorrupt) {
		t.Errorf("Get with truncated data: %v, want ErrCorrupt", err)
	}
	if err := os.WriteFile(filepath.Join(bDir, artifact.ManifestFile), []byte(`{"files":{"data":"../../x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.List(ctx, node); !errors.Is(err, artifact.ErrCorrupt) {
		t.Errorf("List with a broken manifest: %v, want ErrCorrupt", err)
	}
}
