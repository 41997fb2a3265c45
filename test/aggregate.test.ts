import { describe, expect, it } from 'vitest';

import type { LabelName } from '../src/config.js';
import type { ParsedSession } from '../src/ngrok/parse.js';
import { KEY_SEPARATOR, OVERFLOW_VALUE, SessionAggregator, sanitizeLabelValue } from '../src/sessions/aggregate.js';
import { buildSnapshot } from '../src/sessions/snapshot.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const MINUTE = 60_000;

function session(id: string, fields: Partial<ParsedSession> = {}): ParsedSession {
  return {
    id,
    expiresAtMs: NOW + 60 * MINUTE,
    lastActiveMs: NOW - 30 * MINUTE,
    userId: `au_${id}`,
    country: 'US',
    deviceType: 'Desktop',
    browser: 'Chrome',
    os: 'MacOS',
    routeId: undefined,
    endpointId: 'ep_1',
    publicUrl: 'https://app.example.com',
    ...fields,
  };
}

function aggregator(labelNames: readonly LabelName[] = ['country', 'device_type', 'browser', 'route']): SessionAggregator {
  return new SessionAggregator({ labelNames, nowMs: NOW, recentWindowMs: 5 * MINUTE, maxLabelLength: 32 });
}

describe('SessionAggregator', () => {
  it('counts active, expired, recent and users', () => {
    const sessions = aggregator();
    sessions.addPage([
      session('a'),
      session('b', { userId: 'au_a', lastActiveMs: NOW - MINUTE }),
      session('c', { expiresAtMs: NOW - 1 }),
      session('d', { expiresAtMs: undefined, userId: undefined }),
      session('e', { expiresAtMs: NOW }),
    ]);
    const result = sessions.finish();
    expect(result.listed).toBe(5);
    expect(result.active).toBe(3);
    expect(result.expired).toBe(2);
    expect(result.recentlyActive).toBe(1);
    expect(result.activeUsers).toBe(1);
  });

  it('counts a repeated id once', () => {
    const sessions = aggregator();
    sessions.addPage([session('a'), session('b')]);
    sessions.addPage([session('b'), session('c')]);
    const result = sessions.finish();
    expect(result.listed).toBe(3);
    expect(result.active).toBe(3);
    expect(result.duplicates).toBe(1);
  });

  it('maps missing attributes to unknown and missing refs to none', () => {
    const sessions = aggregator(['country', 'device_type', 'browser', 'route', 'endpoint']);
    sessions.addPage([session('a', { country: undefined, deviceType: undefined, browser: undefined, endpointId: undefined }), session('b', { routeId: 'rt_1', country: 'de' })]);
    const keys = [...sessions.finish().series.keys()].map((key) => key.split(KEY_SEPARATOR));
    expect(keys).toContainEqual(['unknown', 'unknown', 'unknown', 'none', 'none']);
    expect(keys).toContainEqual(['DE', 'Desktop', 'Chrome', 'rt_1', 'ep_1']);
  });

  it('computes only the selected labels', () => {
    const sessions = aggregator(['browser']);
    sessions.addPage([session('a'), session('b', { country: 'FR' }), session('c', { browser: 'Firefox' })]);
    const series = sessions.finish().series;
    expect([...series.keys()].sort()).toEqual(['Chrome', 'Firefox']);
    expect(series.get('Chrome')?.active).toBe(2);
  });
});

describe('sanitizeLabelValue', () => {
  it.each([
    ['Chrome', 'Chrome'],
    ['  ', 'unknown'],
    ['a\nb', 'a\uFFFDb'],
    ['a\u0000b', 'a\uFFFDb'],
    ['\u202Eevil', '\uFFFDevil'],
    ['bad\uD800', 'bad\uFFFD'],
    ['quote"back\\slash', 'quote"back\\slash'],
    [OVERFLOW_VALUE, `${OVERFLOW_VALUE}\uFFFD`],
    ['x'.repeat(40), `${'x'.repeat(31)}…`],
  ])('turns %j into %j', (raw, expected) => {
    expect(sanitizeLabelValue(raw, 32, 'unknown')).toBe(expected);
  });
});

describe('buildSnapshot', () => {
  it('renders gauges whose sum is the active count', async () => {
    const sessions = aggregator();
    sessions.addPage([session('a'), session('b', { country: 'DE' }), session('c', { country: 'DE', lastActiveMs: NOW }), session('x', { expiresAtMs: NOW - 1 })]);
    const snapshot = await buildSnapshot(sessions.finish(), { pages: 1, completedAtMs: NOW, maxSeries: 100 });
    expect(snapshot.text).toContain('ngrok_app_sessions_active{country="DE",device_type="Desktop",browser="Chrome",route="none"} 2');
    expect(snapshot.text).toContain('ngrok_app_sessions_active{country="US",device_type="Desktop",browser="Chrome",route="none"} 1');
    expect(snapshot.text).toContain('ngrok_app_sessions_expired 1');
    expect(snapshot.text).toContain('ngrok_app_sessions_recently_active{country="DE",device_type="Desktop",browser="Chrome",route="none"} 1');
    expect(snapshot.text).toMatch(/# HELP ngrok_app_sessions_active .*Cached/);
    expect(snapshot.active).toBe(3);
  });

  it('folds the rarest combinations beyond max series', async () => {
    const sessions = aggregator(['country']);
    const countries = ['US', 'US', 'US', 'DE', 'DE', 'FR', 'JP', 'BR'];
    sessions.addPage(countries.map((country, index) => session(`s${index}`, { country })));
    const snapshot = await buildSnapshot(sessions.finish(), { pages: 1, completedAtMs: NOW, maxSeries: 3 });

    expect(snapshot.activeSeries).toBe(3);
    expect(snapshot.foldedSessions).toBe(3);
    expect(snapshot.text).toContain('ngrok_app_sessions_active{country="US"} 3');
    expect(snapshot.text).toContain('ngrok_app_sessions_active{country="DE"} 2');
    expect(snapshot.text).toContain(`ngrok_app_sessions_active{country="${OVERFLOW_VALUE}"} 3`);
    expect(snapshot.text).toContain('ngrok_exporter_sessions_folded{metric="ngrok_app_sessions_active"} 3');
    expect(snapshot.text).not.toContain('country="FR"');
  });

  it('escapes hostile label values', async () => {
    const sessions = aggregator(['browser']);
    sessions.addPage([session('a', { browser: 'say "hi"\\' })]);
    const snapshot = await buildSnapshot(sessions.finish(), { pages: 1, completedAtMs: NOW, maxSeries: 10 });
    expect(snapshot.text).toContain('ngrok_app_sessions_active{browser="say \\"hi\\"\\\\"} 1');
  });
});
