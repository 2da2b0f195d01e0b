package schemaregistry

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
)

// Bundle is the fingerprint of a directory of schema files.
type Bundle struct {
	// Fingerprint is "sha256:" + the hex SHA-256 of, for each regular file in
	// byte-wise order of its slash-separated path relative to the directory:
	// the path, a NUL byte, the content length in decimal, a NUL byte, the content.
	// The lengths make the encoding unambiguous; nothing else (mtimes, modes, empty
	// directories) counts.
	Fingerprint string       `json:"fingerprint"`
	Files       []BundleFile `json:"files"`
}

// BundleFile is one file of a bundle.
type BundleFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// BundleDir fingerprints the directory dir. Symbolic links are not followed out of it
// (the directory is opened as an os.Root), so a bundle cannot take in files elsewhere.
func BundleDir(dir string) (Bundle, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Bundle{}, fmt.Errorf("schema bundle: %w", err)
	}
	defer root.Close()
	b, err := BundleFS(root.FS())
	if err != nil {
		return Bundle{}, fmt.Errorf("schema bundle %s: %w", dir, err)
	}
	return b, nil
}

// BundleFS fingerprints the regular files of fsys (see Bundle.Fingerprint).
func BundleFS(fsys fs.FS) (Bundle, error) {
	var paths []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return Bundle{}, err
	}
	sort.Strings(paths)
	h := sha256.New()
	out := Bundle{Files: []BundleFile{}}
	for _, p := range paths {
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return Bundle{}, err
		}
		sum := sha256.Sum256(data)
		out.Files = append(out.Files, BundleFile{Path: p, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
		h.Write([]byte(p))
		h.Write([]byte{0})
		h.Write([]byte(strconv.Itoa(len(data))))
		h.Write([]byte{0})
		h.Write(data)
	}
	out.Fingerprint = "sha256:" + hex.EncodeToString(h.Sum(nil))
	return out, nil
}
