// Package cluster holds the end-to-end tests of a Seamless cluster: several `seamless
// serve` processes built from this repository, sharing one PostgreSQL store and
// coordinating backfill through a multi-member etcd cluster, against an upstream that
// speaks Binance's klines REST format and counts what it is asked for.
//
// The tests check the cluster's promises from the outside (docs/cluster.md): every
// aligned chunk is fetched upstream once even when requests overlap across processes;
// a process killed mid-backfill leaves stale claims that the others detect and finish,
// with at most one extra upstream fetch per chunk it held; fencing tokens keep a late
// writer from overwriting newer data; the lease API speaks the reference's wire
// protocol; and losing one etcd member does not stop serving or backfilling.
//
// The tests run in parallel: TestClusterBackfill spends most of its time waiting for the
// killed process's leases to expire (their TTL, 120 s), and the others fit in that wait.
//
// The package has no non-test code. Its tests need a PostgreSQL server
// (SEAMLESS_TEST_POSTGRES_DSN, set by .ci/run) and build cmd/seamless with the go tool
// on PATH; etcd runs embedded in the test process.
package cluster
