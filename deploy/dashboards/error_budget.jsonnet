// Error Budget: the availability and latency SLOs of docs/operations.md, from the
// recording rules in deploy/prometheus/rules.yml.
local lib = import 'lib.libsonnet';
local t = lib.target;

lib.dashboard(
  'Seamless Error Budget',
  'seamless-error-budget',
  'Availability SLO 99.9 % of fetches without a server-side error over 30 days; latency SLO 99 % of fetches completing within 60 s (the baseline total_deadline). SeamlessErrorBudgetBurn pages at 14.4x burn.',
  [
    lib.stat('Availability (30d)', [t('1 - seamless:request_errors:ratio_rate30d')], 'percentunit', '', [[0.999, 'green']], 'red'),
    lib.stat('Availability budget left (30d)', [t('1 - seamless:request_errors:ratio_rate30d / 0.001')], 'percentunit', '', [[0.25, 'yellow'], [0.5, 'green']], 'red'),
    lib.stat('Within 60 s (30d)', [t('1 - seamless:sla_slow:ratio_rate30d')], 'percentunit', '', [[0.99, 'green']], 'red'),
    lib.stat('Latency budget left (30d)', [t('1 - seamless:sla_slow:ratio_rate30d / 0.01')], 'percentunit', '', [[0.25, 'yellow'], [0.5, 'green']], 'red'),

    lib.row('Burn rate'),
    lib.timeseries('Availability burn rate', [
      t('seamless:request_errors:ratio_rate5m / 0.001', '5m'),
      t('seamless:request_errors:ratio_rate1h / 0.001', '1h'),
      t('seamless:request_errors:ratio_rate6h / 0.001', '6h'),
    ], 'short', 'Multiples of the sustainable error rate; 14.4 for an hour spends 2 % of the 30-day budget.'),
    lib.timeseries('Latency burn rate', [
      t('seamless:sla_slow:ratio_rate5m / 0.01', '5m'),
      t('seamless:sla_slow:ratio_rate1h / 0.01', '1h'),
    ], 'short'),
    lib.timeseries('Server-side errors by code', [t('sum by (code) (rate(seamless_requests_total{code=~"upstream_failed|sla_exceeded|internal"}[$__rate_interval]))', '{{code}}')], 'reqps', stack=true),
    lib.timeseries('All outcomes', [t('sum by (code) (rate(seamless_requests_total[$__rate_interval]))', '{{code}}')], 'reqps', stack=true),
  ],
  nodeFilter=false,
)
