import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { startExporter } from '../src/app.js';
import { parseConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { generateSessions, startSimulator } from '../src/simulator/index.js';
import { TEST_API_KEY, until } from './support/harness.js';
import { LogCapture } from './support/logs.js';
import { PROMETHEUS_REQUIRED, prometheusMissingReason } from './support/prometheus.js';

const GOLDEN = new URL('./golden/metrics.prom', import.meta.url).pathname;
const NOW = Date.parse('2026-03-01T12:00:00Z');
const missing = prometheusMissingReason();

/**
 * Renders /metrics for a fixed account at a fixed time, without the process
 * metrics and with the measured durations set to 0, so the text is the same on every run.
 */
async function renderStableMetrics(): Promise<string> {
  const sessions = generateSessions(420, { seed: 5, nowMs: NOW });
  const simulator = await startSimulator({ apiKey: TEST_API_KEY, sessions, now: () => NOW, requestsPerMinute: null });
  const config = parseConfig(['--ngrok.api-url', simulator.url, '--web.listen-address', '127.0.0.1:0', '--sessions.labels=country,device_type,browser,route,os'], {
    NGROK_API_KEY: TEST_API_KEY,
  });
  const exporter = await startExporter(config, { logger: createLogger({ level: 'error', destination: new LogCapture() }), now: () => NOW });
  try {
    await until(() => exporter.refresher.current() !== undefined);
    const text = await (await fetch(`${exporter.url}/metrics`)).text();
    return normalize(text);
  } finally {
    await exporter.close();
    await simulator.close();
  }
}

function normalize(text: string): string {
  const kept: string[] = [];
  let skipping = false;
  for (const line of text.split('\n')) {
    const name = /^(?:# (?:HELP|TYPE) )?([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line)?.[1] ?? '';
    if (line.startsWith('# HELP ')) skipping = name.startsWith('process_') || name.startsWith('nodejs_');
    if (skipping) continue;
    if (name.startsWith('ngrok_exporter_refresh_duration_seconds') && !line.startsWith('#')) {
      kept.push(line.replace(/ [^ ]+$/, ' 0'));
      continue;
    }
    kept.push(line.replace(/nodejs_version="[^"]*"/, 'nodejs_version="v0"').replace(/version="\d+\.\d+\.\d+[^"]*"/, 'version="0.0.0"'));
  }
  return kept.join('\n');
}

describe('golden /metrics', () => {
  it('matches the stored exposition', async () => {
    const text = await renderStableMetrics();
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(GOLDEN, text);
    expect(text).toBe(readFileSync(GOLDEN, 'utf8'));
  });

  it.skipIf(missing !== undefined && !PROMETHEUS_REQUIRED)(`passes promtool check metrics${missing === undefined ? '' : ` (skipped: ${missing})`}`, () => {
    const result = spawnSync('promtool', ['check', 'metrics'], { input: readFileSync(GOLDEN), encoding: 'utf8' });
    expect(result.error).toBeUndefined();
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
