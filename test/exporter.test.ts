import { afterEach, describe, expect, it } from 'vitest';

import { formatTime, generateSessions } from '../src/simulator/index.js';
import { startHarness, sumOf, until, valueOf, type Harness } from './support/harness.js';

let harness: Harness | undefined;

afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

async function firstRefresh(current: Harness): Promise<void> {
  await until(() => current.exporter.refresher.state().snapshot !== undefined || current.exporter.refresher.state().consecutiveFailures > 0);
}

describe('exporter against the simulator', () => {
  it('pages through 2,345 sessions with an exact total', async () => {
    harness = await startHarness({ simulator: { syntheticSessions: 2345, seed: 11 } });
    await firstRefresh(harness);
    const text = await harness.scrape();

    const expectedActive = harness.simulator.account.activeCount();
    expect(expectedActive).toBeGreaterThan(0);
    expect(sumOf(text, 'ngrok_app_sessions_active')).toBe(expectedActive);
    expect(valueOf(text, 'ngrok_app_sessions_listed')).toBe(2345);
    expect(valueOf(text, 'ngrok_app_sessions_expired')).toBe(harness.simulator.account.expiredCount());
    expect(valueOf(text, 'ngrok_app_users_active')).toBe(harness.simulator.account.activeUserCount());
    expect(valueOf(text, 'ngrok_exporter_refresh_pages')).toBe(24);
    expect(harness.simulator.stats.requests).toBe(24);
    expect(valueOf(text, 'ngrok_up')).toBe(1);
  });

  it('sends the documented headers', async () => {
    harness = await startHarness({ simulator: { syntheticSessions: 10 } });
    await firstRefresh(harness);
    const [request] = harness.simulator.stats.requestLog;
    expect(request?.url).toBe('/app/sessions?limit=100');
    expect(request?.userAgent).toMatch(/^ngrok-sessions-exporter\/\d+\.\d+\.\d+\/node-v\d+/);
    expect(request?.status).toBe(200);
  });

  it('stops on a trailing empty page', async () => {
    harness = await startHarness({ simulator: { syntheticSessions: 300, trailingEmptyPage: true } });
    await firstRefresh(harness);
    const text = await harness.scrape();
    expect(harness.simulator.stats.requests).toBe(4);
    expect(valueOf(text, 'ngrok_app_sessions_listed')).toBe(300);
    expect(valueOf(text, 'ngrok_up')).toBe(1);
  });

  it('serves an empty account', async () => {
    harness = await startHarness({ simulator: { sessions: [] } });
    await firstRefresh(harness);
    const text = await harness.scrape();
    expect(valueOf(text, 'ngrok_up')).toBe(1);
    expect(valueOf(text, 'ngrok_app_sessions_listed')).toBe(0);
    expect(sumOf(text, 'ngrok_app_sessions_active')).toBe(0);
  });

  it('labels sessions by the configured labels', async () => {
    const now = Date.now();
    const sessions = generateSessions(3, { seed: 3, nowMs: now }).map((session, index) => ({
      ...session,
      expires_at: formatTime(now + 3_600_000),
      browser_session: { ...session.browser_session, location: index === 0 ? null : { country_code: 'FR' } },
    }));
    harness = await startHarness({ simulator: { sessions }, argv: ['--sessions.labels=country'] });
    await firstRefresh(harness);
    const text = await harness.scrape();
    expect(valueOf(text, 'ngrok_app_sessions_active{country="FR"}')).toBe(2);
    expect(valueOf(text, 'ngrok_app_sessions_active{country="unknown"}')).toBe(1);
  });

  it('stops at the maximum page count without publishing', async () => {
    harness = await startHarness({ simulator: { syntheticSessions: 500 }, argv: ['--ngrok.max-pages=3'] });
    await firstRefresh(harness);
    const text = await harness.scrape();
    expect(valueOf(text, 'ngrok_up')).toBe(0);
    expect(valueOf(text, 'ngrok_exporter_refresh_failures_total{reason="paging"}')).toBe(1);
    expect(text).not.toContain('ngrok_app_sessions_active{');
    expect(harness.simulator.stats.requests).toBe(3);
    expect(harness.logs.withMessage(/refresh failed/)[0]?.err).toMatchObject({ code: 'TOO_MANY_PAGES' });
  });

  it('keeps the previous counts when a walk fails', async () => {
    // 4 pages at 120 requests per minute stretch the 1 s interval to 2 s.
    harness = await startHarness({
      simulator: { syntheticSessions: 350 },
      argv: ['--refresh.interval=1s', '--ngrok.max-retries=0', '--ngrok.requests-per-minute=120'],
    });
    await firstRefresh(harness);
    const before = await harness.scrape();
    const activeBefore = sumOf(before, 'ngrok_app_sessions_active');

    harness.simulator.injectFault({ kind: 'corrupt', corruption: 'invalid-json', match: (request) => request.query.has('before_id') });
    await until(async () => {
      await harness!.scrape();
      return harness!.exporter.refresher.state().consecutiveFailures === 1;
    });
    const after = await harness.scrape();

    expect(valueOf(after, 'ngrok_up')).toBe(0);
    expect(sumOf(after, 'ngrok_app_sessions_active')).toBe(activeBefore);
    expect(valueOf(after, 'ngrok_exporter_refresh_failures_total{reason="invalid_response"}')).toBe(1);
    expect(valueOf(after, 'ngrok_exporter_last_refresh_success_timestamp_seconds')).toBe(
      valueOf(before, 'ngrok_exporter_last_refresh_success_timestamp_seconds'),
    );
    const failure = harness.logs.withMessage(/refresh failed/)[0];
    expect(failure?.level).toBe(50);
    expect(String((failure?.err as { message?: string }).message)).toMatch(/not JSON/);
  });

  it('serves self-metrics only before the first snapshot', async () => {
    harness = await startHarness({ simulator: { syntheticSessions: 100, latencyMs: 2_000 }, argv: ['--refresh.max-wait=0s'] });
    const text = await harness.scrape();
    expect(valueOf(text, 'ngrok_up')).toBe(0);
    expect(valueOf(text, 'ngrok_exporter_snapshot_stale')).toBe(1);
    expect(valueOf(text, 'ngrok_exporter_snapshot_age_seconds')).toBeUndefined();
    expect(text).toContain('# TYPE ngrok_exporter_snapshot_age_seconds gauge');
    expect(text).not.toContain('ngrok_app_sessions_active');
    expect(text).toContain('ngrok_exporter_build_info{');
    expect(text).toContain('process_resident_memory_bytes');
  });

  it('serves the landing page and health endpoints', async () => {
    harness = await startHarness({ simulator: { syntheticSessions: 10 } });
    await firstRefresh(harness);
    const landing = await harness.get('/');
    expect(landing.status).toBe(200);
    expect(landing.contentType).toMatch(/text\/html/);
    expect(landing.body).toContain('href="/metrics"');
    expect(landing.body).toMatch(/Version<\/th><td>\d+\.\d+\.\d+/);
    expect(landing.body).toMatch(/10 listed/);
    expect((await harness.get('/-/healthy')).status).toBe(200);
    expect((await harness.get('/-/ready')).status).toBe(200);
    expect((await harness.get('/nothing')).status).toBe(404);
  });
});
