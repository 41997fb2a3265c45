import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { RequestBudget } from '../src/budget.js';
import { ApiError } from '../src/errors.js';
import { createLogger } from '../src/logger.js';
import { createSelfMetrics, type SelfMetrics } from '../src/metrics/self.js';
import { Refresher } from '../src/refresher.js';
import type { Snapshot } from '../src/sessions/snapshot.js';
import { LogCapture } from './support/logs.js';

const INTERVAL_MS = 60_000;

function snapshotAt(completedAtMs: number, pages = 1): Snapshot {
  return {
    completedAtMs,
    pages,
    listed: 1,
    active: 1,
    expired: 0,
    recentlyActive: 0,
    activeUsers: 1,
    activeSeries: 1,
    foldedSessions: 0,
    duplicates: 0,
    invalidFields: 0,
    text: `ngrok_app_sessions_active{country="US"} ${completedAtMs}\n`,
  };
}

interface Setup {
  refresher: Refresher;
  metrics: SelfMetrics;
  logs: LogCapture;
  walks: { count: number };
}

function setup(walk: (count: number) => Promise<Snapshot>, requestsPerMinute = 60): Setup {
  const logs = new LogCapture();
  const walks = { count: 0 };
  let refresher: Refresher | undefined;
  const metrics = createSelfMetrics({
    version: 'test',
    revision: 'test',
    budget: new RequestBudget({ limit: requestsPerMinute }),
    currentSnapshot: () => refresher?.current(),
    stalenessLimitMs: () => refresher?.stalenessLimitMs() ?? 15 * 60_000,
  });
  refresher = new Refresher({
    walk: () => walk(++walks.count),
    refreshIntervalMs: INTERVAL_MS,
    maxStalenessMs: 15 * 60_000,
    requestsPerMinute,
    metrics,
    logger: createLogger({ level: 'debug', destination: logs }),
  });
  return { refresher, metrics, logs, walks };
}

async function metricValue(metrics: SelfMetrics, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = await metrics.registry.getSingleMetric(name)?.get();
  return metric?.values.find((value) => Object.entries(labels).every(([key, expected]) => value.labels[key] === expected))?.value;
}

