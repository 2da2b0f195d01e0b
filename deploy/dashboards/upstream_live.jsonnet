// Upstream & Live: upstream source requests, rate limiting, retries and live feed
// reconnects.
local lib = import 'lib.libsonnet';
local t = lib.target;

lib.dashboard(
  'Seamless Upstream & Live',
  'seamless-upstream-live',
  'Upstream source calls by status, rate limiting, backfill retries, and live feed reconnects.',
  [
    lib.stat('Upstream calls/s', [t('sum(rate(seamless_upstream_requests_total[$__rate_interval]))')], 'reqps'),
    lib.stat('Rate limited (share, 10m)', [t('sum(rate(seamless_upstream_rate_limited_total[10m])) / sum(rate(seamless_upstream_requests_total[10m]))')], 'percentunit',
             'SeamlessUpstreamRateLimited fires above 5 % for 10m.', [[0.01, 'yellow'], [0.05, 'red']]),
    lib.stat('Live reconnects (10m)', [t('sum(increase(seamless_live_reconnects_total[10m]))')], 'short',
             'SeamlessLiveFeedDown fires above 10 per source in 10m.', [[3, 'yellow'], [10, 'red']]),
    lib.stat('Backfill retries (1h)', [t('sum(increase(backfill_retry_total[1h]))')], 'short', '', [[10, 'yellow'], [100, 'red']]),

    lib.row('Upstream'),
    lib.timeseries('Upstream calls by source and code', [t('sum by (source, code) (rate(seamless_upstream_requests_total[$__rate_interval]))', '{{source}} {{code}}')], 'reqps', stack=true),
    lib.timeseries('Rate limited by source', [t('sum by (source) (rate(seamless_upstream_rate_limited_total[$__rate_interval]))', '{{source}}')], 'reqps'),
    lib.timeseries('Backfill retries by node', [t('sum by (node_id) (rate(backfill_retry_total[$__rate_interval]))', '{{node_id}}')], 'ops'),

    lib.row('Live'),
    lib.timeseries('Live reconnects by source', [t('sum by (source) (increase(seamless_live_reconnects_total[$__rate_interval]))', '{{source}}')], 'short'),
    lib.timeseries('Bars served from live', [t('sum(rate(seamless_bars_served_total{tier="live"}[$__rate_interval]))', 'live')], 'short'),
  ],
  nodeFilter=false,
)
