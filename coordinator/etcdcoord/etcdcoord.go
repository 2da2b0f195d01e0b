// Package etcdcoord is the cluster Coordinator: backfill chunk leases kept in etcd, so
// that every process of a Seamless cluster agrees on who fetches which chunk.
//
// Keys (all under Options.Prefix, default "/seamless/"):
//
//	leases/{key}   the held lease: bound to an etcd lease with the claim's TTL, so it
//	               disappears by itself when the holder stops renewing (crash, partition)
//	claims/{key}   the claim record, written with the lease and deleted only by Complete
//	               or Fail; a claim record without a lease key is a stale claim
//	failed/{key}   the last failure of the chunk: reason, token, time
//
// The fencing token of a lease is the etcd revision at which its lease key was created:
// revisions only grow, so a later claim always has a larger token, in every process.
// Chunk keys come from seamless.ChunkKey, which escapes node ids, so they are safe path
// components.
package etcdcoord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/seamless-data/seamless"
)

// Options configure a Coordinator.
type Options struct {
	// Prefix of every key (default "/seamless/").
	Prefix string
	// Holder names this process in lease records (default "seamless").
	Holder string
	Logger *slog.Logger
	// OnStaleClaim, if set, is called for each stale claim found (e.g. a metric).
	OnStaleClaim func()
}

// Coordinator implements seamless.Coordinator on etcd.
type Coordinator struct {
	cli    *clientv3.Client
	prefix string
	holder string
	log    *slog.Logger

	mu     sync.Mutex
	leases map[string]heldLease // key → the claim this process holds

	stale   atomic.Int64
	onStale func()
}

// heldLease is a claim this process holds: its etcd lease and fencing token.
type heldLease struct {
	id    clientv3.LeaseID
	token uint64
}

// New returns a Coordinator using an existing etcd client. The caller closes the client.
func New(cli *clientv3.Client, opts Options) *Coordinator {
	if opts.Prefix == "" {
		opts.Prefix = "/seamless/"
	}
	if !strings.HasSuffix(opts.Prefix, "/") {
		opts.Prefix += "/"
	}
	if opts.Holder == "" {
		opts.Holder = "seamless"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Coordinator{cli: cli, prefix: opts.Prefix, holder: opts.Holder, log: opts.Logger, leases: map[string]heldLease{}, onStale: opts.OnStaleClaim}
}

func (c *Coordinator) leaseKey(k string) string  { return c.prefix + "leases/" + k }
func (c *Coordinator) claimKey(k string) string  { return c.prefix + "claims/" + k }
func (c *Coordinator) failedKey(k string) string { return c.prefix + "failed/" + k }

// record is the value of lease and claim keys.
type record struct {
	Holder       string  `json:"holder"`
	Token        uint64  `json:"token,omitempty"`
	LeaseUntilMS int64   `json:"lease_until_ms"`
	Progress     float64 `json:"progress,omitempty"`
}

// Failure is a chunk's recorded failure.
type Failure struct {
	Key    string    `json:"key"`
	Reason string    `json:"reason"`
	Token  uint64    `json:"token"`
	At     time.Time `json:"at"`
}

func ttlSeconds(ttl time.Duration) int64 { return int64(math.Ceil(ttl.Seconds())) }

// Claim implements seamless.Coordinator. One transaction creates the lease key (bound
// to a fresh etcd lease) only if it does not exist, writes the claim record and reads
// the previous claim record: if one was there, its holder vanished without Complete or
// Fail, which is a stale claim, counted and logged.
func (c *Coordinator) Claim(ctx context.Context, key string, ttl time.Duration) (seamless.Lease, error) {
	if ttl <= 0 {
		return seamless.Lease{}, fmt.Errorf("claim %s: ttl must be positive, got %v", key, ttl)
	}
	grant, err := c.cli.Grant(ctx, ttlSeconds(ttl))
	if err != nil {
		return seamless.Lease{}, fmt.Errorf("claim %s: grant etcd lease: %w", key, err)
	}
	until := time.Now().Add(ttl).UnixMilli()
	val, _ := json.Marshal(record{Holder: c.holder, LeaseUntilMS: until})
	lk, ck := c.leaseKey(key), c.claimKey(key)
	resp, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(lk), "=", 0)).
		Then(clientv3.OpGet(ck), clientv3.OpPut(lk, string(val), clientv3.WithLease(grant.ID)), clientv3.OpPut(ck, string(val))).
		Else(clientv3.OpGet(lk)).
		Commit()
	if err != nil {
		c.revoke(grant.ID)
		return seamless.Lease{}, fmt.Errorf("claim %s: %w", key, err)
	}
	if !resp.Succeeded {
		c.revoke(grant.ID)
		var held record
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			json.Unmarshal(kvs[0].Value, &held)
			return seamless.Lease{}, fmt.Errorf("claim %s: %w (holder %s, token %d)", key, seamless.ErrLeaseHeld, held.Holder, kvs[0].CreateRevision)
		}
		return seamless.Lease{}, fmt.Errorf("claim %s: %w", key, seamless.ErrLeaseHeld)
	}
	token := uint64(resp.Header.Revision)
	if prev := resp.Responses[0].GetResponseRange().Kvs; len(prev) > 0 {
		var old record
		json.Unmarshal(prev[0].Value, &old)
		c.stale.Add(1)
		if c.onStale != nil {
			c.onStale()
		}
		c.log.Warn("seamless.backfill.stale_claim", "lease_key", key, "stale_holder", old.Holder, "stale_since_ms", old.LeaseUntilMS, "token", token)
	}
	c.mu.Lock()
	c.leases[key] = heldLease{id: grant.ID, token: token}
	c.mu.Unlock()
	c.log.Debug("seamless.backfill.coordinator_claimed", "lease_key", key, "token", token)
	return seamless.Lease{Key: key, Token: token, LeaseUntilMS: until}, nil
}