describe('Refresher', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: Date.parse('2026-01-01T00:00:00Z') });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('shares one walk between concurrent scrapes', async () => {
    let release: (snapshot: Snapshot) => void = () => undefined;
    const { refresher, walks } = setup(() => new Promise((resolve) => (release = resolve)));

    const scrapes = Array.from({ length: 50 }, () => refresher.waitForScrape(5_000));
    release(snapshotAt(Date.now()));
    await Promise.all(scrapes);

    expect(walks.count).toBe(1);
    expect(refresher.current()).toBeDefined();
  });

  it('walks again only after the interval', async () => {
    const { refresher, walks } = setup(async () => snapshotAt(Date.now()));
    await refresher.waitForScrape(1_000);
    for (let scrape = 0; scrape < 10; scrape++) {
      await vi.advanceTimersByTimeAsync(5_000);
      await refresher.waitForScrape(1_000);
    }
    expect(walks.count).toBe(1);

    await vi.advanceTimersByTimeAsync(INTERVAL_MS);
    await refresher.waitForScrape(1_000);
    expect(walks.count).toBe(2);
  });

  it('refreshes on a scrape just before the interval', async () => {
    const { refresher, walks } = setup(async () => snapshotAt(Date.now()));
    await refresher.waitForScrape(1_000);
    await vi.advanceTimersByTimeAsync(INTERVAL_MS - 6_000);
    await refresher.waitForScrape(1_000);
    expect(walks.count).toBe(1);

    // Scrapes every 60 s arrive a few milliseconds early or late; early ones still refresh.
    await vi.advanceTimersByTimeAsync(5_990);
    await refresher.waitForScrape(1_000);
    expect(walks.count).toBe(2);
  });

  it('answers from the old snapshot when the walk is slow', async () => {
    const { refresher } = setup(async (count) => {
      if (count > 1) await new Promise((resolve) => setTimeout(resolve, 30_000));
      return snapshotAt(Date.now());
    });
    await refresher.waitForScrape(1_000);
    const first = refresher.current();

    await vi.advanceTimersByTimeAsync(INTERVAL_MS);
    const scrape = refresher.waitForScrape(2_000);
    await vi.advanceTimersByTimeAsync(2_000);
    await scrape;
    expect(refresher.current()).toBe(first);
    expect(refresher.state().refreshing).toBe(true);

    await vi.advanceTimersByTimeAsync(30_000);
    expect(refresher.current()).not.toBe(first);
  });

  it('keeps the snapshot and waits after a failure', async () => {
    const { refresher, metrics, logs, walks } = setup(async (count) => {
      if (count === 1) return snapshotAt(Date.now());
      throw new ApiError('HTTP_401', 'GET x failed: HTTP 401', { reason: 'auth', status: 401 });
    });
    await refresher.waitForScrape(1_000);
    const first = refresher.current();
    expect(await metricValue(metrics, 'ngrok_up')).toBe(1);

    await vi.advanceTimersByTimeAsync(INTERVAL_MS);
    await refresher.waitForScrape(1_000);
    expect(walks.count).toBe(2);
    expect(refresher.current()).toBe(first);
    expect(await metricValue(metrics, 'ngrok_up')).toBe(0);
    expect(await metricValue(metrics, 'ngrok_exporter_refresh_failures_total', { reason: 'auth' })).toBe(1);
    expect(logs.withMessage(/refresh failed/)).toHaveLength(1);

    // Scrapes during the backoff cost no walk.
    for (let scrape = 0; scrape < 10; scrape++) await refresher.waitForScrape(1_000);
    expect(walks.count).toBe(2);

    await vi.advanceTimersByTimeAsync(INTERVAL_MS);
    await refresher.waitForScrape(1_000);
    expect(walks.count).toBe(3);
    // The second identical failure is counted but not logged at error level again.
    expect(logs.records().filter((record) => record.level === 50)).toHaveLength(1);
  });

  it('backs off exponentially on repeated failures', async () => {
    const { refresher, walks } = setup(async () => {
      throw new ApiError('HTTP_503', 'GET x failed: HTTP 503', { reason: 'server_error', status: 503 });
    });
    await refresher.waitForScrape(1_000);
    expect(refresher.state().nextAttemptAtMs - Date.now()).toBe(INTERVAL_MS);
    await vi.advanceTimersByTimeAsync(INTERVAL_MS);
    await refresher.waitForScrape(1_000);
    expect(refresher.state().nextAttemptAtMs - Date.now()).toBe(2 * INTERVAL_MS);
    expect(walks.count).toBe(2);
  });

  it('waits out a long Retry-After', async () => {
    const { refresher } = setup(async () => {
      throw new ApiError('HTTP_429', 'rate limited', { reason: 'rate_limited', status: 429, retryAfterSeconds: 300 });
    });
    await refresher.waitForScrape(1_000);
    expect(refresher.state().nextAttemptAtMs - Date.now()).toBe(300_000);
  });

  it('stops serving a snapshot past the staleness limit', async () => {
    const { refresher } = setup(async (count) => {
      if (count === 1) return snapshotAt(Date.now());
      throw new ApiError('TIMEOUT', 'timed out', { reason: 'timeout' });
    });
    await refresher.waitForScrape(1_000);
    expect(refresher.servable()).toBeDefined();
    await vi.advanceTimersByTimeAsync(15 * 60_000 + 1);
    expect(refresher.servable()).toBeUndefined();
    expect(refresher.current()).toBeDefined();
  });

  it('stretches the interval to fit the budget', async () => {
    const { refresher, metrics, logs } = setup(async () => snapshotAt(Date.now(), 150), 60);
    await refresher.waitForScrape(1_000);
    expect(refresher.state().effectiveIntervalMs).toBe(150_000);
    expect(await metricValue(metrics, 'ngrok_exporter_refresh_interval_seconds')).toBe(150);
    expect(logs.withMessage(/interval was stretched/)).toHaveLength(1);
  });

  it('keeps serving through a stretched interval', async () => {
    // 900 pages at 60 requests per minute stretch the interval to 15 minutes.
    const { refresher } = setup(async () => snapshotAt(Date.now(), 900), 60);
    await refresher.waitForScrape(1_000);
    expect(refresher.stalenessLimitMs()).toBe(30 * 60_000);
    await vi.advanceTimersByTimeAsync(20 * 60_000);
    expect(refresher.servable()).toBeDefined();
  });
});
