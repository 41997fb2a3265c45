import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

import { PROMETHEUS_REQUIRED, prometheusMissingReason } from './support/prometheus.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const deployDir = join(root, 'deploy');
const prometheusDir = join(deployDir, 'prometheus');
const rulesDir = join(prometheusDir, 'rules');
const ruleTestsDir = join(prometheusDir, 'tests');

const ruleFiles = readdirSync(rulesDir).filter((name) => name.endsWith('.yml')).sort().map((name) => join(rulesDir, name));
const ruleTestFiles = readdirSync(ruleTestsDir).filter((name) => name.endsWith('.test.yml')).sort().map((name) => join(ruleTestsDir, name));

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

interface RuleTestFile {
  rule_files: string[];
  tests: {
    name: string;
    alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[];
    promql_expr_test?: { expr: string }[];
  }[];
}

const rules: Rule[] = ruleFiles.flatMap((file) => {
  const parsed = parseYaml(readFileSync(file, 'utf8')) as { groups: { rules: Rule[] }[] };
  return parsed.groups.flatMap((group) => group.rules);
});
const alerts = rules.filter((rule) => rule.alert !== undefined);
const records = rules.filter((rule) => rule.record !== undefined);
const ruleTests: RuleTestFile[] = ruleTestFiles.map((file) => parseYaml(readFileSync(file, 'utf8')) as RuleTestFile);

interface RunResult {
  code: number;
  output: string;
}

function runPromtool(args: string[]): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    execFile('promtool', args, { cwd: root }, (error, stdout, stderr) => {
      let code = 0;
      if (error !== null) code = typeof error.code === 'number' ? error.code : 1;
      resolvePromise({ code, output: `${stdout}${stderr}` });
    });
  });
}

const missing = prometheusMissingReason();
if (missing !== undefined && PROMETHEUS_REQUIRED) throw new Error(`REQUIRE_PROMETHEUS=1 but ${missing}`);
const describePromtool = missing === undefined ? describe : describe.skip;

describePromtool(missing === undefined ? 'promtool' : `promtool (skipped: ${missing})`, () => {
  const scratch = mkdtempSync(join(tmpdir(), 'promtool-test-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it.each(ruleFiles)('check rules passes on %s', async (file) => {
    const result = await runPromtool(['check', 'rules', file]);
    expect(result.output).toContain('SUCCESS');
    expect(result.code, result.output).toBe(0);
  });

  it.each(ruleTestFiles)('rule unit tests pass in %s', async (file) => {
    const result = await runPromtool(['test', 'rules', file]);
    expect(result.code, result.output).toBe(0);
  });

  it('check config passes on prometheus.yml', async () => {
    const result = await runPromtool(['check', 'config', join(prometheusDir, 'prometheus.yml')]);
    expect(result.output).toContain(`SUCCESS: ${ruleFiles.length} rule files found`);
    expect(result.code, result.output).toBe(0);
  });

  it('test rules fails on a wrong expectation', async () => {
    const wrong = {
      rule_files: ruleFiles,
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: [{ series: 'ngrok_up{job="ngrok", instance="healthy:10119"}', values: '1x10' }],
          alert_rule_test: [{ eval_time: '10m', alertname: 'NgrokRefreshFailing', exp_alerts: [{ exp_labels: { severity: 'warning', job: 'ngrok', instance: 'healthy:10119' } }] }],
        },
      ],
    };
    const file = join(scratch, 'wrong.test.yml');
    writeFileSync(file, JSON.stringify(wrong));

    const result = await runPromtool(['test', 'rules', file]);
    expect(result.output).toContain('FAILED');
    expect(result.code).not.toBe(0);
  });
});

describe('alerting rules', () => {
  it('define the expected alerts', () => {
    expect(alerts.map((rule) => rule.alert).sort()).toEqual([
      'NgrokActiveSessionsDroppedToZero',
      'NgrokApiAuthFailing',
      'NgrokApiRateLimited',
      'NgrokExporterAbsent',
      'NgrokExporterDown',
      'NgrokRefreshFailing',
      'NgrokSnapshotStale',
    ]);
  });

  it.each(alerts)('$alert has a severity, a summary and a description', (rule) => {
    expect(['critical', 'warning', 'info']).toContain(rule.labels?.severity);
    expect(rule.annotations?.summary?.length).toBeGreaterThan(10);
    expect(rule.annotations?.description?.length).toBeGreaterThan(20);
  });

  it.each(alerts)('$alert has unit tests that fire and stay quiet', (rule) => {
    const cases = ruleTests.flatMap((file) => file.tests.flatMap((test) => test.alert_rule_test ?? [])).filter((item) => item.alertname === rule.alert);
    expect(cases.some((item) => item.exp_alerts.length > 0), 'a firing case').toBe(true);
    expect(cases.some((item) => item.exp_alerts.length === 0), 'a quiet case').toBe(true);
  });
});

