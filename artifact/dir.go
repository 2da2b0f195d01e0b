package artifact

import (
	"context"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
)

// DirRegistrar keeps artifacts in a directory tree:
// {Root}/{node}/{fingerprint hex}/{data.parquet, manifest.json}.
//
// Publish writes both files into a temporary directory beside the artifact's, syncs
// them and renames the directory into place, so an artifact appears whole or not at
// all, and a publisher that loses a race for the same fingerprint finds the winner's
// directory and returns its manifest.
type DirRegistrar struct {
	root  string
	clock clock.Clock
}

// NewDirRegistrar returns a registrar under root (created on first Publish). clk
// stamps created_at; nil means the wall clock.
func NewDirRegistrar(root string, clk clock.Clock) *DirRegistrar {
	if clk == nil {
		clk = clock.Real{}
	}
	return &DirRegistrar{root: root, clock: clk}
}

// tmpPrefix starts temporary artifact directories; no node or fingerprint component
// starts with '.', so List never mistakes one for an artifact.
const tmpPrefix = ".tmp-"

// Publish implements Registrar.
func (d *DirRegistrar) Publish(ctx context.Context, a Artifact) (Manifest, error) {
	p, err := prepare(a, d.clock.Now())
	if err != nil {
		return Manifest{}, err
	}
	fp := p.manifest.DatasetFingerprint
	nodeDir := filepath.Join(d.root, p.node)
	dir := filepath.Join(nodeDir, p.hex)
	if m, err := d.readManifest(a.NodeID, fp, dir); !errors.Is(err, ErrNotFound) {
		return m, err
	}
	if err := p.encode(); err != nil {
		return Manifest{}, err
	}
	if err := ctx.Err(); err != nil {
		return Manifest{}, err
	}
	fail := func(err error) (Manifest, error) {
		return Manifest{}, errorf(err, a.NodeID, fp, "publish to %s", dir)
	}
	if err := os.MkdirAll(nodeDir, 0o755); err != nil {
		return fail(err)
	}
	tmp, err := os.MkdirTemp(nodeDir, tmpPrefix+p.hex+"-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := writeSynced(filepath.Join(tmp, DataFile), p.data); err != nil {
		return fail(err)
	}
	if err := writeSynced(filepath.Join(tmp, ManifestFile), p.mfJSON); err != nil {
		return fail(err)
	}
	if err := syncDir(tmp); err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return Manifest{}, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Renaming onto a non-empty directory fails: another publisher got there first.
		if m, rerr := d.readManifest(a.NodeID, fp, dir); rerr == nil {
			return m, nil
		}
		return fail(err)
	}
	if err := syncDir(nodeDir); err != nil {
		return fail(err)
	}
	p.manifest.URI = fileURI(filepath.Join(dir, ManifestFile))
	return p.manifest, nil
}

// Get implements Registrar.
func (d *DirRegistrar) Get(ctx context.Context, nodeID, datasetFingerprint string) (Manifest, *frame.Frame, error) {
	dir, err := d.artifactDir(nodeID, datasetFingerprint)
	if err != nil {
		return Manifest{}, nil, err
	}
	m, err := d.readManifest(nodeID, datasetFingerprint, dir)
	if err != nil {
		return Manifest{}, nil, err
	}
	if err := ctx.Err(); err != nil {
		return Manifest{}, nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, DataFile))
	if err != nil {
		return Manifest{}, nil, errorf(ErrCorrupt, nodeID, datasetFingerprint, "%v", err)
	}
	f, err := decodeData(m, data)
	if err != nil {
		return Manifest{}, nil, err
	}
	return m, f, nil
}

// List implements Registrar.
func (d *DirRegistrar) List(ctx context.Context, nodeID string) ([]Manifest, error) {
	node, err := NodeComponent(nodeID)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(d.root, node))
	if errors.Is(err, fs.ErrNotExist) {
		return []Manifest{}, nil
	}
	if err != nil {
		return nil, errorf(err, nodeID, "", "list")
	}
	out := []Manifest{}
	for _, e := range entries {
		if !e.IsDir() || !isHexDigest(e.Name()) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m, err := d.readManifest(nodeID, "sha256:"+e.Name(), filepath.Join(d.root, node, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	sortManifests(out)
	return out, nil
}

func (d *DirRegistrar) artifactDir(nodeID, fp string) (string, error) {
	node, err := NodeComponent(nodeID)
	if err != nil {
		return "", err
	}
	h, err := fingerprintHex(nodeID, fp)
	if err != nil {
		return "", err
	}
	return filepath.Join(d.root, node, h), nil
}

func (d *DirRegistrar) readManifest(nodeID, fp, dir string) (Manifest, error) {
	path := filepath.Join(dir, ManifestFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Manifest{}, errorf(ErrNotFound, nodeID, fp, "no %s", path)
	}
	if err != nil {
		return Manifest{}, errorf(err, nodeID, fp, "read manifest")
	}
	m, err := decodeManifest(nodeID, fp, b)
	if err != nil {
		return Manifest{}, err
	}
	m.URI = fileURI(path)
	return m, nil
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes a directory's entries (a new file, a rename) durable.
func syncDir(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func fileURI(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path)}
	return u.String()
}
