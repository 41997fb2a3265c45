import fc from 'fast-check';
import { Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';

import { LABEL_NAMES, type LabelName } from '../src/config.js';
import type { ParsedSession } from '../src/ngrok/parse.js';
import { KEY_SEPARATOR, OVERFLOW_VALUE, SessionAggregator, type AggregateResult, type SeriesCounts } from '../src/sessions/aggregate.js';
import { buildSnapshot } from '../src/sessions/snapshot.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const MINUTE = 60_000;
const CACHED_NOTE = 'Cached: the value is from the last complete walk of the ngrok API, see ngrok_exporter_snapshot_age_seconds.';
const OVERFLOW_KEY = '\u0001overflow';

/**
 * The session gauges rendered through prom-client Gauges in a Registry, as
 * the snapshot did before it wrote the text itself: the reference that the
 * direct rendering must match byte for byte.
 */
async function renderWithPromClient(result: AggregateResult, options: { pages: number; maxSeries: number }): Promise<string> {
  const labelNames = [...result.labelNames];
  const active = fold(result.series, (counts) => counts.active, options.maxSeries);
  const recent = fold(result.series, (counts) => counts.recentlyActive, options.maxSeries);

  const registry = new Registry();
  const gauge = (name: string, help: string, withLabels: boolean): Gauge =>
    new Gauge({ name, help: `${help} ${CACHED_NOTE}`, labelNames: withLabels ? labelNames : [], registers: [registry] });
  const setSeries = (target: Gauge, series: Map<string, number>): void => {
    for (const [key, value] of series) {
      const values = key === OVERFLOW_KEY ? labelNames.map(() => OVERFLOW_VALUE) : key.split(KEY_SEPARATOR);
      target.set(Object.fromEntries(labelNames.map((name, index) => [name, values[index] as string])), value);
    }
  };

  setSeries(gauge('ngrok_app_sessions_active', 'Application sessions that have not expired.', true), active.series);
  setSeries(
    gauge('ngrok_app_sessions_recently_active', 'Sessions that have not expired and were active within the recent window (--sessions.recent-window).', true),
    recent.series,
  );
  gauge('ngrok_app_sessions_expired', 'Sessions still listed by the API whose expires_at has passed.', false).set(result.expired);
  gauge('ngrok_app_sessions_listed', 'Sessions listed by the API, expired or not.', false).set(result.listed);
  gauge('ngrok_app_users_active', 'Distinct application users with at least one session that has not expired.', false).set(result.activeUsers);
  gauge('ngrok_exporter_refresh_pages', 'Pages walked by the last complete walk.', false).set(options.pages);
  gauge('ngrok_exporter_session_series', 'Series of ngrok_app_sessions_active in the served snapshot.', false).set(active.series.size);
  const folded = new Gauge({
    name: 'ngrok_exporter_sessions_folded',
    help: `Sessions counted in the ${OVERFLOW_VALUE} series because the gauge reached --sessions.max-series. ${CACHED_NOTE}`,
    labelNames: ['metric'],
    registers: [registry],
  });
  folded.set({ metric: 'ngrok_app_sessions_active' }, active.folded);
  folded.set({ metric: 'ngrok_app_sessions_recently_active' }, recent.folded);
  return registry.metrics();
}

function fold(all: Map<string, SeriesCounts>, valueOf: (counts: SeriesCounts) => number, maxSeries: number): { series: Map<string, number>; folded: number } {
  const entries = [...all].map(([key, counts]): [string, number] => [key, valueOf(counts)]).filter(([, value]) => value > 0);
  if (entries.length <= maxSeries) return { series: new Map(entries), folded: 0 };
  entries.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const kept = entries.slice(0, Math.max(0, maxSeries - 1));
  const folded = entries.slice(kept.length).reduce((sum, [, value]) => sum + value, 0);
  return { series: new Map([...kept, [OVERFLOW_KEY, folded]]), folded };
}

function session(index: number, attributes: Partial<ParsedSession>): ParsedSession {
  return {
    id: `ses_${index}`,
    expiresAtMs: NOW + 60 * MINUTE,
    lastActiveMs: NOW - 30 * MINUTE,
    userId: `au_${index % 7}`,
    country: undefined,
    deviceType: undefined,
    browser: undefined,
    os: undefined,
    routeId: undefined,
    endpointId: undefined,
    publicUrl: undefined,
    ...attributes,
  };
}

// Commas are left out: prom-client keys a series by "name:value," pairs, so it
// merges two combinations whose values contain "," and ":" in a way that makes
// those keys equal, while the direct rendering keeps both.
const labelValue = fc.option(fc.stringMatching(/^[a-zA-Z0-9 "\\:\n\u00e9\u2026_-]{0,12}$/), { nil: undefined });

const sessionAttributes = fc.record({
  country: labelValue,
  deviceType: labelValue,
  browser: labelValue,
  os: labelValue,
  routeId: labelValue,
  endpointId: labelValue,
  publicUrl: labelValue,
  expired: fc.boolean(),
  recent: fc.boolean(),
});

describe('snapshot text', () => {
  it('matches prom-client rendering', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.subarray([...LABEL_NAMES] as LabelName[]),
        fc.array(sessionAttributes, { maxLength: 60 }),
        fc.integer({ min: 1, max: 8 }),
        async (labelNames, attributes, maxSeries) => {
          const aggregator = new SessionAggregator({ labelNames, nowMs: NOW, recentWindowMs: 5 * MINUTE, maxLabelLength: 8 });
          aggregator.addPage(
            attributes.map(({ expired, recent, ...labels }, index) =>
              session(index, { ...labels, expiresAtMs: expired ? NOW - MINUTE : NOW + MINUTE, lastActiveMs: recent ? NOW - MINUTE : NOW - 30 * MINUTE }),
            ),
          );
          const result = aggregator.finish();

          const snapshot = await buildSnapshot(result, { pages: 3, completedAtMs: NOW, maxSeries });
          expect(snapshot.text).toBe(await renderWithPromClient(result, { pages: 3, maxSeries }));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps a gauge without labels at zero', async () => {
    const aggregator = new SessionAggregator({ labelNames: [], nowMs: NOW, recentWindowMs: 5 * MINUTE, maxLabelLength: 8 });
    aggregator.addPage([session(1, { expiresAtMs: NOW - MINUTE })]);
    const result = aggregator.finish();

    const snapshot = await buildSnapshot(result, { pages: 1, completedAtMs: NOW, maxSeries: 10 });
    expect(snapshot.text).toContain('\nngrok_app_sessions_active 0\n');
    expect(snapshot.text).toBe(await renderWithPromClient(result, { pages: 1, maxSeries: 10 }));
  });
});
