package etcdtest

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// Cluster is a running multi-member embedded etcd cluster on loopback: every member is
// a real etcd server with its own data directory and peer and client listeners, so
// quorum, leader election and member failure behave as in production.
type Cluster struct {
	Members []*Server
}

// StartCluster runs an n-member etcd cluster in t.TempDir() until the test ends. It
// returns once every member has joined and the cluster has a leader.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("etcdtest: a cluster needs at least one member, got %d", n)
	}
	cfgs := make([]*embed.Config, n)
	var initial []string
	for i := range cfgs {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i+1)
		cfg.Dir = t.TempDir()
		cfg.LogLevel = "panic" // stopping a member logs its closed listeners as errors
		cfg.InitialClusterToken = "etcdtest-" + t.Name()
		peer, client := freeURL(t), freeURL(t)
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
		initial = append(initial, cfg.Name+"="+peer.String())
		cfgs[i] = cfg
	}
	c := &Cluster{Members: make([]*Server, n)}
	t.Cleanup(c.Stop)
	// Members start concurrently: each waits for a quorum of peers before it is ready.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, cfg := range cfgs {
		cfg.InitialCluster = strings.Join(initial, ",")
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := embed.StartEtcd(cfg)
			if err != nil {
				errs[i] = fmt.Errorf("start member %s: %w", cfg.Name, err)
				return
			}
			c.Members[i] = &Server{Endpoint: cfg.ListenClientUrls[0].Host, etcd: e}
			select {
			case <-e.Server.ReadyNotify():
			case <-time.After(60 * time.Second):
				errs[i] = fmt.Errorf("member %s not ready after 60s", cfg.Name)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("etcdtest: %v", err)
		}
	}
	return c
}

// Endpoints are the members' client addresses (host:port), in member order.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.Members))
	for i, m := range c.Members {
		eps[i] = m.Endpoint
	}
	return eps
}

// URL is the cluster as a Seamless coordinator URL: etcd://m1,m2,….
func (c *Cluster) URL() string { return "etcd://" + strings.Join(c.Endpoints(), ",") }

// Client returns a client of all members, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Leader returns the index of the member that currently leads, or -1 when none of the
// running members does.
func (c *Cluster) Leader() int {
	for i, m := range c.Members {
		if m.running() && m.etcd.Server.Leader() == m.etcd.Server.MemberID() {
			return i
		}
	}
	return -1
}

// Stop shuts every member down (idempotent).
func (c *Cluster) Stop() {
	for _, m := range c.Members {
		if m != nil {
			m.Stop()
		}
	}
}

// running reports whether the member has not been stopped.
func (s *Server) running() bool {
	select {
	case <-s.etcd.Server.StopNotify():
		return false
	default:
		return true
	}
}