func (c *Coordinator) revoke(id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.cli.Revoke(ctx, id)
}

func (c *Coordinator) leaseOf(ctx context.Context, l seamless.Lease) (clientv3.LeaseID, error) {
	c.mu.Lock()
	h, ok := c.leases[l.Key]
	c.mu.Unlock()
	// Matching the token too keeps a late or wrong caller from ending (and revoking the
	// etcd lease of) the claim this process holds now.
	if ok && h.token == l.Token {
		return h.id, nil
	}
	if ok {
		return 0, fmt.Errorf("lease %s token %d: %w (the current token differs)", l.Key, l.Token, seamless.ErrLeaseLost)
	}
	// Claimed through another process (a worker behind a load balancer, an operator's
	// seamless leases fail): the key itself names its etcd lease, and its create
	// revision is the token to match.
	resp, err := c.cli.Get(ctx, c.leaseKey(l.Key))
	if err != nil {
		return 0, fmt.Errorf("lease %s: %w", l.Key, err)
	}
	if len(resp.Kvs) == 0 || uint64(resp.Kvs[0].CreateRevision) != l.Token || resp.Kvs[0].Lease == 0 {
		return 0, fmt.Errorf("lease %s token %d is not held: %w", l.Key, l.Token, seamless.ErrLeaseLost)
	}
	return clientv3.LeaseID(resp.Kvs[0].Lease), nil
}

