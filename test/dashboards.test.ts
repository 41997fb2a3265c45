import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { collectDefaultMetrics, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dashboardsDir = join(root, 'dashboards');
const rulesDir = join(root, 'deploy', 'prometheus', 'rules');

type Json = Record<string, unknown>;

interface Dashboard {
  file: string;
  json: Json;
}

interface Query {
  where: string;
  expr: string;
}

const dashboards: Dashboard[] = readdirSync(dashboardsDir)
  .filter((name) => name.endsWith('.json'))
  .sort()
  .map((file) => ({ file, json: JSON.parse(readFileSync(join(dashboardsDir, file), 'utf8')) as Json }));

const DATASOURCE_REF = { type: 'prometheus', uid: '${datasource}' };

/** Panel types that ship with Grafana, so the dashboards need no plugin. */
const CORE_PANEL_TYPES = new Set([
  'row', 'stat', 'timeseries', 'geomap', 'bargauge', 'gauge', 'table', 'piechart', 'barchart',
  'state-timeline', 'status-history', 'heatmap', 'histogram', 'text',
]);

const FILTER_VARIABLES = ['country', 'device_type', 'browser', 'route'];

/** Session label filters of each dashboard. A dashboard shows a filter only when several panels use it. */
const FILTERS_BY_UID: Readonly<Record<string, string[]>> = {
  'ngrok-sessions-overview': FILTER_VARIABLES,
  'ngrok-exporter-health': [],
};

/**
 * Sample names the exporter exposes besides the prom-client default metrics.
 * NOTE: kept by hand in step with src/metrics/self.ts and
 * src/sessions/snapshot.ts; read them from a golden /metrics file once one is committed.
 */
const EXPORTER_METRICS = [
  'ngrok_app_sessions_active',
  'ngrok_app_sessions_recently_active',
  'ngrok_app_sessions_expired',
  'ngrok_app_users_active',
  'ngrok_app_sessions_listed',
  'ngrok_up',
  'ngrok_exporter_last_refresh_success_timestamp_seconds',
  'ngrok_exporter_snapshot_age_seconds',
  'ngrok_exporter_snapshot_stale',
  'ngrok_exporter_refresh_duration_seconds_bucket',
  'ngrok_exporter_refresh_duration_seconds_sum',
  'ngrok_exporter_refresh_duration_seconds_count',
  'ngrok_exporter_refresh_pages',
  'ngrok_exporter_refreshes_total',
  'ngrok_exporter_refresh_failures_total',
  'ngrok_exporter_api_requests_total',
  'ngrok_exporter_api_retries_total',
  'ngrok_exporter_api_rate_limited_total',
  'ngrok_exporter_budget_requests_per_minute',
  'ngrok_exporter_budget_tokens_remaining',
  'ngrok_exporter_refresh_interval_seconds',
  'ngrok_exporter_session_series',
  'ngrok_exporter_sessions_folded',
  'ngrok_exporter_build_info',
];

/** Series that Prometheus itself adds for every scrape target. */
const SCRAPE_METRICS = [
  'up',
  'scrape_duration_seconds',
  'scrape_samples_scraped',
  'scrape_samples_post_metric_relabeling',
  'scrape_series_added',
];

const PROMQL_KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/** Returns the metric names a PromQL expression selects. */
function metricNamesOf(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\boffset\s+-?\w+/g, ' ');

  const names = new Set<string>();
  const token = /\$\{?\w+\}?|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|([A-Za-z_:][\w:]*)/g;
  for (const match of stripped.matchAll(token)) {
    const name = match[1];
    if (name === undefined || PROMQL_KEYWORDS.has(name.toLowerCase())) continue;
    const rest = stripped.slice(match.index + name.length);
    if (/^\s*\(/.test(rest)) continue; // a function or an aggregation operator
    names.add(name);
  }
  return [...names];
}

/** Returns the selector of a Grafana `label_values(selector, label)` query, or the query itself. */
function selectorOfVariableQuery(query: string): string {
  const match = /^\s*label_values\(\s*(.+),\s*\w+\s*\)\s*$/.exec(query);
  return match?.[1] ?? query;
}

function panelsOf(dashboard: Json): Json[] {
  const panels: Json[] = [];
  for (const panel of (dashboard.panels ?? []) as Json[]) {
    panels.push(panel);
    for (const nested of (panel.panels ?? []) as Json[]) panels.push(nested);
  }
  return panels;
}

function variablesOf(dashboard: Json): Json[] {
  return ((dashboard.templating as Json | undefined)?.list ?? []) as Json[];
}

function targetsOf(panel: Json): Json[] {
  return (panel.targets ?? []) as Json[];
}

function panelQueries(dashboard: Dashboard): Query[] {
  return panelsOf(dashboard.json).flatMap((panel) =>
    targetsOf(panel).map((target) => ({
      where: `${dashboard.file} panel "${String(panel.title)}" ${String(target.refId)}`,
      expr: String(target.expr),
    })),
  );
}

function variableQueries(dashboard: Dashboard): Query[] {
  return variablesOf(dashboard.json)
    .filter((variable) => variable.type === 'query')
    .map((variable) => ({ where: `${dashboard.file} variable ${String(variable.name)}`, expr: String(variable.query) }));
}

/** Collects the value of every `datasource` key, at any depth of the JSON. */
function datasourceReferences(value: unknown, path = '$'): { path: string; value: unknown }[] {
  if (Array.isArray(value)) return value.flatMap((item, index) => datasourceReferences(item, `${path}[${index}]`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, item]) => {
    const own = key === 'datasource' ? [{ path: `${path}.${key}`, value: item }] : [];
    return [...own, ...datasourceReferences(item, `${path}.${key}`)];
  });
}

