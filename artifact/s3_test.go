package artifact_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/seamless-data/seamless/artifact"
	"github.com/seamless-data/seamless/artifact/artifacttest"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/grid"
)

const bucket = "seamless-artifacts"

// fakeS3 starts an in-process S3 server (gofakes3 over httptest, on loopback) with an
// empty bucket and returns the config to reach it.
func fakeS3(t *testing.T, tls bool, prefix string) artifact.S3Config {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	handler := gofakes3.New(backend).Server()
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(handler)
	} else {
		srv = httptest.NewServer(handler)
	}
	t.Cleanup(srv.Close)
	return artifact.S3Config{
		Endpoint:  srv.Listener.Addr().String(),
		Bucket:    bucket,
		AccessKey: "seamless",
		SecretKey: "seamless-secret",
		Prefix:    prefix,
		TLS:       tls,
		Transport: srv.Client().Transport.(*http.Transport).Clone(),
	}
}

func newS3(t *testing.T, cfg artifact.S3Config, clk clock.Clock) *artifact.S3Registrar {
	t.Helper()
	r, err := artifact.NewS3Registrar(cfg, clk)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestS3RegistrarContract(t *testing.T) {
	for _, c := range []struct {
		name   string
		tls    bool
		prefix string
	}{{"plain", false, ""}, {"TLS with prefix", true, "/team/artifacts/"}} {
		t.Run(c.name, func(t *testing.T) {
			artifacttest.Run(t, func(t *testing.T, clk clock.Clock) artifact.Registrar {
				return newS3(t, fakeS3(t, c.tls, c.prefix), clk)
			})
		})
	}
}

// rawClient talks to the fake server directly, to inspect and tamper with objects.
func rawClient(t *testing.T, cfg artifact.S3Config) *minio.Client {
	t.Helper()
	c, err := minio.New(cfg.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""), Region: "us-east-1", Transport: cfg.Transport})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func keys(t *testing.T, c *minio.Client) []string {
	t.Helper()
	var out []string
	for obj := range c.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		out = append(out, obj.Key)
	}
	return out
}

func TestS3Layout(t *testing.T) {
	cfg := fakeS3(t, false, "team/artifacts")
	r := newS3(t, cfg, clock.NewFake(artifacttest.Epoch))
	m, err := r.Publish(context.Background(), artifact.Artifact{NodeID: "ohlcv:binance:BTC/USDT:1m", Interval: 60, Range: grid.R(0, 600), Frame: artifacttest.OHLCV(0, 60, 10)})
	if err != nil {
		t.Fatal(err)
	}
	dir := "team/artifacts/ohlcv%3Abinance%3ABTC%2FUSDT%3A1m/" + strings.TrimPrefix(m.DatasetFingerprint, "sha256:")
	if got, want := keys(t, rawClient(t, cfg)), []string{dir + "/data.parquet", dir + "/manifest.json"}; !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
	if want := "s3://" + bucket + "/" + dir + "/manifest.json"; m.URI != want {
		t.Errorf("URI %s, want %s", m.URI, want)
	}
}

func TestS3DetectsCorruptionAndMissingData(t *testing.T) {
	ctx := context.Background()
	cfg := fakeS3(t, false, "")
	r := newS3(t, cfg, nil)
	raw := rawClient(t, cfg)
	node := "ohlcv:x:y:1m"
	m, err := r.Publish(ctx, artifact.Artifact{NodeID: node, Interval: 60, Range: grid.R(0, 6000), Frame: artifacttest.OHLCV(0, 60, 100)})
	if err != nil {
		t.Fatal(err)
	}
	dataKey := "ohlcv%3Ax%3Ay%3A1m/" + strings.TrimPrefix(m.DatasetFingerprint, "sha256:") + "/data.parquet"
	junk := []byte("PAR1 not really")
	if _, err := raw.PutObject(ctx, bucket, dataKey, bytes.NewReader(junk), int64(len(junk)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Get(ctx, node, m.DatasetFingerprint); !errors.Is(err, artifact.ErrCorrupt) {
		t.Errorf("Get with junk data: %v, want ErrCorrupt", err)
	}
	if err := raw.RemoveObject(ctx, bucket, dataKey, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Get(ctx, node, m.DatasetFingerprint); !errors.Is(err, artifact.ErrCorrupt) {
		t.Errorf("Get without data: %v, want ErrCorrupt", err)
	}
}

func TestS3Unreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close()
	r := newS3(t, artifact.S3Config{Endpoint: addr, Bucket: bucket, MaxRetries: 1}, nil)
	ctx := context.Background()
	_, err := r.Publish(ctx, artifact.Artifact{NodeID: "n", Interval: 1, Range: grid.R(0, 10), Frame: artifacttest.OHLCV(0, 1, 3)})
	if err == nil || errors.Is(err, artifact.ErrNotFound) || !strings.Contains(err.Error(), `artifact "n"`) {
		t.Errorf("Publish to a closed server: %v (want an error naming the node)", err)
	}
	if _, _, err := r.Get(ctx, "n", "sha256:"+strings.Repeat("a", 64)); err == nil || errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("Get from a closed server: %v (must not look like a missing artifact)", err)
	}
	if _, err := artifact.NewS3Registrar(artifact.S3Config{Bucket: bucket}, nil); !errors.Is(err, artifact.ErrInvalid) {
		t.Errorf("config without endpoint: %v", err)
	}
}
