import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { crc32, gunzipSync } from 'node:zlib';

import { Gauge } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';

import { RequestBudget } from '../src/budget.js';
import { createSelfMetrics, type SelfMetrics } from '../src/metrics/self.js';
import { SessionAggregator } from '../src/sessions/aggregate.js';
import { buildSnapshot, type Snapshot } from '../src/sessions/snapshot.js';
import { CrcShift, MetricsBodies, PROCESS_METRICS_MAX_AGE_MS, type MetricsBody } from '../src/web/metrics-body.js';
import { startHarness, until, type Harness } from './support/harness.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');

function selfMetrics(now: () => number): SelfMetrics {
  return createSelfMetrics({
    version: '1.2.3',
    revision: 'abc',
    budget: new RequestBudget({ limit: 60 }),
    currentSnapshot: () => undefined,
    stalenessLimitMs: () => 60_000,
    now,
  });
}

/** Builds a snapshot of `sessions` sessions spread over as many browsers, so its text grows with the count. */
async function snapshotOf(sessions: number): Promise<Snapshot> {
  const aggregator = new SessionAggregator({ labelNames: ['browser'], nowMs: NOW, recentWindowMs: 300_000, maxLabelLength: 64 });
  aggregator.addPage(
    Array.from({ length: sessions }, (_, index) => ({
      id: `ses_${index}`,
      expiresAtMs: NOW + 60_000,
      lastActiveMs: NOW,
      userId: `au_${index}`,
      country: undefined,
      deviceType: undefined,
      browser: `Browser "${index}" \\ ${index % 3}`,
      os: undefined,
      routeId: undefined,
      endpointId: undefined,
      publicUrl: undefined,
    })),
  );
  return buildSnapshot(aggregator.finish(), { pages: 1, completedAtMs: NOW, maxSeries: 100_000 });
}

function joined(body: MetricsBody): Buffer {
  return Buffer.concat(body.chunks);
}

describe('CrcShift', () => {
  it.each([
    [0, 0],
    [0, 7],
    [5, 0],
    [1, 1],
    [100, 65_535],
    [3, 65_536],
    [1000, 1_000_003],
  ])('combines %i and %i bytes as one CRC-32', (lengthA, lengthB) => {
    const a = randomBytes(lengthA);
    const b = randomBytes(lengthB);
    expect(new CrcShift(lengthB).combine(crc32(a), crc32(b))).toBe(crc32(Buffer.concat([a, b])));
  });
});

describe('MetricsBodies', () => {
  it('gzips to the plain body', async () => {
    const metrics = selfMetrics(() => NOW);
    const bodies = new MetricsBodies(metrics, () => NOW);
    const snapshot = await snapshotOf(2000);

    const plain = await bodies.build(snapshot, false);
    const gzip = await bodies.build(snapshot, true);
    expect(gzip.gzip).toBe(true);
    expect(plain.gzip).toBe(false);
    expect(gzip.length).toBe(joined(gzip).length);
    expect(plain.length).toBe(joined(plain).length);
    expect(gzip.length).toBeLessThan(plain.length / 5);
    expect(gunzipSync(joined(gzip)).equals(joined(plain))).toBe(true);
    expect(joined(plain).toString('utf8')).toContain(snapshot.text);
  });

  it('gzips without a snapshot', async () => {
    const bodies = new MetricsBodies(selfMetrics(() => NOW), () => NOW);
    const plain = await bodies.build(undefined, false);
    const gzip = await bodies.build(undefined, true);
    expect(gunzipSync(joined(gzip)).equals(joined(plain))).toBe(true);
    expect(joined(plain).toString('utf8')).toContain('\nngrok_up 0\n');
  });

  it('splits exporter metrics over 64 KiB into stored blocks', async () => {
    const metrics = selfMetrics(() => NOW);
    const wide = new Gauge({ name: 'wide_gauge', help: 'Many series.', labelNames: ['index'], registers: [metrics.exporterRegistry] });
    for (let index = 0; index < 6000; index++) wide.set({ index: String(index) }, index);
    const bodies = new MetricsBodies(metrics, () => NOW);
    const snapshot = await snapshotOf(10);

    const plain = await bodies.build(snapshot, false);
    expect(plain.chunks[1]?.length).toBeGreaterThan(2 * 65_535);
    const gzip = await bodies.build(snapshot, true);
    expect(gunzipSync(joined(gzip)).equals(joined(plain))).toBe(true);
  });

  it('renders the process metrics once per max age', async () => {
    let now = NOW;
    const bodies = new MetricsBodies(selfMetrics(() => now), () => now);

    const first = await bodies.build(undefined, false);
    now += PROCESS_METRICS_MAX_AGE_MS - 1;
    const cached = await bodies.build(undefined, false);
    now += 1;
    const renewed = await bodies.build(undefined, false);

    expect(cached.chunks[0]).toBe(first.chunks[0]);
    expect(renewed.chunks[0]).not.toBe(first.chunks[0]);
    expect(cached.chunks[1]).not.toBe(first.chunks[1]);
  });

  it('keeps the text of one registry', async () => {
    const metrics = selfMetrics(() => NOW);
    const bodies = new MetricsBodies(metrics, () => NOW);
    const body = joined(await bodies.build(undefined, false)).toString('utf8');

    const withoutProcess = (text: string): string => text.replace(/^(process_|nodejs_|# (HELP|TYPE) (process_|nodejs_)).*\n/gm, '');
    expect(withoutProcess(body)).toBe(withoutProcess(await metrics.registry.metrics()));
    expect(body).toMatch(/\n\n# HELP ngrok_up /);
  });
});

describe('/metrics encoding', () => {
  let harness: Harness | undefined;

  afterEach(async () => {
    await harness?.close();
    harness = undefined;
  });

  function get(path: string, headers: Record<string, string>, method = 'GET'): Promise<{ headers: Record<string, unknown>; body: Buffer }> {
    const url = `${harness?.exporter.url}${path}`;
    return new Promise((resolve, reject) => {
      const outgoing = request(url, { method, headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ headers: response.headers, body: Buffer.concat(chunks) }));
        response.on('error', reject);
      });
      outgoing.on('error', reject);
      outgoing.end();
    });
  }

  it.each([
    ['gzip', 'gzip'],
    ['gzip, deflate, br', 'gzip'],
    ['identity;q=0, gzip', 'gzip'],
    ['gzip;q=0', undefined],
    ['deflate', undefined],
    ['identity', undefined],
  ])('answers Accept-Encoding %j with %s', async (acceptEncoding, expected) => {
    harness = await startHarness({ simulator: { syntheticSessions: 300 } });
    await until(() => harness?.exporter.refresher.current() !== undefined);

    const response = await get('/metrics', { 'accept-encoding': acceptEncoding });
    expect(response.headers['content-encoding']).toBe(expected);
    expect(response.headers.vary).toBe('accept-encoding');
    expect(Number(response.headers['content-length'])).toBe(response.body.length);
    const text = (expected === 'gzip' ? gunzipSync(response.body) : response.body).toString('utf8');
    expect(text).toContain('ngrok_app_sessions_listed 300\n');
  });

  it('answers HEAD with the length and no body', async () => {
    harness = await startHarness({ simulator: { syntheticSessions: 300 } });
    await until(() => harness?.exporter.refresher.current() !== undefined);

    const response = await get('/metrics', { 'accept-encoding': 'gzip' }, 'HEAD');
    expect(Number(response.headers['content-length'])).toBeGreaterThan(0);
    expect(response.body.length).toBe(0);
  });
});
