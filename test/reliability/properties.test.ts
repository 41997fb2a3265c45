import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { LABEL_NAMES, type LabelName } from '../../src/config.js';
import { ApiError } from '../../src/errors.js';
import { parsePage } from '../../src/ngrok/parse.js';
import { OVERFLOW_VALUE, SessionAggregator, sanitizeLabelValue } from '../../src/sessions/aggregate.js';
import { buildSnapshot, type Snapshot } from '../../src/sessions/snapshot.js';
import { parseExposition, type Sample } from './exposition.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const RECENT_WINDOW_MS = 5 * 60_000;
const URL_TEXT = 'https://api.ngrok.com/app/sessions?limit=100';
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/** Any UTF-16 code unit, lone surrogates included. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code));

/** Strings that the API could send as an attribute: hostile characters, special words, very long ones. */
const hostileString = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: codeUnit, maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.constantFrom('Chrome', 'Firefox', 'US', 'de', 'Desktop', 'ep_1', 'rt_1') },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', OVERFLOW_VALUE, 'unknown', 'none', '\u202E', '\ud800', 'a\nb', 'quote"back\\') },
  { weight: 1, arbitrary: fc.string({ unit: codeUnit, minLength: 100, maxLength: 400 }) },
);

/** A value of an optional attribute: a string, null, an absent key (undefined) or a value of the wrong type. */
const attribute = fc.oneof(
  { weight: 6, arbitrary: hostileString },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.boolean(), fc.array(fc.string(), { maxLength: 2 }), fc.dictionary(fc.string(), fc.string(), { maxKeys: 2 })) },
);

/** Generates an optional object of attributes, or a value of the wrong type in its place. */
function container<T>(inner: fc.Arbitrary<T>): fc.Arbitrary<T | null | undefined | string | number | unknown[]> {
  return fc.oneof({ weight: 6, arbitrary: inner }, { weight: 1, arbitrary: fc.constantFrom(null, undefined, 'x', 7, [] as unknown[]) });
}

/** A timestamp with the time it stands for, or undefined when it does not stand for one. */
interface Timestamp {
  value: unknown;
  ms: number | undefined;
}

const pad = (value: number, width = 2): string => String(value).padStart(width, '0');

/** RFC 3339 text for `ms` in one of several equivalent spellings. */
function formatTimestamp(ms: number, offsetMinutes: number, fractionDigits: number, lowerCase: boolean): string {
  const local = new Date(ms + offsetMinutes * 60_000);
  const fraction = fractionDigits === 0 ? '' : `.${pad(local.getUTCMilliseconds(), 3)}${'0'.repeat(Math.max(0, fractionDigits - 3))}`.slice(0, fractionDigits + 1);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const zone = offsetMinutes === 0 ? 'Z' : `${sign}${pad(Math.floor(Math.abs(offsetMinutes) / 60))}:${pad(Math.abs(offsetMinutes) % 60)}`;
  const text = `${pad(local.getUTCFullYear(), 4)}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())}T${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())}${fraction}${zone}`;
  return lowerCase ? text.toLowerCase() : text;
}

const timestamp: fc.Arbitrary<Timestamp> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(fc.integer({ min: NOW - 2 * 3_600_000, max: NOW + 2 * 3_600_000 }), fc.integer({ min: -14 * 60, max: 14 * 60 }), fc.integer({ min: 0, max: 9 }), fc.boolean())
      .map(([ms, offset, digits, lowerCase]) => {
        // The text keeps `digits` fraction digits, so the time it stands for is cut to them.
        const kept = digits >= 3 ? ms : ms - (ms % 10 ** (3 - digits));
        return { value: formatTimestamp(kept, offset, digits, lowerCase), ms: kept };
      }),
  },
  { weight: 1, arbitrary: fc.constantFrom<Timestamp>({ value: null, ms: undefined }, { value: undefined, ms: undefined }, { value: '', ms: undefined }, { value: '0001-01-01T00:00:00Z', ms: undefined }) },
  { weight: 1, arbitrary: fc.oneof(hostileString, fc.integer(), fc.constant('2026-02-30T00:00:00Z')).map((value): Timestamp => ({ value, ms: undefined })) },
);

interface GeneratedSession {
  json: Record<string, unknown>;
  id: string;
  expiresAtMs: number | undefined;
  lastActiveMs: number | undefined;
  userId: string | undefined;
}

