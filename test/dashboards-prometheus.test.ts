/**
 * Runs every dashboard query and every rule expression through a real
 * Prometheus that scrapes a real exporter reading the simulated ngrok API.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';

import { startExporter, type RunningExporter } from '../src/app.js';
import { parseConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { startSimulator } from '../src/simulator/index.js';
import { LogCapture } from './support/logs.js';
import { PROMETHEUS_REQUIRED, prometheusMissingReason, startPrometheus, type PrometheusServer } from './support/prometheus.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dashboardsDir = join(root, 'dashboards');
const rulesDir = join(root, 'deploy', 'prometheus', 'rules');

/** The scrape job of deploy/prometheus/prometheus.yml, which the alerting rules select. */
const JOB = 'ngrok';
const API_KEY = 'test_dashboards_api_key';
const SESSIONS = 450;
const FILTER_LABELS = ['country', 'device_type', 'browser', 'route'] as const;

type Json = Record<string, unknown>;

interface DashboardQuery {
  name: string;
  expr: string;
  instant: boolean;
}

interface VariableQuery {
  name: string;
  selector: string;
  label: string;
}

interface RuleExpression {
  name: string;
  expr: string;
}

function panelsOf(dashboard: Json): Json[] {
  return ((dashboard.panels ?? []) as Json[]).flatMap((panel) => [panel, ...((panel.panels ?? []) as Json[])]);
}

const dashboards = readdirSync(dashboardsDir)
  .filter((name) => name.endsWith('.json'))
  .sort()
  .map((file) => ({ file, json: JSON.parse(readFileSync(join(dashboardsDir, file), 'utf8')) as Json }));

const panelQueries: DashboardQuery[] = dashboards.flatMap(({ file, json }) =>
  panelsOf(json).flatMap((panel) =>
    ((panel.targets ?? []) as Json[]).map((target) => ({
      name: `${file} "${String(panel.title)}" ${String(target.refId)}`,
      expr: String(target.expr),
      instant: target.instant === true,
    })),
  ),
);

const variableQueries: VariableQuery[] = dashboards.flatMap(({ file, json }) =>
  (((json.templating as Json).list ?? []) as Json[])
    .filter((variable) => variable.type === 'query')
    .map((variable) => {
      const match = /^label_values\((.+),\s*(\w+)\)$/.exec(String(variable.query));
      if (match === null) throw new Error(`${file} variable ${String(variable.name)} is not a label_values() query`);
      return { name: `${file} $${String(variable.name)}`, selector: match[1] ?? '', label: match[2] ?? '' };
    }),
);

const ruleFiles = readdirSync(rulesDir).filter((name) => name.endsWith('.yml')).sort().map((name) => join(rulesDir, name));
const rules = ruleFiles.flatMap((file) => {
  const parsed = parseYaml(readFileSync(file, 'utf8')) as { groups: { rules: { record?: string; alert?: string; expr: string }[] }[] };
  return parsed.groups.flatMap((group) => group.rules);
});
const recordingRules: RuleExpression[] = rules.flatMap((rule) => (rule.record === undefined ? [] : [{ name: rule.record, expr: rule.expr }]));
const alertingRules: RuleExpression[] = rules.flatMap((rule) => (rule.alert === undefined ? [] : [{ name: rule.alert, expr: rule.expr }]));

/** Escapes a value the way Grafana does for a multi-value variable inside a `=~` matcher. */
function escapeRegexValue(value: string): string {
  return value.replace(/[\\^$*+?.()|[\]{}]/g, (character) => `\\\\${character}`);
}

/**
 * Replaces Grafana's variables with the values a dashboard would send. The
 * rate window of 1m spans 60 scrapes at the 1s scrape interval of this test.
 */
function substitute(expr: string, variables: Readonly<Record<string, string>>): string {
  const values: Record<string, string> = { __rate_interval: '1m', __interval: '15s', __range: '1m', __range_s: '60', ...variables };
  return expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (text, braced: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? '';
    const value = values[name];
    if (value === undefined) throw new Error(`no test value for the variable ${text} in ${expr}`);
    return value;
  });
}