// Renew implements seamless.Coordinator. An etcd lease keeps the TTL it was granted
// with, so Renew moves the lease key to a fresh etcd lease of ttl — in a transaction
// that first checks the key still carries l's token; a put keeps the key's create
// revision, so the token does not change — rewrites the record with the new deadline
// (what Inspect shows), and revokes the old etcd lease, which no longer holds the key.
func (c *Coordinator) Renew(ctx context.Context, l seamless.Lease, ttl time.Duration) (seamless.Lease, error) {
	if ttl <= 0 {
		return seamless.Lease{}, fmt.Errorf("renew %s: ttl must be positive, got %v", l.Key, ttl)
	}
	old, err := c.leaseOf(ctx, l)
	if err != nil {
		return seamless.Lease{}, err
	}
	grant, err := c.cli.Grant(ctx, ttlSeconds(ttl))
	if err != nil {
		return seamless.Lease{}, fmt.Errorf("renew %s: grant etcd lease: %w", l.Key, err)
	}
	until := time.Now().Add(ttl).UnixMilli()
	val, _ := json.Marshal(record{Holder: c.holder, LeaseUntilMS: until})
	lk := c.leaseKey(l.Key)
	resp, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(lk), "=", int64(l.Token))).
		Then(clientv3.OpPut(lk, string(val), clientv3.WithLease(grant.ID))).
		Commit()
	if err != nil {
		c.revoke(grant.ID)
		return seamless.Lease{}, fmt.Errorf("renew %s: %w", l.Key, err)
	}
	if !resp.Succeeded {
		c.revoke(grant.ID)
		return seamless.Lease{}, fmt.Errorf("renew %s token %d: %w", l.Key, l.Token, seamless.ErrLeaseLost)
	}
	c.mu.Lock()
	c.leases[l.Key] = heldLease{id: grant.ID, token: l.Token}
	c.mu.Unlock()
	c.revoke(old)
	l.LeaseUntilMS = until
	return l, nil
}

// end deletes the lease and claim keys if the lease key still carries l's token, and
// applies extra ops (the failure record) in the same transaction.
func (c *Coordinator) end(ctx context.Context, l seamless.Lease, id clientv3.LeaseID, extra []clientv3.Op) error {
	lk := c.leaseKey(l.Key)
	ops := append([]clientv3.Op{clientv3.OpDelete(lk), clientv3.OpDelete(c.claimKey(l.Key))}, extra...)
	resp, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(lk), "=", int64(l.Token))).
		Then(ops...).
		Commit()
	c.mu.Lock()
	delete(c.leases, l.Key)
	c.mu.Unlock()
	c.revoke(id)
	if err != nil {
		return fmt.Errorf("end lease %s: %w", l.Key, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("end lease %s token %d: %w", l.Key, l.Token, seamless.ErrLeaseLost)
	}
	return nil
}

// Complete implements seamless.Coordinator.
func (c *Coordinator) Complete(ctx context.Context, l seamless.Lease) error {
	id, err := c.leaseOf(ctx, l)
	if err != nil {
		return err
	}
	if err := c.end(ctx, l, id, []clientv3.Op{clientv3.OpDelete(c.failedKey(l.Key))}); err != nil {
		return err
	}
	c.log.Debug("seamless.backfill.coordinator_completed", "lease_key", l.Key, "token", l.Token)
	return nil
}

// Fail implements seamless.Coordinator: the chunk's failure is recorded for operators
// (Failures, Retry) in the same transaction that releases the lease.
func (c *Coordinator) Fail(ctx context.Context, l seamless.Lease, reason string) error {
	id, err := c.leaseOf(ctx, l)
	if err != nil {
		return err
	}
	rec, _ := json.Marshal(Failure{Key: l.Key, Reason: reason, Token: l.Token, At: time.Now().UTC()})
	if err := c.end(ctx, l, id, []clientv3.Op{clientv3.OpPut(c.failedKey(l.Key), string(rec))}); err != nil {
		return err
	}
	c.log.Warn("seamless.backfill.coordinator_failed", "lease_key", l.Key, "token", l.Token, "reason", reason)
	return nil
}

