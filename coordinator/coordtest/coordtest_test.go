package coordtest_test

import (
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/coordinator/coordtest"
	"github.com/seamless-data/seamless/coordinator/etcdcoord"
	"github.com/seamless-data/seamless/coordinator/leaseapi"
	"github.com/seamless-data/seamless/internal/etcdtest"
)

func TestMemCoordinator(t *testing.T) {
	t.Parallel()
	coordtest.Run(t, func(*testing.T) seamless.Coordinator { return seamless.NewMemCoordinator(nil) })
	coordtest.RunPeers(t, func(*testing.T) (a, b seamless.Coordinator) {
		// One process: both "peers" are the process's one guard.
		c := seamless.NewMemCoordinator(nil)
		return c, c
	})
}

// prefixes gives every subtest its own key space in a shared etcd, so that one etcd
// serves the whole suite as many fresh, empty backends.
var prefixes atomic.Int64

func freshPrefix() string { return fmt.Sprintf("/coordtest/%d/", prefixes.Add(1)) }

func client(t *testing.T, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// runEtcd runs the suite on etcd: a is the client of Run and of the first peer, b the
// client of the second peer.
func runEtcd(t *testing.T, a, b []string) {
	coordtest.Run(t, func(t *testing.T) seamless.Coordinator {
		return etcdcoord.New(client(t, a...), etcdcoord.Options{Prefix: freshPrefix(), Holder: "run"})
	})
	coordtest.RunPeers(t, func(t *testing.T) (seamless.Coordinator, seamless.Coordinator) {
		p := freshPrefix()
		return etcdcoord.New(client(t, a...), etcdcoord.Options{Prefix: p, Holder: "a"}),
			etcdcoord.New(client(t, b...), etcdcoord.Options{Prefix: p, Holder: "b"})
	})
}

func TestEtcdSingleNode(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	runEtcd(t, []string{srv.Endpoint}, []string{srv.Endpoint})
}

// TestEtcdThreeMembers runs the suite on a 3-member cluster. The two peers talk to
// different members (the first and the last), so every cross-process check also
// crosses the cluster's replication.
func TestEtcdThreeMembers(t *testing.T) {
	t.Parallel()
	c := etcdtest.StartCluster(t, 3)
	eps := c.Endpoints()
	runEtcd(t, eps[:1], eps[2:])
}

// TestLeaseAPIClient runs the suite on the HTTP lease API client against a lease API
// server over the in-process coordinator, as `seamless coordinator` serves it.
func TestLeaseAPIClient(t *testing.T) {
	t.Parallel()
	server := func(t *testing.T) string {
		srv := httptest.NewServer(leaseapi.NewHandler(seamless.NewMemCoordinator(nil)))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	coordtest.Run(t, func(t *testing.T) seamless.Coordinator { return leaseapi.NewClient(server(t), nil) })
	coordtest.RunPeers(t, func(t *testing.T) (seamless.Coordinator, seamless.Coordinator) {
		u := server(t)
		return leaseapi.NewClient(u, nil), leaseapi.NewClient(u, nil)
	})
}

// TestLeaseAPIClientOverEtcd runs the suite on the HTTP lease API client against a
// lease API server over the etcd coordinator of a 3-member cluster: what `seamless
// serve` exposes to the reference's Python clients in a cluster.
func TestLeaseAPIClientOverEtcd(t *testing.T) {
	t.Parallel()
	c := etcdtest.StartCluster(t, 3)
	server := func(t *testing.T) string {
		coord := etcdcoord.New(client(t, c.Endpoints()...), etcdcoord.Options{Prefix: freshPrefix(), Holder: "leaseapi"})
		srv := httptest.NewServer(leaseapi.NewHandler(coord))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	coordtest.Run(t, func(t *testing.T) seamless.Coordinator { return leaseapi.NewClient(server(t), nil) })
	coordtest.RunPeers(t, func(t *testing.T) (seamless.Coordinator, seamless.Coordinator) {
		u := server(t)
		return leaseapi.NewClient(u, nil), leaseapi.NewClient(u, nil)
	})
}
