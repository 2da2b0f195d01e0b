// Coverage & Freshness: coverage ratio and staleness of the latest response per
// series, and the holds they cause.
local lib = import 'lib.libsonnet';
local t = lib.target;
local node = '{node_id=~"$node_id"}';

lib.dashboard(
  'Seamless Coverage & Freshness',
  'seamless-coverage-freshness',
  'coverage_ratio and live_staleness_seconds of the latest response per series; coverage_breach and freshness_breach holds.',
  [
    lib.stat('Lowest coverage', [t('min(coverage_ratio%s)' % node)], 'percentunit', '', [[0.9, 'yellow'], [0.98, 'green']], 'red'),
    lib.stat('Coverage holds (1h)', [t('sum(increase(domain_gate_holds_total{reason="coverage_breach"}[1h])) or vector(0)')], 'short', '', [[1, 'yellow']]),
    lib.stat('Freshness holds (1h)', [t('sum(increase(domain_gate_holds_total{reason="freshness_breach"}[1h])) or vector(0)')], 'short', '', [[1, 'yellow']]),
    lib.stat('Cache hit ratio', [t('sum(rate(seamless_cache_hit_total[$__rate_interval])) / (sum(rate(seamless_cache_hit_total[$__rate_interval])) + sum(rate(seamless_cache_miss_total[$__rate_interval])))')], 'percentunit'),

    lib.row('Per series'),
    lib.timeseries('Coverage ratio', [t('coverage_ratio%s' % node, '{{node_id}} @{{interval}}s')], 'percentunit',
                   'Share of the requested grid covered by the latest response (below min_coverage → hold, coverage_breach).'),
    lib.timeseries('Staleness of the newest bar', [t('live_staleness_seconds%s' % node, '{{node_id}} @{{interval}}s')], 's',
                   'Age of the newest bar of the latest response; large for historical requests by design, compare with max_lag_seconds only for requests reaching into the present.'),
    lib.table('Series below full coverage', [t('coverage_ratio%s < 1' % node, '', instant=true)], 'percentunit'),
    lib.timeseries('Holds by reason', [t('sum by (reason) (increase(domain_gate_holds_total[$__rate_interval]))', '{{reason}}')], 'short', stack=true),
  ],
)