// Wait implements seamless.Coordinator by watching the lease key for its deletion
// (Complete, Fail or etcd lease expiry).
func (c *Coordinator) Wait(ctx context.Context, key string) error {
	lk := c.leaseKey(key)
	resp, err := c.cli.Get(ctx, lk)
	if err != nil {
		return fmt.Errorf("wait %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for wr := range c.cli.Watch(wctx, lk, clientv3.WithRev(resp.Header.Revision+1)) {
		if err := wr.Err(); err != nil {
			return fmt.Errorf("wait %s: %w", key, err)
		}
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypeDelete {
				return nil
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("wait %s: watch closed", key)
}

// Inspect implements seamless.Coordinator.
func (c *Coordinator) Inspect(ctx context.Context) ([]seamless.LeaseInfo, error) {
	resp, err := c.cli.Get(ctx, c.prefix+"leases/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("inspect leases: %w", err)
	}
	out := make([]seamless.LeaseInfo, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var r record
		json.Unmarshal(kv.Value, &r)
		out = append(out, seamless.LeaseInfo{
			Lease:  seamless.Lease{Key: strings.TrimPrefix(string(kv.Key), c.prefix+"leases/"), Token: uint64(kv.CreateRevision), LeaseUntilMS: r.LeaseUntilMS},
			Holder: r.Holder,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Failures lists the chunks whose last lease ended in Fail.
func (c *Coordinator) Failures(ctx context.Context) ([]Failure, error) {
	resp, err := c.cli.Get(ctx, c.prefix+"failed/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list failures: %w", err)
	}
	out := make([]Failure, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var f Failure
		if err := json.Unmarshal(kv.Value, &f); err != nil {
			return nil, fmt.Errorf("failure record %s: %w", kv.Key, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// ClearFailure forgets a chunk's failure record (after an operator fixed the cause; the
// next request for the chunk retries it).
func (c *Coordinator) ClearFailure(ctx context.Context, key string) error {
	_, err := c.cli.Delete(ctx, c.failedKey(key))
	return err
}

// Release forcibly frees a held lease (operator action for a stuck holder). The old
// holder's later Renew, Complete or Fail see ErrLeaseLost, and its late store writes
// carry a smaller fencing token than the next claimer's.
func (c *Coordinator) Release(ctx context.Context, key string) error {
	resp, err := c.cli.Get(ctx, c.leaseKey(key))
	if err != nil {
		return err
	}
	if len(resp.Kvs) == 0 {
		return fmt.Errorf("release %s: not held", key)
	}
	if id := clientv3.LeaseID(resp.Kvs[0].Lease); id != 0 {
		if _, err := c.cli.Revoke(ctx, id); err != nil {
			return fmt.Errorf("release %s: %w", key, err)
		}
	}
	_, err = c.cli.Delete(ctx, c.leaseKey(key))
	return err
}

// StaleClaims is how many claims this process found abandoned by a vanished holder.
func (c *Coordinator) StaleClaims() int64 { return c.stale.Load() }

// Ping checks that etcd answers.
func (c *Coordinator) Ping(ctx context.Context) error {
	_, err := c.cli.Get(ctx, c.prefix+"ping")
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("etcd unreachable: %w", err)
	}
	return err
}

// ParseURL reads a coordinator URL etcd://host:port[,host:port…] into etcd endpoints.
func ParseURL(u string) ([]string, error) {
	rest, ok := strings.CutPrefix(u, "etcd://")
	if !ok || rest == "" {
		return nil, fmt.Errorf("coordinator URL %q: want etcd://host:port[,host:port…]", u)
	}
	var eps []string
	for _, hp := range strings.Split(strings.TrimSuffix(rest, "/"), ",") {
		if hp == "" || strings.ContainsAny(hp, "/?#@ ") {
			return nil, fmt.Errorf("coordinator URL %q: bad endpoint %q", u, hp)
		}
		eps = append(eps, hp)
	}
	return eps, nil
}

// Dial connects to the etcd cluster named by an etcd:// URL. It does not wait for the
// cluster: use Ping to check reachability.
func Dial(u string, opts Options) (*Coordinator, *clientv3.Client, error) {
	eps, err := ParseURL(u)
	if err != nil {
		return nil, nil, err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, nil, fmt.Errorf("coordinator %s: %w", u, err)
	}
	return New(cli, opts), cli, nil
}

// FailedChunks implements seamless.FailureLister.
func (c *Coordinator) FailedChunks(ctx context.Context) ([]seamless.ChunkFailure, error) {
	fs, err := c.Failures(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]seamless.ChunkFailure, len(fs))
	for i, f := range fs {
		out[i] = seamless.ChunkFailure{Key: f.Key, Reason: f.Reason, Token: f.Token, At: f.At}
	}
	return out, nil
}