/** Returns the arguments of every call of the named functions in a PromQL expression. */
function callArguments(expr: string, functions: string[]): string[] {
  const calls: string[] = [];
  const start = new RegExp(`\\b(?:${functions.join('|')})\\s*\\(`, 'g');
  for (const match of expr.matchAll(start)) {
    let depth = 1;
    let index = match.index + match[0].length;
    const begin = index;
    while (index < expr.length && depth > 0) {
      if (expr[index] === '(') depth++;
      if (expr[index] === ')') depth--;
      index++;
    }
    calls.push(expr.slice(begin, index - 1));
  }
  return calls;
}

function recordingRuleNames(): string[] {
  return readdirSync(rulesDir)
    .filter((name) => name.endsWith('.yml'))
    .flatMap((name) => {
      const file = parseYaml(readFileSync(join(rulesDir, name), 'utf8')) as { groups: { rules: { record?: string }[] }[] };
      return file.groups.flatMap((group) => group.rules.flatMap((rule) => (rule.record === undefined ? [] : [rule.record])));
    });
}

/** Sample names of the prom-client default metrics, read from their text exposition. */
async function defaultMetricNames(): Promise<string[]> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const exposition = await registry.metrics();
  const names = exposition
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => /^[A-Za-z_:][\w:]*/.exec(line)?.[0] ?? '');
  return [...new Set(names)];
}

describe('metricNamesOf', () => {
  it.each([
    ['sum by (country) (ngrok_app_sessions_active{job=~"$job"})', ['ngrok_app_sessions_active']],
    ['rate(process_cpu_seconds_total[$__rate_interval]) * 60 or vector(0)', ['process_cpu_seconds_total']],
    ['time() - (ngrok_exporter_last_refresh_success_timestamp_seconds > 0)', ['ngrok_exporter_last_refresh_success_timestamp_seconds']],
    ['histogram_quantile(0.9, sum by (le) (rate(x_bucket{a="b(c)"}[1m])))', ['x_bucket']],
    ['a:b:c{x="1"} and on (job, instance) other offset 10m > 1e3', ['a:b:c', 'other']],
    ['label_replace(vector(0), "reason", "none", "", "")', []],
  ])('extracts names from %s', (expr, expected) => {
    expect(metricNamesOf(expr)).toEqual(expected);
  });
});