interface ApiBody<T> {
  status: string;
  error?: string;
  data?: T;
}

async function getApi<T>(prometheus: PrometheusServer, path: string, params: Record<string, string>): Promise<T> {
  const url = new URL(path, prometheus.url);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  const response = await fetch(url);
  const body = (await response.json()) as ApiBody<T>;
  if (body.status !== 'success' || body.data === undefined) {
    throw new Error(`${path} ${JSON.stringify(params)} failed with HTTP ${response.status}: ${body.error ?? 'no data'}`);
  }
  return body.data;
}

type Sample = [number, string];
type QueryData =
  | { resultType: 'vector'; result: { metric: Record<string, string>; value: Sample }[] }
  | { resultType: 'matrix'; result: { metric: Record<string, string>; values: Sample[] }[] }
  | { resultType: 'scalar'; result: Sample };

/** Returns the sample values of an instant or range query, as Prometheus formats them. */
async function queryValues(prometheus: PrometheusServer, expr: string, instant: boolean): Promise<string[]> {
  const nowSeconds = Date.now() / 1000;
  const data = instant
    ? await getApi<QueryData>(prometheus, '/api/v1/query', { query: expr, time: String(nowSeconds) })
    : await getApi<QueryData>(prometheus, '/api/v1/query_range', {
        query: expr,
        start: String(nowSeconds - 30),
        end: String(nowSeconds),
        step: '2',
      });
  if (data.resultType === 'scalar') return [data.result[1]];
  if (data.resultType === 'vector') return data.result.map((series) => series.value[1]);
  return data.result.flatMap((series) => series.values.map((sample) => sample[1]));
}

const missing = prometheusMissingReason();
if (missing !== undefined && PROMETHEUS_REQUIRED) throw new Error(`REQUIRE_PROMETHEUS=1 but ${missing}`);
const describePrometheus = missing === undefined ? describe : describe.skip;