describe('scrape job name', () => {
  /** The job name that the alerting rules select and every scrape configuration sets. */
  const JOB = 'ngrok';

  it('is the one the alerts select', () => {
    const selectors = alerts.flatMap((rule) => [...rule.expr.matchAll(/\bjob\s*=~?\s*"([^"]*)"/g)].map((match) => match[1]));
    expect(selectors.length).toBeGreaterThan(0);
    for (const selector of selectors) expect(selector).toBe(JOB);
  });

  it('is the job_name of prometheus.yml', () => {
    const config = parseYaml(readFileSync(join(prometheusDir, 'prometheus.yml'), 'utf8')) as { scrape_configs: { job_name: string }[] };
    expect(config.scrape_configs.map((item) => item.job_name)).toEqual([JOB]);
  });

  it('is the job label the ServiceMonitor sets', () => {
    const serviceMonitor = parseYaml(readFileSync(join(deployDir, 'kubernetes', 'servicemonitor.yaml'), 'utf8')) as {
      spec: { endpoints: { relabelings?: Record<string, unknown>[] }[] };
    };
    for (const endpoint of serviceMonitor.spec.endpoints) {
      const jobRules = (endpoint.relabelings ?? []).filter((rule) => rule.targetLabel === 'job');
      expect(jobRules).toEqual([{ action: 'replace', targetLabel: 'job', replacement: JOB }]);
    }
  });
});

describe('recording rules', () => {
  it.each(records)('$record follows level:metric:operations', (rule) => {
    expect(rule.record).toMatch(/^[a-z_]+:[a-z_]+:[a-z_]+$/);
  });

  it.each(records)('$record keeps job and instance', (rule) => {
    expect(rule.expr).toMatch(/sum by \(job, instance\b/);
  });

  it.each(records)('$record has a unit test', (rule) => {
    const exprs = ruleTests.flatMap((file) => file.tests.flatMap((test) => test.promql_expr_test ?? [])).map((item) => item.expr);
    expect(exprs).toContain(rule.record);
  });
});

describe('docker compose stack', () => {
  interface Service {
    build?: { context: string; dockerfile: string };
    image?: string;
    command?: string[];
    ports?: string[];
    volumes?: string[];
    environment?: Record<string, string>;
  }
  const compose = parseYaml(readFileSync(join(deployDir, 'docker-compose.yml'), 'utf8')) as { services: Record<string, Service> };
  const services = compose.services;

  /** Bind mounts of a service as [host path, container path]; named volumes are left out. */
  function bindMounts(service: Service | undefined): [string, string][] {
    return (service?.volumes ?? [])
      .map((volume) => volume.split(':'))
      .filter(([source]) => source !== undefined && (source.startsWith('.') || source.startsWith('/')))
      .map(([source, target]) => [resolve(deployDir, source ?? ''), target ?? '']);
  }

  function containerToHost(service: Service | undefined, containerPath: string): string | undefined {
    for (const [host, target] of bindMounts(service)) {
      if (containerPath === target) return host;
      if (containerPath.startsWith(`${target}/`)) return join(host, containerPath.slice(target.length + 1));
    }
    return undefined;
  }

  it('runs the exporter, Prometheus and Grafana', () => {
    expect(Object.keys(services).sort()).toEqual(['exporter', 'grafana', 'prometheus']);
  });

  it('builds the exporter from the repository Dockerfile in demo mode', () => {
    const exporter = services.exporter;
    const context = resolve(deployDir, exporter?.build?.context ?? '');
    expect(context).toBe(root);
    expect(existsSync(join(context, exporter?.build?.dockerfile ?? '')), 'Dockerfile at the repository root').toBe(true);
    expect(exporter?.command).toContain('--demo');
  });

  it('mounts files that exist', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const [host] of bindMounts(service)) expect(existsSync(host), `${name} mounts ${host}`).toBe(true);
    }
  });

  it('pins the image versions', () => {
    for (const service of [services.prometheus, services.grafana]) {
      expect(service?.image).toMatch(/:v?\d+\.\d+\.\d+$/);
    }
  });

  it('publishes ports on the loopback interface only', () => {
    const ports = Object.values(services).flatMap((service) => service.ports ?? []);
    expect(ports.sort()).toEqual(['127.0.0.1:10119:10119', '127.0.0.1:3000:3000', '127.0.0.1:9090:9090']);
  });

  it('gives Prometheus the config and the rules', () => {
    const prometheus = services.prometheus;
    const configFlag = prometheus?.command?.find((arg) => arg.startsWith('--config.file='));
    const configHost = containerToHost(prometheus, configFlag?.slice('--config.file='.length) ?? '');
    expect(configHost).toBe(join(prometheusDir, 'prometheus.yml'));

    const config = parseYaml(readFileSync(configHost ?? '', 'utf8')) as {
      rule_files: string[];
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    expect(config.rule_files).toEqual(['rules/*.yml']);
    const job = config.scrape_configs.find((item) => item.job_name === 'ngrok');
    expect(job?.static_configs[0]?.targets).toEqual(['exporter:10119']);
  });

  it('gives Grafana the datasource, the dashboards and a home dashboard', () => {
    const grafana = services.grafana;
    const provisioning = containerToHost(grafana, '/etc/grafana/provisioning');
    expect(provisioning).toBe(join(deployDir, 'grafana', 'provisioning'));

    const datasources = parseYaml(readFileSync(join(provisioning ?? '', 'datasources', 'prometheus.yml'), 'utf8')) as { datasources: { url: string }[] };
    expect(datasources.datasources[0]?.url).toBe('http://prometheus:9090');

    const providers = parseYaml(readFileSync(join(provisioning ?? '', 'dashboards', 'ngrok.yml'), 'utf8')) as { providers: { options: { path: string } }[] };
    const dashboardsPath = providers.providers[0]?.options.path ?? '';
    expect(containerToHost(grafana, dashboardsPath)).toBe(join(root, 'dashboards'));

    const home = containerToHost(grafana, grafana?.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH ?? '');
    expect(existsSync(home ?? ''), `home dashboard ${home}`).toBe(true);
  });
});
