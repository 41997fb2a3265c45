import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { LABEL_NAMES, type LabelName } from '../src/config.js';
import type { ParsedSession } from '../src/ngrok/parse.js';
import { KEY_SEPARATOR, NO_REF_VALUE, SessionAggregator, UNKNOWN_VALUE, sanitizeLabelValue } from '../src/sessions/aggregate.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const MINUTE = 60_000;
const MAX_LABEL_LENGTH = 8;

const RAW_VALUES: Record<LabelName, (session: ParsedSession) => string | undefined> = {
  country: (session) => session.country?.toUpperCase(),
  device_type: (session) => session.deviceType,
  browser: (session) => session.browser,
  os: (session) => session.os,
  public_url: (session) => session.publicUrl,
  route: (session) => session.routeId,
  endpoint: (session) => session.endpointId,
};

/** Aggregates the obvious way: a Set of ids, and a key built and sanitised anew for every session. */
function aggregateNaively(labelNames: readonly LabelName[], pages: readonly ParsedSession[][]): { listed: number; duplicates: number; series: [string, number, number][] } {
  const seen = new Set<string>();
  const series = new Map<string, [number, number]>();
  let duplicates = 0;
  for (const session of pages.flat()) {
    if (seen.has(session.id)) {
      duplicates++;
      continue;
    }
    seen.add(session.id);
    if (session.expiresAtMs !== undefined && session.expiresAtMs <= NOW) continue;

    const key = labelNames
      .map((name) => {
        const missing = name === 'route' || name === 'endpoint' ? NO_REF_VALUE : UNKNOWN_VALUE;
        const raw = RAW_VALUES[name](session);
        return raw === undefined ? missing : sanitizeLabelValue(raw, MAX_LABEL_LENGTH, missing);
      })
      .join(KEY_SEPARATOR);
    const counts = series.get(key) ?? [0, 0];
    counts[0]++;
    if (session.lastActiveMs !== undefined && session.lastActiveMs > NOW - 5 * MINUTE) counts[1]++;
    series.set(key, counts);
  }
  return { listed: seen.size, duplicates, series: [...series].map(([key, [active, recent]]) => [key, active, recent]) };
}

function aggregate(labelNames: readonly LabelName[], pages: readonly ParsedSession[][]): { listed: number; duplicates: number; series: [string, number, number][] } {
  const aggregator = new SessionAggregator({ labelNames, nowMs: NOW, recentWindowMs: 5 * MINUTE, maxLabelLength: MAX_LABEL_LENGTH });
  for (const page of pages) aggregator.addPage(page);
  const result = aggregator.finish();
  return {
    listed: result.listed,
    duplicates: result.duplicates,
    series: [...result.series].map(([key, counts]) => [key, counts.active, counts.recentlyActive]),
  };
}

function session(id: string, attributes: Partial<ParsedSession> = {}): ParsedSession {
  return {
    id,
    expiresAtMs: NOW + MINUTE,
    lastActiveMs: NOW - MINUTE,
    userId: undefined,
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

const value = fc.option(fc.constantFrom('a', 'B', 'de', ' ', '', 'x\ny', '__overflow__', 'long value here', 'Chrome'), { nil: undefined });
const sessionArbitrary = fc.record({
  id: fc.constantFrom('s1', 's2', 's3', 's4', 's5', 's6', 's7', 's8'),
  country: value,
  deviceType: value,
  browser: value,
  os: value,
  routeId: value,
  endpointId: value,
  publicUrl: value,
  expired: fc.boolean(),
  recent: fc.boolean(),
});
const idOrder = fc.constantFrom('as drawn', 'ascending', 'descending');

describe('SessionAggregator against a naive count', () => {
  it('agrees on ids, duplicates and series', () => {
    fc.assert(
      fc.property(fc.subarray([...LABEL_NAMES] as LabelName[]), fc.array(sessionArbitrary, { maxLength: 40 }), idOrder, fc.integer({ min: 1, max: 7 }), (labelNames, drawn, order, pageSize) => {
        const sessions = drawn.map(({ id, expired, recent, ...labels }) =>
          session(id, { ...labels, expiresAtMs: expired ? NOW - MINUTE : NOW + MINUTE, lastActiveMs: recent ? NOW - MINUTE : NOW - 30 * MINUTE }),
        );
        if (order !== 'as drawn') sessions.sort((a, b) => a.id.localeCompare(b.id, 'en') * (order === 'ascending' ? 1 : -1));
        const pages = Array.from({ length: Math.ceil(sessions.length / pageSize) }, (_, index) => sessions.slice(index * pageSize, (index + 1) * pageSize));

        expect(aggregate(labelNames, pages)).toEqual(aggregateNaively(labelNames, pages));
      }),
      { numRuns: 1000 },
    );
  });

  it('agrees beyond the label value cache', () => {
    const sessions = Array.from({ length: 6000 }, (_, index) => session(`ses_${String(index).padStart(5, '0')}`, { browser: ` Browser ${index % 5000}\u0000` }));
    expect(aggregate(['browser'], [sessions])).toEqual(aggregateNaively(['browser'], [sessions]));
  });

  it('counts a repeat after ordered ids', () => {
    const pages = [[session('s9'), session('s8'), session('s7')], [session('s6'), session('s8'), session('s5')]];
    expect(aggregate(['country'], pages)).toEqual(aggregateNaively(['country'], pages));
    expect(aggregate(['country'], pages).duplicates).toBe(1);
    expect(aggregate(['country'], pages).listed).toBe(5);
  });
});
