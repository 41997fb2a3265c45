import { afterEach, describe, expect, it } from 'vitest';

import { startSimulator, type AppSession, type Simulator } from '../../src/simulator/index.js';
import { sumOf, valueOf } from '../support/harness.js';
import { parseExposition, type Sample } from './exposition.js';
import { TEST_API_KEY, activeSessions, manualClock, startTestExporter, type TestExporter } from './exporter.js';

const START_MS = Date.parse('2026-03-01T12:00:00Z');
const OVERFLOW = '__overflow__';

let simulator: Simulator | undefined;
let exporter: TestExporter | undefined;

afterEach(async () => {
  await exporter?.close();
  await simulator?.close();
  exporter = undefined;
  simulator = undefined;
});

/** Returns sessions with `browsers[i]` as browser. The first `recent` were active a minute ago, the rest an hour ago. */
function sessionsWithBrowsers(browsers: readonly string[], prefix = 'as_', recent = browsers.length, country?: (index: number) => string): AppSession[] {
  return activeSessions(browsers.length, START_MS, prefix).map((session, index) => ({
    ...session,
    last_active: new Date(START_MS - (index < recent ? 60_000 : 3_600_000)).toISOString(),
    browser_session: {
      ...session.browser_session,
      user_agent: { ...session.browser_session.user_agent, browser_name: browsers[index] as string },
      location: { country_code: country === undefined ? 'US' : country(index) },
    },
  }));
}

/** Returns `count(i)` copies of browser `B<i>` for each i from 0 to `kinds - 1`. */
function skewedBrowsers(kinds: number, count: (index: number) => number): string[] {
  return Array.from({ length: kinds }, (_, index) => Array.from({ length: count(index) }, () => `B${String(index).padStart(2, '0')}`)).flat();
}

function series(text: string, name: string): Sample[] {
  return parseExposition(text).filter((sample) => sample.name === name);
}

async function start(sessions: AppSession[], argv: string[]): Promise<string> {
  simulator = await startSimulator({ apiKey: TEST_API_KEY, sessions, now: () => START_MS, requestsPerMinute: null });
  exporter = await startTestExporter(simulator.url, { clock: manualClock(START_MS), argv });
  return exporter.waitForRefresh();
}

const FOLD_WARNING = /exceeded --sessions\.max-series/;

describe('--sessions.max-series', () => {
  it('folds the rarest browsers into one overflow series', async () => {
    // 30 browsers: B00 has 31 sessions, B01 has 30, ... B29 has 2.
    const browsers = skewedBrowsers(30, (index) => 31 - index);
    const text = await start(sessionsWithBrowsers(browsers, 'as_', 100), ['--sessions.labels=browser', '--sessions.max-series=10']);

    const active = series(text, 'ngrok_app_sessions_active');
    expect(active).toHaveLength(10);
    expect(active.filter((sample) => sample.labels.browser === OVERFLOW)).toHaveLength(1);
    expect(active.map((sample) => sample.labels.browser).filter((browser) => browser !== OVERFLOW).sort()).toEqual(
      ['B00', 'B01', 'B02', 'B03', 'B04', 'B05', 'B06', 'B07', 'B08'],
    );
    const foldedCount = browsers.filter((browser) => browser >= 'B09').length;
    expect(active.find((sample) => sample.labels.browser === OVERFLOW)?.value).toBe(foldedCount);
    expect(sumOf(text, 'ngrok_app_sessions_active')).toBe(browsers.length);
    expect(valueOf(text, 'ngrok_exporter_sessions_folded{metric="ngrok_app_sessions_active"}')).toBe(foldedCount);
    expect(valueOf(text, 'ngrok_exporter_session_series')).toBe(10);

    const recent = series(text, 'ngrok_app_sessions_recently_active');
    expect(recent.length).toBeLessThanOrEqual(10);
    expect(sumOf(text, 'ngrok_app_sessions_recently_active')).toBe(100);
    expect(recent.reduce((sum, sample) => sum + sample.value, 0)).toBe(100);

    expect(exporter!.logs.withMessage(FOLD_WARNING)).toEqual([expect.objectContaining({ level: 40, folded_sessions: foldedCount, series: 10 })]);
  });

  it('warns once per refresh that folds', async () => {
    const browsers = skewedBrowsers(12, () => 2);
    await start(sessionsWithBrowsers(browsers), ['--sessions.labels=browser', '--sessions.max-series=5']);
    expect(exporter!.logs.withMessage(FOLD_WARNING)).toHaveLength(1);

    await exporter!.refresh();
    expect(exporter!.logs.withMessage(FOLD_WARNING)).toHaveLength(2);

    simulator!.account.set(sessionsWithBrowsers(skewedBrowsers(3, () => 2)));
    const text = await exporter!.refresh();
    expect(exporter!.logs.withMessage(FOLD_WARNING)).toHaveLength(2);
    expect(parseExposition(text).filter((sample) => Object.values(sample.labels).includes(OVERFLOW))).toEqual([]);
    expect(valueOf(text, 'ngrok_exporter_sessions_folded{metric="ngrok_app_sessions_active"}')).toBe(0);
    expect(sumOf(text, 'ngrok_app_sessions_active')).toBe(6);
  });

  it('sets every label of the overflow series to __overflow__', async () => {
    const browsers = skewedBrowsers(8, (index) => 8 - index);
    const text = await start(sessionsWithBrowsers(browsers, 'as_', browsers.length, (index) => ['US', 'DE', 'FR'][index % 3] as string), ['--sessions.max-series=4']);

    const active = series(text, 'ngrok_app_sessions_active');
    expect(active).toHaveLength(4);
    const overflow = active.filter((sample) => Object.values(sample.labels).includes(OVERFLOW));
    expect(overflow).toHaveLength(1);
    expect(overflow[0]?.labels).toEqual({ country: OVERFLOW, device_type: OVERFLOW, browser: OVERFLOW, route: OVERFLOW });
    expect(sumOf(text, 'ngrok_app_sessions_active')).toBe(browsers.length);
  });

  it('keeps 10,000 series by default', async () => {
    const browsers = Array.from({ length: 10_050 }, (_, index) => `Browser ${index}`);
    const text = await start(sessionsWithBrowsers(browsers), ['--sessions.labels=browser']);

    expect(series(text, 'ngrok_app_sessions_active')).toHaveLength(10_000);
    expect(valueOf(text, `ngrok_app_sessions_active{browser="${OVERFLOW}"}`)).toBe(51);
    expect(valueOf(text, 'ngrok_exporter_sessions_folded{metric="ngrok_app_sessions_active"}')).toBe(51);
    expect(sumOf(text, 'ngrok_app_sessions_active')).toBe(10_050);
  });
});

