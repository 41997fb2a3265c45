import { afterEach, describe, expect, it } from 'vitest';

import { generateSessions, startSimulator, type Simulator } from '../../src/simulator/index.js';
import { sumOf, valueOf } from '../support/harness.js';
import { parseExposition, seriesKey } from './exposition.js';
import { TEST_API_KEY, manualClock, snapshotLines, startTestExporter, type TestExporter } from './exporter.js';

const START_MS = Date.parse('2026-03-01T12:00:00Z');
const SCRAPES = 200;

let simulator: Simulator | undefined;
let exporter: TestExporter | undefined;

afterEach(async () => {
  await exporter?.close();
  await simulator?.close();
  exporter = undefined;
  simulator = undefined;
});

async function scrapeConcurrently(timeoutSeconds: string): Promise<{ status: number; body: string }[]> {
  return Promise.all(
    Array.from({ length: SCRAPES }, async () => {
      const response = await fetch(`${exporter!.exporter.url}/metrics`, { headers: { 'x-prometheus-scrape-timeout-seconds': timeoutSeconds } });
      return { status: response.status, body: await response.text() };
    }),
  );
}

/** Asserts that a scrape parses to the end, and has no series and no HELP or TYPE line twice. */
function expectCompleteExposition(body: string): void {
  expect(body.endsWith('\n')).toBe(true);
  const samples = parseExposition(body);
  expect(new Set(samples.map(seriesKey)).size).toBe(samples.length);
  const metadata = body.split('\n').filter((line) => line.startsWith('# HELP ') || line.startsWith('# TYPE '));
  expect(new Set(metadata).size).toBe(metadata.length);
  expect(body).toContain('ngrok_up ');
  expect(body).toContain('process_resident_memory_bytes ');
}

async function startLoaded(): Promise<string> {
  simulator = await startSimulator({ apiKey: TEST_API_KEY, sessions: generateSessions(2_000, { seed: 7, nowMs: START_MS }), now: () => START_MS, requestsPerMinute: null });
  exporter = await startTestExporter(simulator.url, { clock: manualClock(START_MS), argv: ['--ngrok.timeout=5s'] });
  const first = await exporter.waitForRefresh();
  expect(valueOf(first, 'ngrok_up')).toBe(1);

  // The next walk takes 15 pages of 25 ms each and counts 500 fewer sessions.
  simulator.setLatency(25);
  simulator.account.set(simulator.account.sessions().slice(0, 1_500));
  simulator.stats.reset();
  exporter.clock.advanceTo(exporter.exporter.refresher.state().nextAttemptAtMs);
  return first;
}

describe('200 concurrent scrapes', () => {
  it('wait for one refresh and return the same new snapshot', async () => {
    await startLoaded();
    const responses = await scrapeConcurrently('20');

    expect(simulator!.stats.requests).toBe(15);
    const expected = snapshotLines(await exporter!.scrape());
    expect(sumOf(expected.join('\n'), 'ngrok_app_sessions_active')).toBe(simulator!.account.activeCount());
    for (const response of responses) {
      expect(response.status).toBe(200);
      expectCompleteExposition(response.body);
      expect(snapshotLines(response.body)).toEqual(expected);
    }
  });

  it('that do not wait each return one whole snapshot', async () => {
    const first = await startLoaded();
    // A 0.5 s scrape timeout minus the 0.5 s offset leaves no time to wait for the walk.
    const responses = await scrapeConcurrently('0.5');
    await exporter!.waitForRefresh();
    const second = await exporter!.scrape();

    const snapshots = [snapshotLines(first), snapshotLines(second)];
    expect(snapshots[0]).not.toEqual(snapshots[1]);
    for (const response of responses) {
      expect(response.status).toBe(200);
      expectCompleteExposition(response.body);
      expect(snapshots).toContainEqual(snapshotLines(response.body));
    }
    expect(simulator!.stats.requests).toBe(15);
  });
});