describe.each(dashboards)('dashboard $file', (dashboard) => {
  const json = dashboard.json;
  const panels = panelsOf(json).filter((panel) => panel.type !== 'row');
  const filters = FILTERS_BY_UID[String(json.uid)] ?? [];

  it('imports through provisioning and the import UI', () => {
    expect(json.id).toBeNull();
    expect(json).not.toHaveProperty('__inputs');
    expect(typeof json.title).toBe('string');
    expect(json.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(json.schemaVersion).toBeLessThanOrEqual(41);
  });

  it('has a fixed uid and tags', () => {
    expect(json.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(json.tags).toContain('ngrok');
  });

  it('has a datasource variable of type datasource', () => {
    const variable = variablesOf(json).find((item) => item.name === 'datasource');
    expect(variable?.type).toBe('datasource');
    expect(variable?.query).toBe('prometheus');
  });

  it('refers to a datasource only through the variable', () => {
    const references = datasourceReferences(json);
    expect(references.length).toBeGreaterThan(0);
    for (const reference of references) {
      expect(reference.value, reference.path).toEqual(DATASOURCE_REF);
    }
  });

  it('sets the datasource on every panel, target and query variable', () => {
    for (const panel of panels) {
      expect(panel.datasource, String(panel.title)).toEqual(DATASOURCE_REF);
      for (const target of targetsOf(panel)) expect(target.datasource, String(panel.title)).toEqual(DATASOURCE_REF);
    }
    for (const variable of variablesOf(json).filter((item) => item.type === 'query')) {
      expect(variable.datasource, String(variable.name)).toEqual(DATASOURCE_REF);
    }
  });

  it('has exactly the datasource, job, instance and filter variables', () => {
    const names = variablesOf(json).map((variable) => variable.name);
    expect(names).toEqual(['datasource', 'job', 'instance', ...filters]);
  });

  it('has job, instance and filter variables built with label_values', () => {
    const byName = new Map(variablesOf(json).map((variable) => [variable.name, variable]));
    for (const name of ['job', 'instance', ...filters]) {
      const variable = byName.get(name);
      expect(variable?.type, name).toBe('query');
      expect(String(variable?.query), name).toMatch(new RegExp(`^label_values\\(.*,\\s*${name}\\)$`));
    }
    for (const name of ['instance', ...filters]) {
      expect(byName.get(name)?.includeAll, name).toBe(true);
      expect(byName.get(name)?.allValue, name).toBe('.*');
    }
  });

  it('uses every filter variable in some panel query', () => {
    const exprs = panelQueries(dashboard).map((query) => query.expr);
    for (const name of ['job', 'instance', ...filters]) {
      expect(exprs.some((expr) => expr.includes(`=~"$${name}"`)), name).toBe(true);
    }
  });

  it('uses each filter variable in more than one panel', () => {
    for (const name of filters) {
      const users = panels.filter((panel) => targetsOf(panel).some((target) => String(target.expr).includes(`=~"$${name}"`)));
      expect(users.length, name).toBeGreaterThan(1);
    }
  });

  it('refers to no variable it does not define', () => {
    const defined = new Set(variablesOf(json).map((variable) => String(variable.name)));
    for (const query of [...panelQueries(dashboard), ...variableQueries(dashboard)]) {
      for (const match of query.expr.matchAll(/\$\{?(\w+)\}?/g)) {
        const name = match[1] ?? '';
        if (name.startsWith('__')) continue; // Grafana's global variables such as $__range
        expect(defined, `${query.where} uses $${name}`).toContain(name);
      }
    }
  });

  it('shows the current value in every stat panel', () => {
    for (const panel of panels.filter((item) => item.type === 'stat')) {
      const reduceOptions = (panel.options as Json | undefined)?.reduceOptions as Json | undefined;
      expect(reduceOptions?.calcs, String(panel.title)).toEqual(['last']);
      for (const target of targetsOf(panel)) expect(target.instant, String(panel.title)).toBe(true);
    }
  });

  it('has no unconditional 0 fallback', () => {
    for (const query of panelQueries(dashboard)) {
      expect(query.expr, query.where).not.toMatch(/\bvector\s*\(/);
    }
  });

  it('ranks topk once per range query', () => {
    for (const panel of panels) {
      for (const target of targetsOf(panel).filter((item) => item.instant !== true)) {
        const expr = String(target.expr);
        if (!/\btopk\s*\(/.test(expr)) continue;
        expect(expr, String(panel.title)).toMatch(/\btopk\s*\(\s*\d+\s*,[^]*\[\$__range\] @ end\(\)/);
      }
    }
  });

  it('uses core panel types only', () => {
    for (const panel of panelsOf(json)) expect(CORE_PANEL_TYPES, String(panel.title)).toContain(panel.type);
  });

  it('gives every panel a unique id, a description and a unit', () => {
    const ids = panelsOf(json).map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of panels) {
      expect(String(panel.description ?? '').length, String(panel.title)).toBeGreaterThan(20);
      const defaults = (panel.fieldConfig as Json | undefined)?.defaults as Json | undefined;
      expect(typeof defaults?.unit, String(panel.title)).toBe('string');
      expect(String(defaults?.unit).length, String(panel.title)).toBeGreaterThan(0);
    }
  });

  it('keeps every panel inside the 24-column grid', () => {
    for (const panel of panelsOf(json)) {
      const grid = panel.gridPos as { x: number; y: number; w: number; h: number };
      expect(grid.x + grid.w, String(panel.title)).toBeLessThanOrEqual(24);
      expect(grid.h, String(panel.title)).toBeGreaterThan(0);
    }
  });

  it('gives every panel at least one query with a unique refId', () => {
    for (const panel of panels) {
      const refIds = targetsOf(panel).map((target) => target.refId);
      expect(refIds.length, String(panel.title)).toBeGreaterThan(0);
      expect(new Set(refIds).size, String(panel.title)).toBe(refIds.length);
      for (const target of targetsOf(panel)) expect(String(target.expr ?? '').trim(), String(panel.title)).not.toBe('');
    }
  });

  it('uses $__rate_interval as the window of every rate and increase', () => {
    for (const query of panelQueries(dashboard)) {
      for (const argument of callArguments(query.expr, ['rate', 'irate', 'increase'])) {
        expect(argument, query.where).toMatch(/\[\$__rate_interval\]$/);
      }
    }
  });

  it('queries only known metrics', async () => {
    const known = new Set([...EXPORTER_METRICS, ...SCRAPE_METRICS, ...(await defaultMetricNames()), ...recordingRuleNames()]);
    const queries = [...panelQueries(dashboard), ...variableQueries(dashboard)];
    for (const query of queries) {
      const names = metricNamesOf(selectorOfVariableQuery(query.expr));
      expect(names.length, query.where).toBeGreaterThan(0);
      for (const name of names) expect(known, `${query.where} uses ${name}`).toContain(name);
    }
  });
});

describe('dashboard set', () => {
  it('has the overview and the health dashboards', () => {
    expect(dashboards.map((dashboard) => dashboard.json.uid).sort()).toEqual(['ngrok-exporter-health', 'ngrok-sessions-overview']);
  });

  it('has unique uids and titles', () => {
    const uids = dashboards.map((dashboard) => dashboard.json.uid);
    const titles = dashboards.map((dashboard) => dashboard.json.title);
    expect(new Set(uids).size).toBe(uids.length);
    expect(new Set(titles).size).toBe(titles.length);
  });

  it('maps active sessions by country code with the countries gazetteer', () => {
    const overview = dashboards.find((dashboard) => dashboard.json.uid === 'ngrok-sessions-overview');
    const geomap = panelsOf(overview?.json ?? {}).find((panel) => panel.type === 'geomap');
    const layers = ((geomap?.options as Json | undefined)?.layers ?? []) as Json[];
    expect(layers[0]?.location).toEqual({ mode: 'lookup', lookup: 'country', gazetteer: 'public/gazetteer/countries.json' });
    const target = targetsOf(geomap ?? {})[0];
    expect(String(target?.expr)).toMatch(/^sum by \(country\) \(ngrok_app_sessions_active\{/);
    expect(target?.format).toBe('table');
    expect(target?.instant).toBe(true);
  });

  it('uses the recording rules', () => {
    const exprs = dashboards.flatMap(panelQueries).map((query) => query.expr);
    const used = recordingRuleNames().filter((rule) => exprs.some((expr) => expr.includes(rule)));
    expect(used).toEqual(recordingRuleNames());
  });
});

describe('Grafana provisioning', () => {
  const provisioning = join(root, 'deploy', 'grafana', 'provisioning');

  it('provides a default Prometheus datasource', () => {
    const file = parseYaml(readFileSync(join(provisioning, 'datasources', 'prometheus.yml'), 'utf8')) as Json;
    const datasources = file.datasources as Json[];
    expect(file.apiVersion).toBe(1);
    expect(datasources).toHaveLength(1);
    expect(datasources[0]?.type).toBe('prometheus');
    expect(datasources[0]?.isDefault).toBe(true);
  });

  it('loads the dashboards from files', () => {
    const file = parseYaml(readFileSync(join(provisioning, 'dashboards', 'ngrok.yml'), 'utf8')) as Json;
    const providers = file.providers as Json[];
    expect(file.apiVersion).toBe(1);
    expect(providers[0]?.type).toBe('file');
    expect((providers[0]?.options as Json).path).toBe('/var/lib/grafana/dashboards');
  });
});