describe('label values that vanish', () => {
  it('vanish from the next snapshot', async () => {
    const browsers = ['Chrome', 'Chrome', 'Firefox', 'Safari', 'Safari', 'Safari'];
    const before = await start(sessionsWithBrowsers(browsers, 'as_', 6, (index) => (index === 3 ? 'NZ' : 'US')), ['--sessions.labels=country,browser']);
    expect(before).toContain('browser="Safari"');
    expect(before).toContain('country="NZ"');

    simulator!.account.set(sessionsWithBrowsers(['Chrome', 'Chrome', 'Firefox'], 'as_', 3));
    const after = await exporter!.refresh();

    expect(valueOf(after, 'ngrok_up')).toBe(1);
    expect(after).not.toContain('Safari');
    expect(after).not.toContain('"NZ"');
    expect(series(after, 'ngrok_app_sessions_active').map((sample) => sample.labels)).toEqual(
      expect.arrayContaining([
        { country: 'US', browser: 'Chrome' },
        { country: 'US', browser: 'Firefox' },
      ]),
    );
    expect(series(after, 'ngrok_app_sessions_active')).toHaveLength(2);
    expect(series(after, 'ngrok_app_sessions_recently_active')).toHaveLength(2);
    expect(sumOf(after, 'ngrok_app_sessions_active')).toBe(3);
    expect(valueOf(after, 'ngrok_exporter_session_series')).toBe(2);
  });

  it('vanish when sessions expire between walks', async () => {
    const sessions = sessionsWithBrowsers(['Chrome', 'Edge']);
    (sessions[1] as AppSession).expires_at = new Date(START_MS + 5_000).toISOString();
    const before = await start(sessions, ['--sessions.labels=browser']);
    expect(before).toContain('browser="Edge"');

    exporter!.clock.advance(10_000);
    const after = await exporter!.refresh();
    expect(after).not.toContain('browser="Edge"');
    expect(valueOf(after, 'ngrok_app_sessions_expired')).toBe(1);
    expect(sumOf(after, 'ngrok_app_sessions_active')).toBe(1);
  });

  it('leave no session series when the account empties', async () => {
    await start(sessionsWithBrowsers(['Chrome', 'Edge']), ['--sessions.labels=browser']);
    simulator!.account.set([]);
    const after = await exporter!.refresh();

    expect(valueOf(after, 'ngrok_up')).toBe(1);
    expect(series(after, 'ngrok_app_sessions_active')).toHaveLength(0);
    expect(series(after, 'ngrok_app_sessions_recently_active')).toHaveLength(0);
    expect(valueOf(after, 'ngrok_app_sessions_listed')).toBe(0);
  });
});
