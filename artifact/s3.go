package artifact

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
)

// S3Config locates an S3-compatible bucket.
type S3Config struct {
	// Endpoint is host[:port], without a scheme.
	Endpoint string
	Bucket   string
	// AccessKey and SecretKey sign requests; both empty means anonymous access.
	AccessKey, SecretKey string
	// Prefix is prepended to every key ("" or e.g. "seamless/artifacts").
	Prefix string
	// Region defaults to us-east-1, which also saves a bucket-location lookup.
	Region string
	// TLS selects https.
	TLS bool
	// MaxRetries bounds attempts per request (with backoff); 0 is minio-go's default, 10.
	MaxRetries int
	// Transport overrides the HTTP transport (tests, custom CAs); nil is the default.
	Transport http.RoundTripper
}

// S3Registrar keeps artifacts in an S3-compatible bucket under
// {Prefix}/{node}/{fingerprint hex}/{data.parquet, manifest.json}.
//
// Publish uploads the data first and the manifest last, with If-None-Match: * so that
// the first publisher of a fingerprint wins and later ones read its manifest back; a
// reader that finds a manifest therefore finds complete data. Stores that ignore the
// condition degrade to last-writer-wins on the manifest, whose data is identical
// anyway (the key is its fingerprint).
type S3Registrar struct {
	client *minio.Client
	bucket string
	prefix string
	clock  clock.Clock
}

// NewS3Registrar returns a registrar on the bucket cfg names; it makes no request. clk
// stamps created_at; nil means the wall clock.
func NewS3Registrar(cfg S3Config, clk clock.Clock) (*S3Registrar, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, fmt.Errorf("artifact: S3 endpoint and bucket are required: %w", ErrInvalid)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	opts := &minio.Options{Secure: cfg.TLS, Region: cfg.Region, Transport: cfg.Transport, MaxRetries: cfg.MaxRetries}
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		opts.Creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	}
	client, err := minio.New(cfg.Endpoint, opts)
	if err != nil {
		return nil, fmt.Errorf("artifact: S3 client for %s: %w", cfg.Endpoint, err)
	}
	if clk == nil {
		clk = clock.Real{}
	}
	return &S3Registrar{client: client, bucket: cfg.Bucket, prefix: strings.Trim(cfg.Prefix, "/"), clock: clk}, nil
}

func (s *S3Registrar) key(parts ...string) string {
	return path.Join(append([]string{s.prefix}, parts...)...)
}

func (s *S3Registrar) uri(key string) string { return "s3://" + s.bucket + "/" + key }

// Publish implements Registrar.
func (s *S3Registrar) Publish(ctx context.Context, a Artifact) (Manifest, error) {
	p, err := prepare(a, s.clock.Now())
	if err != nil {
		return Manifest{}, err
	}
	fp := p.manifest.DatasetFingerprint
	mfKey := s.key(p.node, p.hex, ManifestFile)
	if m, err := s.readManifest(ctx, a.NodeID, fp, mfKey); !errors.Is(err, ErrNotFound) {
		return m, err
	}
	if err := p.encode(); err != nil {
		return Manifest{}, err
	}
	dataKey := s.key(p.node, p.hex, DataFile)
	_, err = s.client.PutObject(ctx, s.bucket, dataKey, bytes.NewReader(p.data), int64(len(p.data)),
		minio.PutObjectOptions{ContentType: "application/vnd.apache.parquet"})
	if err != nil {
		return Manifest{}, errorf(err, a.NodeID, fp, "put %s", s.uri(dataKey))
	}
	opts := minio.PutObjectOptions{ContentType: "application/json"}
	opts.SetMatchETagExcept("*")
	_, err = s.client.PutObject(ctx, s.bucket, mfKey, bytes.NewReader(p.mfJSON), int64(len(p.mfJSON)), opts)
	if code := minio.ToErrorResponse(err).Code; code == "PreconditionFailed" || code == "ConditionalRequestConflict" {
		return s.readManifest(ctx, a.NodeID, fp, mfKey)
	}
	if err != nil {
		return Manifest{}, errorf(err, a.NodeID, fp, "put %s", s.uri(mfKey))
	}
	p.manifest.URI = s.uri(mfKey)
	return p.manifest, nil
}

// Get implements Registrar.
func (s *S3Registrar) Get(ctx context.Context, nodeID, datasetFingerprint string) (Manifest, *frame.Frame, error) {
	node, err := NodeComponent(nodeID)
	if err != nil {
		return Manifest{}, nil, err
	}
	h, err := fingerprintHex(nodeID, datasetFingerprint)
	if err != nil {
		return Manifest{}, nil, err
	}
	m, err := s.readManifest(ctx, nodeID, datasetFingerprint, s.key(node, h, ManifestFile))
	if err != nil {
		return Manifest{}, nil, err
	}
	dataKey := s.key(node, h, DataFile)
	data, err := s.read(ctx, dataKey)
	if err != nil {
		if isNoSuchKey(err) {
			return Manifest{}, nil, errorf(ErrCorrupt, nodeID, datasetFingerprint, "manifest without data %s", s.uri(dataKey))
		}
		return Manifest{}, nil, errorf(err, nodeID, datasetFingerprint, "get %s", s.uri(dataKey))
	}
	f, err := decodeData(m, data)
	if err != nil {
		return Manifest{}, nil, err
	}
	return m, f, nil
}

// List implements Registrar.
func (s *S3Registrar) List(ctx context.Context, nodeID string) ([]Manifest, error) {
	node, err := NodeComponent(nodeID)
	if err != nil {
		return nil, err
	}
	nodePrefix := s.key(node) + "/"
	out := []Manifest{}
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: nodePrefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, errorf(obj.Err, nodeID, "", "list %s", s.uri(nodePrefix))
		}
		h, ok := strings.CutSuffix(strings.TrimPrefix(obj.Key, nodePrefix), "/"+ManifestFile)
		if !ok || !isHexDigest(h) {
			continue
		}
		m, err := s.readManifest(ctx, nodeID, "sha256:"+h, obj.Key)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	sortManifests(out)
	return out, nil
}

func (s *S3Registrar) read(ctx context.Context, key string) ([]byte, error) {
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	return io.ReadAll(obj)
}

func (s *S3Registrar) readManifest(ctx context.Context, nodeID, fp, key string) (Manifest, error) {
	b, err := s.read(ctx, key)
	if isNoSuchKey(err) {
		return Manifest{}, errorf(ErrNotFound, nodeID, fp, "no %s", s.uri(key))
	}
	if err != nil {
		return Manifest{}, errorf(err, nodeID, fp, "get %s", s.uri(key))
	}
	m, err := decodeManifest(nodeID, fp, b)
	if err != nil {
		return Manifest{}, err
	}
	m.URI = s.uri(key)
	return m, nil
}

func isNoSuchKey(err error) bool {
	return err != nil && minio.ToErrorResponse(err).Code == "NoSuchKey"
}
