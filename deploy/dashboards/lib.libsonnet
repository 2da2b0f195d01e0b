// Shared building blocks for the Seamless Grafana dashboards: plain Jsonnet, no
// grafonnet. Every panel queries the Prometheus data source picked by the
// ${datasource} variable, so a dashboard imports into any Grafana without edits.
//
// Grafana variables used inside PromQL: $node_id (regex over node ids, "All" = ".*")
// and $__rate_interval. The metric-name check in deploy_test.go substitutes them
// before parsing each expression with the Prometheus parser.
{
  local ds = { type: 'prometheus', uid: '${datasource}' },

  // target is one PromQL query of a panel.
  target(expr, legend='', instant=false):: {
    expr: expr,
    legendFormat: legend,
    datasource: ds,
    [if instant then 'instant']: true,
    [if instant then 'range']: false,
  },

  local base(type, title, targets, unit, description, w, h) = {
    type: type,
    title: title,
    description: description,
    datasource: ds,
    targets: [targets[i] { refId: std.char(65 + i) } for i in std.range(0, std.length(targets) - 1)],
    fieldConfig: { defaults: { unit: unit }, overrides: [] },
    // Layout hints, consumed (and removed) by dashboard().
    w:: w,
    h:: h,
  },

  // timeseries draws one or more queries over time.
  timeseries(title, targets, unit='short', description='', w=12, h=8, stack=false)::
    base('timeseries', title, targets, unit, description, w, h) {
      fieldConfig+: { defaults+: { custom: { fillOpacity: if stack then 30 else 10, stacking: { mode: if stack then 'normal' else 'none' } } } },
      options: { legend: { displayMode: 'table', placement: 'bottom', calcs: ['lastNotNull', 'max'] }, tooltip: { mode: 'multi' } },
    },

  // stat shows one current value with thresholds: steps is [[value, color], …]
  // above the base color.
  stat(title, targets, unit='short', description='', steps=[], baseColor='green', w=6, h=4)::
    base('stat', title, targets, unit, description, w, h) {
      fieldConfig+: { defaults+: { thresholds: { mode: 'absolute', steps: [{ color: baseColor, value: null }] + [{ color: s[1], value: s[0] } for s in steps] } } },
      options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'background', graphMode: 'area' },
    },

  // table lists the instant values of a query, one row per series.
  table(title, targets, unit='short', description='', w=12, h=8)::
    base('table', title, targets, unit, description, w, h) {
      options: { showHeader: true, sortBy: [{ displayName: 'Value', desc: true }] },
      transformations: [{ id: 'labelsToFields', options: {} }],
    },

  // row is a collapsible section header.
  row(title):: { type: 'row', title: title, collapsed: false, panels: [], w:: 24, h:: 1 },

  // quantile is the PromQL of a histogram quantile over _bucket series.
  quantile(q, metric, by, selector='')::
    'histogram_quantile(%s, sum by (%s) (rate(%s_bucket%s[$__rate_interval])))' % [q, std.join(', ', ['le'] + by), metric, selector],

  local nodeVar = {
    name: 'node_id',
    label: 'Node',
    type: 'query',
    datasource: ds,
    query: { query: 'label_values(coverage_ratio, node_id)', refId: 'node_id' },
    definition: 'label_values(coverage_ratio, node_id)',
    refresh: 2,
    includeAll: true,
    allValue: '.*',
    multi: true,
    current: { selected: true, text: ['All'], value: ['$__all'] },
    sort: 1,
  },

  // dashboard lays panels out left to right, wrapping at 24 columns, and numbers them.
  dashboard(title, uid, description, panels, nodeFilter=true):: {
    local placed = std.foldl(
      function(acc, p)
        local wraps = acc.x + p.w > 24;
        local x = if wraps then 0 else acc.x;
        local y = if wraps then acc.y + acc.rowH else acc.y;
        local rowH = if wraps then p.h else std.max(acc.rowH, p.h);
        acc {
          x: x + p.w,
          y: y,
          rowH: rowH,
          out: acc.out + [p { id: std.length(acc.out) + 1, gridPos: { x: x, y: y, w: p.w, h: p.h } }],
        },
      panels,
      { x: 0, y: 0, rowH: 0, out: [] }
    ),
    title: title,
    uid: uid,
    description: description,
    tags: ['seamless'],
    timezone: 'utc',
    editable: true,
    graphTooltip: 1,
    refresh: '30s',
    schemaVersion: 39,
    version: 1,
    time: { from: 'now-6h', to: 'now' },
    annotations: { list: [] },
    links: [{ title: 'Seamless dashboards', type: 'dashboards', tags: ['seamless'], asDropdown: true }],
    templating: {
      list: [{
        name: 'datasource',
        label: 'Prometheus',
        type: 'datasource',
        query: 'prometheus',
        current: {},
        hide: 0,
      }] + (if nodeFilter then [nodeVar] else []),
    },
    panels: placed.out,
  },
}
