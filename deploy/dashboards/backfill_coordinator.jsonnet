// "Backfill Coordinator Health" (the reference's name): leases, progress, retries,
// failures, stale claims and coordinator fallbacks.
local lib = import 'lib.libsonnet';
local t = lib.target;
local node = '{node_id=~"$node_id"}';

lib.dashboard(
  'Backfill Coordinator Health',
  'seamless-backfill-coordinator',
  'Backfill jobs and leases: backfill_completion_ratio per held lease, retries, failures, stale claims, coordinator fallbacks.',
  [
    lib.stat('Backfill jobs in progress', [t('sum(backfill_jobs_in_progress)')], 'short'),
    lib.stat('Leases held', [t('count(backfill_completion_ratio%s) or vector(0)' % node)], 'short'),
    lib.stat('Stale claims (1h)', [t('sum(increase(seamless_backfill_stale_claims_total[1h]))')], 'short',
             'Leases whose holder vanished before completing; their chunks are re-processed.', [[1, 'yellow'], [10, 'red']]),
    lib.stat('Coordinator fallbacks (1h)', [t('sum(increase(seamless_coordinator_fallback_total[1h]))')], 'short',
             'Backfills that ran under the local guard because the coordinator was unreachable.', [[1, 'red']]),

    lib.row('Leases'),
    lib.table('Held leases below 50 % (10m min)', [t('min_over_time(backfill_completion_ratio%s[10m]) < 0.5' % node, '', instant=true)], 'percentunit',
              'The SeamlessBackfillStuckLease condition: a lease listed here for 10 minutes pages.'),
    lib.timeseries('Completion ratio per lease', [t('backfill_completion_ratio%s' % node, '{{lease_key}}')], 'percentunit',
                   'One series per held lease; the series is removed when the lease ends.'),

    lib.row('Work'),
    lib.timeseries('Retries and failures', [
      t('sum by (node_id) (rate(backfill_retry_total%s[$__rate_interval]))' % node, 'retry {{node_id}}'),
      t('sum by (node_id) (rate(backfill_failure_total%s[$__rate_interval]))' % node, 'failed chunk {{node_id}}'),
    ], 'ops'),
    lib.timeseries('Gap repair latency p50 / p95', [
      t(lib.quantile('0.5', 'gap_repair_latency_ms', [], node), 'p50'),
      t(lib.quantile('0.95', 'gap_repair_latency_ms', [], node), 'p95'),
    ], 'ms', 'From claiming a missing chunk to its bars being stored.'),
    lib.timeseries('Backfill frontier age', [t('time() - max by (node_id, interval) (backfill_last_timestamp%s)' % node, '{{node_id}} @{{interval}}s')], 's',
                   'Age of the newest bar backfill wrote per series.'),
    lib.timeseries('Stale claims and fallbacks', [
      t('sum(increase(seamless_backfill_stale_claims_total[$__rate_interval]))', 'stale claims'),
      t('sum(increase(seamless_coordinator_fallback_total[$__rate_interval]))', 'coordinator fallbacks'),
    ], 'short'),
  ],
)