const sessionArbitrary: fc.Arbitrary<GeneratedSession> = fc
  .record({
    id: fc.oneof(fc.integer({ min: 0, max: 40 }).map((index) => `as_${index}`), hostileString.filter((text) => text !== '')),
    expires: timestamp,
    lastActive: timestamp,
    user: container(fc.record({ id: attribute, uri: attribute })),
    browserSession: container(
      fc.record({
        user_agent: container(fc.record({ browser_name: attribute, device_type: attribute, os_name: attribute, raw: attribute })),
        location: container(fc.record({ country_code: attribute, latitude: attribute })),
        ip_address: attribute,
      }),
    ),
    route: container(fc.record({ id: attribute })),
    endpoint: container(fc.record({ id: attribute })),
    publicUrl: attribute,
    extra: fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 2 }),
  })
  .map((generated) => {
    const user = generated.user;
    const userId = typeof user === 'object' && user !== null && !Array.isArray(user) && typeof user.id === 'string' && user.id !== '' ? user.id : undefined;
    return {
      json: {
        ...generated.extra,
        id: generated.id,
        expires_at: generated.expires.value,
        last_active: generated.lastActive.value,
        application_user: user,
        browser_session: generated.browserSession,
        route: generated.route,
        endpoint: generated.endpoint,
        public_url: generated.publicUrl,
      },
      id: generated.id,
      expiresAtMs: generated.expires.ms,
      lastActiveMs: generated.lastActive.ms,
      userId,
    };
  });

/** Sessions split into pages of 1 to 100, each sent through JSON as the API would send it. */
const walkArbitrary = fc.record({
  sessions: fc.array(sessionArbitrary, { maxLength: 120 }),
  pageSizes: fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 10 }),
  labelNames: fc.subarray([...LABEL_NAMES] as LabelName[]),
  maxLabelLength: fc.integer({ min: 8, max: 64 }),
});

type Walk = typeof walkArbitrary extends fc.Arbitrary<infer T> ? T : never;

/** Parses and aggregates a generated walk page by page, as the exporter does. */
function aggregate(walk: Walk): SessionAggregator {
  const aggregator = new SessionAggregator({ labelNames: walk.labelNames, nowMs: NOW, recentWindowMs: RECENT_WINDOW_MS, maxLabelLength: walk.maxLabelLength });
  let start = 0;
  for (let page = 0; start < walk.sessions.length; page++) {
    const size = walk.pageSizes[page % walk.pageSizes.length] as number;
    const chunk = walk.sessions.slice(start, start + size).map((session) => session.json);
    start += size;
    const body: unknown = JSON.parse(JSON.stringify({ application_sessions: chunk, next_page_uri: null }));
    const parsed = parsePage(body, URL_TEXT);
    aggregator.addPage(parsed.sessions, parsed.invalidFields);
  }
  return aggregator;
}

/** Returns the counts a correct exporter reports: each id once, from its first listing. */
function expectedCounts(sessions: readonly GeneratedSession[]): { listed: number; active: number; recent: number; users: number } {
  const first = new Map<string, GeneratedSession>();
  for (const session of sessions) if (!first.has(session.id)) first.set(session.id, session);

  let active = 0;
  let recent = 0;
  const users = new Set<string>();
  for (const session of first.values()) {
    if (session.expiresAtMs !== undefined && session.expiresAtMs <= NOW) continue;
    active++;
    if (session.lastActiveMs !== undefined && session.lastActiveMs > NOW - RECENT_WINDOW_MS) recent++;
    if (session.userId !== undefined) users.add(session.userId);
  }
  return { listed: first.size, active, recent, users: users.size };
}

function samplesOf(snapshot: Snapshot, name: string): Sample[] {
  return parseExposition(snapshot.text).filter((sample) => sample.name === name);
}

const total = (samples: readonly Sample[]): number => samples.reduce((sum, sample) => sum + sample.value, 0);
const single = (snapshot: Snapshot, name: string): number | undefined => samplesOf(snapshot, name)[0]?.value;

