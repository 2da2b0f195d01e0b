// "Conformance Quality" (the reference's name): conformance flags and warnings per
// node and flag type, schema validation failures.
local lib = import 'lib.libsonnet';
local t = lib.target;
local node = '{node_id=~"$node_id"}';

lib.dashboard(
  'Conformance Quality',
  'seamless-conformance-quality',
  'Conformance pipeline findings (seamless_conformance_flag_total, seamless_conformance_warning_total) and schema registry failures.',
  [
    lib.stat('Flags (15m)', [t('sum(increase(seamless_conformance_flag_total[15m]))')], 'short',
             'SeamlessConformanceFlagSpike fires above 50.', [[25, 'yellow'], [50, 'red']]),
    lib.stat('Warnings (15m)', [t('sum(increase(seamless_conformance_warning_total[15m]))')], 'short', '', [[1, 'yellow']]),
    lib.stat('Schema validation failures (1h)', [t('sum(increase(seamless_schema_validation_failures_total[1h])) or vector(0)')], 'short', '', [[1, 'red']]),
    lib.stat('Series with flags (1h)', [t('count(sum by (node_id, interval) (increase(seamless_conformance_flag_total[1h])) > 0) or vector(0)')], 'short'),

    lib.row('Findings'),
    lib.timeseries('Flags by type', [t('sum by (flag_type) (increase(seamless_conformance_flag_total%s[$__rate_interval]))' % node, '{{flag_type}}')], 'short', stack=true),
    lib.timeseries('Warnings by node', [t('sum by (node_id) (increase(seamless_conformance_warning_total%s[$__rate_interval]))' % node, '{{node_id}}')], 'short', stack=true),
    lib.table('Top nodes by flags (1h)', [t('topk(10, sum by (node_id, interval, flag_type) (increase(seamless_conformance_flag_total%s[1h])))' % node, '', instant=true)]),
    lib.timeseries('Schema validation failures by subject and mode', [t('sum by (subject, mode) (increase(seamless_schema_validation_failures_total[$__rate_interval]))', '{{subject}} ({{mode}})')], 'short'),
  ],
)
