// "Seamless SLA Overview" (the reference's name): request outcomes, per-phase SLA
// latency against the budgets, violations and downgrades.
local lib = import 'lib.libsonnet';
local t = lib.target;
local node = '{node_id=~"$node_id"}';

lib.dashboard(
  'Seamless SLA Overview',
  'seamless-sla-overview',
  'Fetch requests, SLA phase latency (seamless_sla_deadline_seconds), violations and downgrades.',
  [
    lib.stat('p99 total (recording rule)', [t('max(seamless_sla_total_p99_seconds%s)' % node)], 's',
             'seamless_sla_total_p99_seconds: the p99 of the total phase over 5m. SeamlessSla99thDegraded fires above 240 s for 5m.',
             [[60, 'yellow'], [240, 'red']]),
    lib.stat('Requests/s', [t('sum(rate(seamless_requests_total[$__rate_interval]))')], 'reqps'),
    lib.stat('Error ratio (5m)', [t('seamless:request_errors:ratio_rate5m')], 'percentunit',
             'Share of fetches ending in upstream_failed, sla_exceeded or internal.', [[0.001, 'yellow'], [0.01, 'red']]),
    lib.stat('SLA violations (1h)', [t('sum(increase(seamless_sla_violations_total[1h]))')], 'short', '', [[1, 'yellow'], [20, 'red']]),

    lib.row('Latency'),
    lib.timeseries('SLA phase p99 by phase', [t(lib.quantile('0.99', 'seamless_sla_deadline_seconds', ['phase'], node), '{{phase}}')], 's',
                   'Per-phase p99 from the seamless_sla_deadline_seconds histogram (buckets 1 ms to 600 s).'),
    lib.timeseries('Total p50 / p95 / p99', [
      t(lib.quantile('0.5', 'seamless_sla_deadline_seconds', [], '{phase="total",node_id=~"$node_id"}'), 'p50'),
      t(lib.quantile('0.95', 'seamless_sla_deadline_seconds', [], '{phase="total",node_id=~"$node_id"}'), 'p95'),
      t('max(seamless_sla_total_p99_seconds%s)' % node, 'p99 (recorded)'),
    ], 's'),
    lib.timeseries('Request latency p95 by strategy', [t(lib.quantile('0.95', 'seamless_request_duration_seconds', ['strategy']), '{{strategy}}')], 's'),
    lib.timeseries('Phase time share (avg seconds per request)', [
      t('sum by (phase) (rate(seamless_sla_deadline_seconds_sum%s[$__rate_interval])) / sum by (phase) (rate(seamless_sla_deadline_seconds_count%s[$__rate_interval]))' % [node, node], '{{phase}}'),
    ], 's'),

    lib.row('Outcomes'),
    lib.timeseries('Requests by strategy and code', [t('sum by (strategy, code) (rate(seamless_requests_total[$__rate_interval]))', '{{strategy}} {{code}}')], 'reqps', stack=true),
    lib.timeseries('SLA violations by phase and mode', [t('sum by (phase, mode) (increase(seamless_sla_violations_total[$__rate_interval]))', '{{phase}} → {{mode}}')], 'short', stack=true),
    lib.timeseries('Downgrades', [
      t('sum by (reason) (increase(domain_gate_holds_total[$__rate_interval]))', 'hold: {{reason}}'),
      t('sum by (reason) (increase(partial_fill_returns_total[$__rate_interval]))', 'partial_fill: {{reason}}'),
    ], 'short', 'hold responses must not be traded on; partial_fill responses keep backfilling in the background.', stack=true),
    lib.timeseries('Bars served by tier', [t('sum by (tier) (rate(seamless_bars_served_total[$__rate_interval]))', '{{tier}}')], 'short', stack=true),
  ],
)