describe('parsing and aggregation of any sessions', () => {
  it('count each distinct session once', async () => {
    await fc.assert(
      fc.asyncProperty(walkArbitrary, async (walk) => {
        const snapshot = await buildSnapshot(aggregate(walk).finish(), { pages: 1, completedAtMs: NOW, maxSeries: 1_000_000 });
        const expected = expectedCounts(walk.sessions);

        expect(total(samplesOf(snapshot, 'ngrok_app_sessions_active'))).toBe(expected.active);
        expect(total(samplesOf(snapshot, 'ngrok_app_sessions_recently_active'))).toBe(expected.recent);
        expect(single(snapshot, 'ngrok_app_sessions_listed')).toBe(expected.listed);
        expect(single(snapshot, 'ngrok_app_sessions_expired')).toBe(expected.listed - expected.active);
        expect(single(snapshot, 'ngrok_app_users_active')).toBe(expected.users);
      }),
      { numRuns: 300 },
    );
  });

  it('write only safe label values', async () => {
    await fc.assert(
      fc.asyncProperty(walkArbitrary, async (walk) => {
        const snapshot = await buildSnapshot(aggregate(walk).finish(), { pages: 1, completedAtMs: NOW, maxSeries: 1_000_000 });
        const labelled = ['ngrok_app_sessions_active', 'ngrok_app_sessions_recently_active'];
        for (const sample of parseExposition(snapshot.text)) {
          // The `metric` label of ngrok_exporter_sessions_folded names a gauge; no API value reaches it.
          const { metric: _metric, ...labels } = sample.labels;
          expect(Object.keys(labels).sort()).toEqual(labelled.includes(sample.name) ? [...walk.labelNames].sort() : []);
          for (const value of Object.values(labels)) {
            expect(value.isWellFormed()).toBe(true);
            expect(value).not.toMatch(UNSAFE);
            expect(value).not.toBe('');
            expect(Array.from(value).length).toBeLessThanOrEqual(walk.maxLabelLength);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('fold beyond the series limit with exact sums', async () => {
    await fc.assert(
      fc.asyncProperty(walkArbitrary, fc.integer({ min: 1, max: 6 }), async (walk, maxSeries) => {
        const result = aggregate(walk).finish();
        const unfolded = await buildSnapshot(result, { pages: 1, completedAtMs: NOW, maxSeries: 1_000_000 });
        const folded = await buildSnapshot(result, { pages: 1, completedAtMs: NOW, maxSeries });

        for (const name of ['ngrok_app_sessions_active', 'ngrok_app_sessions_recently_active']) {
          const all = samplesOf(unfolded, name);
          const kept = samplesOf(folded, name);
          expect(total(kept)).toBe(total(all));
          expect(kept.length).toBe(Math.min(all.length, maxSeries));

          const overflow = kept.filter((sample) => Object.values(sample.labels).includes(OVERFLOW_VALUE));
          expect(overflow.length).toBe(all.length > maxSeries ? 1 : 0);
          for (const value of Object.values(overflow[0]?.labels ?? {})) expect(value).toBe(OVERFLOW_VALUE);
          const foldedSessions = samplesOf(folded, 'ngrok_exporter_sessions_folded').find((sample) => sample.labels.metric === name)?.value;
          expect(foldedSessions).toBe(overflow[0]?.value ?? 0);

          const unfoldedValues = new Map(all.map((sample) => [JSON.stringify(sample.labels), sample.value]));
          for (const sample of kept) {
            if (sample !== overflow[0]) expect(unfoldedValues.get(JSON.stringify(sample.labels))).toBe(sample.value);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('reject a malformed page only as an invalid response', () => {
    const anyBody = fc.oneof(
      fc.jsonValue(),
      fc.record({ application_sessions: fc.oneof(fc.jsonValue(), fc.array(fc.jsonValue())), next_page_uri: fc.jsonValue() }, { requiredKeys: [] }),
      fc.array(sessionArbitrary, { maxLength: 5 }).map((sessions) => ({ application_sessions: sessions.map((session) => session.json), next_page_uri: null })),
    );
    fc.assert(
      fc.property(anyBody, (body) => {
        try {
          const page = parsePage(JSON.parse(JSON.stringify(body) ?? 'null'), URL_TEXT);
          expect(page.nextPageUri === null || typeof page.nextPageUri === 'string').toBe(true);
          for (const session of page.sessions) expect(typeof session.id).toBe('string');
        } catch (error) {
          expect(error).toBeInstanceOf(ApiError);
          expect((error as ApiError).reason).toBe('invalid_response');
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('sanitizeLabelValue', () => {
  it('returns a safe, capped value for any string', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: codeUnit, maxLength: 300 }), hostileString), fc.integer({ min: 8, max: 200 }), (raw, maxLength) => {
        const value = sanitizeLabelValue(raw, maxLength, 'unknown');
        expect(value.isWellFormed()).toBe(true);
        expect(value).not.toMatch(UNSAFE);
        expect(value).not.toBe('');
        expect(value).not.toBe(OVERFLOW_VALUE);
        expect(Array.from(value).length).toBeLessThanOrEqual(maxLength);
        expect(sanitizeLabelValue(value, maxLength, 'unknown')).toBe(value);
      }),
      { numRuns: 5000 },
    );
  });
});
