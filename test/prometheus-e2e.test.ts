import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startExporter, type RunningExporter } from '../src/app.js';
import { parseConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { startSimulator, type Simulator } from '../src/simulator/index.js';
import { TEST_API_KEY, until } from './support/harness.js';
import { LogCapture } from './support/logs.js';
import { PROMETHEUS_REQUIRED, prometheusMissingReason, startPrometheus, type PrometheusServer } from './support/prometheus.js';

const missing = prometheusMissingReason();
const skip = missing !== undefined && !PROMETHEUS_REQUIRED;
// Fixed clocks, so no session expires between the walk and the query.
const NOW = Date.now();

describe.skipIf(skip)(`real Prometheus scraping the exporter${missing === undefined ? '' : ` (skipped: ${missing})`}`, () => {
  let simulator: Simulator;
  let exporter: RunningExporter;
  let prometheus: PrometheusServer;

  beforeAll(async () => {
    simulator = await startSimulator({ apiKey: TEST_API_KEY, syntheticSessions: 2345, seed: 23, now: () => NOW, requestsPerMinute: null });
    const config = parseConfig(['--ngrok.api-url', simulator.url, '--web.listen-address', '127.0.0.1:0'], { NGROK_API_KEY: TEST_API_KEY });
    exporter = await startExporter(config, { logger: createLogger({ level: 'warn', destination: new LogCapture() }), now: () => NOW });
    await until(() => exporter.refresher.current() !== undefined);

    const target = exporter.url.replace(/^http:\/\//, '');
    prometheus = await startPrometheus({
      config: [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 900ms',
        'scrape_configs:',
        '  - job_name: ngrok',
        '    static_configs:',
        `      - targets: ["${target}"]`,
        '',
      ].join('\n'),
    });
  });

  afterAll(async () => {
    await prometheus?.stop();
    await exporter?.close();
    await simulator?.close();
  });

  it('returns the exact active-session count', async () => {
    const [sample] = await prometheus.waitFor('sum(ngrok_app_sessions_active)', 30_000);
    const expected = simulator.account.activeCount(NOW);
    expect(expected).toBeGreaterThan(1000);
    expect(Number(sample?.value[1])).toBe(expected);
  });

  it('scrapes the target as healthy', async () => {
    const [up] = await prometheus.waitFor('up{job="ngrok"}', 30_000);
    expect(up?.value[1]).toBe('1');
    const [ngrokUp] = await prometheus.waitFor('ngrok_up', 30_000);
    expect(ngrokUp?.value[1]).toBe('1');
  });

  it('stores every session label', async () => {
    const countries = await prometheus.query('count(count by (country) (ngrok_app_sessions_active))');
    expect(Number(countries[0]?.value[1])).toBeGreaterThan(5);
    const labelled = await prometheus.query('ngrok_app_sessions_active{country!="",device_type!="",browser!="",route!=""}');
    expect(labelled.length).toBeGreaterThan(0);
  });
});
