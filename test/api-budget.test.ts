import { afterEach, describe, expect, it } from 'vitest';

import { startHarness, sumOf, until, valueOf, type Harness } from './support/harness.js';

let harness: Harness | undefined;

afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

/** Largest number of request times that fall inside any window of `windowMs`. */
function maxInWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let max = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    while ((sorted[end] as number) - (sorted[start] as number) >= windowMs) start++;
    max = Math.max(max, end - start + 1);
  }
  return max;
}

describe('API budget', () => {
  it('shares one walk among 50 concurrent scrapes', async () => {
    harness = await startHarness({ simulator: { syntheticSessions: 450, latencyMs: 50 }, argv: ['--refresh.max-wait=20s'] });
    const texts = await Promise.all(Array.from({ length: 50 }, () => harness!.scrape()));

    expect(harness.simulator.stats.requests).toBe(5);
    expect(harness.simulator.stats.maxInFlight).toBe(1);
    const expected = harness.simulator.account.activeCount();
    for (const text of texts) expect(sumOf(text, 'ngrok_app_sessions_active')).toBe(expected);
  });

  it('walks once for ten scrapes within the interval', async () => {
    harness = await startHarness({ simulator: { syntheticSessions: 250 } });
    for (let scrape = 0; scrape < 10; scrape++) await harness.scrape();
    expect(harness.simulator.stats.requests).toBe(3);
    expect(valueOf(await harness.scrape(), 'ngrok_exporter_refreshes_total{result="success"}')).toBe(1);
  });

  it('stays within the budget under a 429 storm', async () => {
    // A budget of 5 requests per 2 s window replaces 60 per minute, to keep the test short.
    harness = await startHarness({
      simulator: { syntheticSessions: 250 },
      argv: ['--ngrok.requests-per-minute=5', '--ngrok.max-retries=20', '--ngrok.retry-min-delay=0s', '--ngrok.retry-max-delay=0s'],
      budgetWindowMs: 2_000,
    });
    harness.simulator.injectFault({ kind: 'respond', status: 429, errorCode: 'ERR_NGROK_226', times: 12 });
    await until(() => harness!.exporter.refresher.state().snapshot !== undefined, 20_000);

    const times = harness.simulator.stats.requestTimesMs;
    expect(times.length).toBe(15);
    expect(maxInWindow(times, 2_000)).toBeLessThanOrEqual(5);
    const text = await harness.scrape();
    expect(valueOf(text, 'ngrok_exporter_api_rate_limited_total')).toBe(12);
    expect(valueOf(text, 'ngrok_exporter_api_retries_total')).toBe(12);
    expect(valueOf(text, 'ngrok_exporter_api_requests_total{code="429"}')).toBe(12);
    expect(valueOf(text, 'ngrok_up')).toBe(1);
  });

  it('honours Retry-After in seconds', async () => {
    harness = await startHarness({
      simulator: { syntheticSessions: 150 },
      argv: ['--ngrok.retry-min-delay=0s', '--ngrok.retry-max-delay=5s'],
    });
    harness.simulator.injectFault({
      kind: 'respond',
      status: 429,
      errorCode: 'ERR_NGROK_226',
      headers: { 'retry-after': '1' },
      match: (request) => request.query.has('before_id'),
    });
    await until(() => harness!.exporter.refresher.state().snapshot !== undefined);

    const [, limited, retried] = harness.simulator.stats.requestLog;
    expect(limited?.status).toBe(429);
    expect(retried?.status).toBe(200);
    expect((retried?.atMs as number) - (limited?.atMs as number)).toBeGreaterThanOrEqual(1_000);
    // The retry resumed at the page that failed, not at the first page.
    expect(retried?.url).toBe(limited?.url);
    expect(harness.logs.withMessage(/retrying/)[0]).toMatchObject({ retry_after_seconds: 1, attempt: 1 });
  });

  it('honours Retry-After as an HTTP date', async () => {
    harness = await startHarness({
      simulator: { syntheticSessions: 50 },
      argv: ['--ngrok.retry-min-delay=0s', '--ngrok.retry-max-delay=5s'],
    });
    harness.simulator.injectFault({ kind: 'respond', status: 503, headers: { 'retry-after': new Date(Date.now() + 2_000).toUTCString() } });
    await until(() => harness!.exporter.refresher.state().snapshot !== undefined);

    const [failed, retried] = harness.simulator.stats.requestLog;
    expect(failed?.status).toBe(503);
    expect((retried?.atMs as number) - (failed?.atMs as number)).toBeGreaterThanOrEqual(1_000);
  });

  it('does not retry a 401 and reports it', async () => {
    harness = await startHarness({ simulator: { syntheticSessions: 50 }, exporterKey: 'wrongpart_wrongsecret' });
    await until(() => harness!.exporter.refresher.state().consecutiveFailures === 1);
    for (let scrape = 0; scrape < 5; scrape++) await harness.scrape();

    expect(harness.simulator.stats.requests).toBe(1);
    const text = await harness.scrape();
    expect(valueOf(text, 'ngrok_up')).toBe(0);
    expect(valueOf(text, 'ngrok_exporter_refresh_failures_total{reason="auth"}')).toBe(1);
    expect(valueOf(text, 'ngrok_exporter_api_retries_total')).toBe(0);

    const [failure] = harness.logs.withMessage(/refresh failed/);
    expect(failure).toMatchObject({ level: 50, status: 401, ngrok_error_code: 'ERR_NGROK_203' });
    expect(failure?.operation_id).toMatch(/^op_/);
    expect(String((failure?.err as { message: string }).message)).toMatch(/Check that NGROK_API_KEY holds a valid ngrok API key/);
  });

  it('keeps the snapshot when a walk fails part-way', async () => {
    harness = await startHarness({
      simulator: { syntheticSessions: 450 },
      argv: ['--refresh.interval=1s', '--ngrok.requests-per-minute=120', '--ngrok.max-retries=1', '--ngrok.retry-min-delay=0s'],
    });
    await until(() => harness!.exporter.refresher.state().snapshot !== undefined);
    const before = await harness.scrape();
    const snapshot = harness.exporter.refresher.current();

    harness.simulator.injectFault({ kind: 'respond', status: 500, times: 2, match: (request) => request.query.has('before_id') });
    harness.simulator.account.set(harness.simulator.account.sessions().slice(0, 300));
    await until(async () => {
      await harness!.scrape();
      return harness!.exporter.refresher.state().consecutiveFailures === 1;
    });

    const after = await harness.scrape();
    expect(harness.exporter.refresher.current()).toBe(snapshot);
    expect(sumOf(after, 'ngrok_app_sessions_active')).toBe(sumOf(before, 'ngrok_app_sessions_active'));
    expect(valueOf(after, 'ngrok_app_sessions_listed')).toBe(450);
    expect(valueOf(after, 'ngrok_up')).toBe(0);
    expect(valueOf(after, 'ngrok_exporter_refresh_failures_total{reason="server_error"}')).toBe(1);
  });

  it('answers from the last snapshot when the walk outlasts the deadline', async () => {
    harness = await startHarness({
      simulator: { syntheticSessions: 250 },
      argv: ['--refresh.interval=1s', '--ngrok.requests-per-minute=120', '--refresh.timeout-offset=200ms'],
    });
    await until(() => harness!.exporter.refresher.state().snapshot !== undefined);
    const first = harness.exporter.refresher.current();
    const firstText = await harness.scrape();

    harness.simulator.setLatency(1_500);
    await until(async () => {
      await harness!.scrape({ 'x-prometheus-scrape-timeout-seconds': '0.5' });
      return harness!.exporter.refresher.state().refreshing;
    });
    const during = await harness.scrape({ 'x-prometheus-scrape-timeout-seconds': '0.5' });

    // The scrape returned while the walk was still running, with the previous snapshot.
    expect(harness.exporter.refresher.state().refreshing).toBe(true);
    expect(harness.exporter.refresher.current()).toBe(first);
    expect(sumOf(during, 'ngrok_app_sessions_active')).toBe(sumOf(firstText, 'ngrok_app_sessions_active'));
  });
});