describePrometheus(missing === undefined ? 'dashboards and rules on Prometheus' : `dashboards and rules on Prometheus (skipped: ${missing})`, () => {
  let simulator: Awaited<ReturnType<typeof startSimulator>> | undefined;
  let exporter: RunningExporter | undefined;
  let prometheus: PrometheusServer | undefined;
  const logs = new LogCapture();
  const scenarios: { name: string; variables: Record<string, string> }[] = [];

  const running = (): PrometheusServer => {
    if (prometheus === undefined) throw new Error('Prometheus did not start; see the beforeAll error');
    return prometheus;
  };

  beforeAll(async () => {
    simulator = await startSimulator({ apiKey: API_KEY, syntheticSessions: SESSIONS, seed: 7, requestsPerMinute: null });
    const config = parseConfig(
      [
        `--ngrok.api-url=${simulator.url}`,
        '--web.listen-address=127.0.0.1:0',
        // 450 sessions are 5 pages, so a walk every 3s stays within 120 requests per minute.
        '--refresh.interval=3s',
        '--ngrok.requests-per-minute=120',
        '--sessions.labels=country,device_type,browser,route,endpoint,public_url',
        '--log.level=warn',
      ],
      { NGROK_API_KEY: API_KEY },
    );
    exporter = await startExporter(config, { logger: createLogger({ level: 'warn', destination: logs }) });
    const target = new URL(exporter.url).host;

    const prometheusConfig = {
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      rule_files: ruleFiles,
      scrape_configs: [{ job_name: JOB, metrics_path: '/metrics', static_configs: [{ targets: [target] }] }],
    };
    prometheus = await startPrometheus({ config: stringifyYaml(prometheusConfig) });

    // Rates need two samples in their window and the histogram panels need
    // several refreshes, so wait for ten scrapes and three successful walks.
    await prometheus.waitFor(`count_over_time(up{job="${JOB}"}[1m]) >= 10`, 60_000);
    await prometheus.waitFor(`ngrok_exporter_refreshes_total{job="${JOB}", result="success"} >= 3`, 60_000);
    await prometheus.waitFor(`count_over_time(ngrok:app_sessions_active:sum_by_country{job="${JOB}"}[1m]) >= 3`, 30_000);

    const [largest] = await prometheus.query(`topk(1, ngrok_app_sessions_active{job="${JOB}"})`);
    const base = { datasource: 'prometheus', job: JOB, instance: escapeRegexValue(target) };
    scenarios.push({ name: 'all filter values', variables: { ...base, ...Object.fromEntries(FILTER_LABELS.map((label) => [label, '.*'])) } });
    scenarios.push({
      name: 'one value per filter',
      variables: { ...base, ...Object.fromEntries(FILTER_LABELS.map((label) => [label, escapeRegexValue(largest?.metric[label] ?? '')])) },
    });
  }, 150_000);

  afterAll(async () => {
    await prometheus?.stop();
    await exporter?.close();
    await simulator?.close();
  });

  it('scrapes a healthy exporter', async () => {
    const [up] = await running().query(`ngrok_up{job="${JOB}"}`);
    expect(up?.value[1]).toBe('1');
    expect(scenarios).toHaveLength(2);
  });

  it.each(panelQueries)('panel query $name returns data', async (query) => {
    for (const scenario of scenarios) {
      const expr = substitute(query.expr, scenario.variables);
      const values = await queryValues(running(), expr, query.instant);
      expect(values.length, `${scenario.name}: ${expr}`).toBeGreaterThan(0);
      expect(values.some((value) => value !== 'NaN'), `${scenario.name}: only NaN from ${expr}`).toBe(true);
    }
  });

  it('session totals show 0 only with a snapshot', async () => {
    const totals = panelQueries.filter((query) => /"(Active|Recently active) sessions" /.test(query.name));
    expect(totals).toHaveLength(2);
    const base = scenarios[0]?.variables ?? {};

    for (const query of totals) {
      const noMatch = substitute(query.expr, { ...base, country: 'no-such-country' });
      expect(await queryValues(running(), noMatch, query.instant), noMatch).toEqual(['0']);

      const notScraped = substitute(query.expr, { ...base, job: 'no-such-job' });
      expect(await queryValues(running(), notScraped, query.instant), notScraped).toEqual([]);
    }
  });

  it.each(variableQueries)('variable query $name returns values', async (query) => {
    const nowSeconds = Date.now() / 1000;
    for (const scenario of scenarios) {
      const selector = substitute(query.selector, scenario.variables);
      const values = await getApi<string[]>(running(), `/api/v1/label/${query.label}/values`, {
        'match[]': selector,
        start: String(nowSeconds - 60),
        end: String(nowSeconds),
      });
      expect(values.length, `${scenario.name}: label_values(${selector}, ${query.label})`).toBeGreaterThan(0);
    }
  });

  it.each(recordingRules)('recording rule $name returns data', async (rule) => {
    const evaluated = await running().query(rule.expr);
    expect(evaluated.length, rule.expr).toBeGreaterThan(0);

    const recorded = await running().query(`${rule.name}{job="${JOB}"}`);
    expect(recorded.length, `${rule.name} was not recorded`).toBeGreaterThan(0);
  });

  it.each(alertingRules)('alerting rule $name parses and stays quiet', async (rule) => {
    const result = await running().query(rule.expr);
    expect(result, rule.expr).toEqual([]);
  });

  it('evaluates every rule without errors', async () => {
    const data = await getApi<{ groups: { rules: { name: string; health: string; lastError?: string; state?: string }[] }[] }>(running(), '/api/v1/rules', {});
    const loaded = data.groups.flatMap((group) => group.rules);
    expect(loaded.map((rule) => rule.name).sort()).toEqual([...recordingRules, ...alertingRules].map((rule) => rule.name).sort());
    for (const rule of loaded) {
      expect(rule.health, `${rule.name}: ${rule.lastError ?? ''}`).toBe('ok');
      expect(rule.state ?? 'inactive', rule.name).not.toBe('firing');
    }
  });
});
