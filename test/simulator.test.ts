import { afterEach, describe, expect, it } from 'vitest';

import { ExporterError } from '../src/errors.js';
import {
  generateSessions,
  isActiveAt,
  startSimulator,
  type AppSession,
  type SessionPage,
  type Simulator,
  type SimulatorOptions,
} from '../src/simulator/index.js';

const API_KEY = 'test-api-key';
const START_MS = Date.parse('2026-01-10T12:00:00Z');
const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const OPERATION_ID = /^op_[0-9A-Za-z]{27}$/;
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

const running: Simulator[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((simulator) => simulator.close()));
});

/** Creates a clock that moves only when the test advances it. */
function manualClock(startMs = START_MS): { now: () => number; advance: (ms: number) => void } {
  let nowMs = startMs;
  return {
    now: () => nowMs,
    advance: (ms) => {
      nowMs += ms;
    },
  };
}

async function start(options: Partial<SimulatorOptions> = {}): Promise<Simulator> {
  const simulator = await startSimulator({ apiKey: API_KEY, requestsPerMinute: null, now: () => START_MS, ...options });
  running.push(simulator);
  return simulator;
}

function apiHeaders(key = API_KEY): Record<string, string> {
  return { authorization: `Bearer ${key}`, 'ngrok-version': '2' };
}

interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

async function get(url: string, headers: Record<string, string> = apiHeaders(), init: RequestInit = {}): Promise<ApiResponse> {
  const response = await fetch(url, { headers, ...init });
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.status, headers: response.headers, text, body };
}

/** Follows next_page_uri from the first page and returns every page body. */
async function walk(simulator: Simulator, firstUrl = `${simulator.url}/app/sessions`, betweenPages?: () => void): Promise<SessionPage[]> {
  const pages: SessionPage[] = [];
  let url: string | null = firstUrl;
  while (url !== null) {
    const response = await get(url);
    expect(response.status).toBe(200);
    const page = response.body as SessionPage;
    pages.push(page);
    url = page.next_page_uri;
    betweenPages?.();
  }
  return pages;
}

function expectNgrokError(response: ApiResponse, status: number, errorCode: string): void {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toBe('application/json');
  expect(Object.keys(response.body).sort()).toEqual(['details', 'error_code', 'msg', 'status_code']);
  expect(response.body.error_code).toBe(errorCode);
  expect(response.body.status_code).toBe(status);
  expect(typeof response.body.msg).toBe('string');
  expect(response.body.details.operation_id).toBe(response.headers.get('ngrok-operation-id'));
  expect(response.body.details.operation_id).toMatch(OPERATION_ID);
}

function session(id: string, expiresAt: string | null | undefined, extra: Partial<AppSession> = {}): AppSession {
  const value: AppSession = {
    id,
    uri: `https://api.ngrok.com/app/sessions/${id}`,
    browser_session: { user_agent: { raw: 'curl/8.5.0' } },
    ...extra,
  };
  if (expiresAt !== undefined) {
    value.expires_at = expiresAt;
  }
  return value;
}

describe('simulator authentication and headers', () => {
  it('missing Authorization returns ERR_NGROK_200', async () => {
    const simulator = await start();
    const response = await get(`${simulator.url}/app/sessions`, { 'ngrok-version': '2' });
    expectNgrokError(response, 401, 'ERR_NGROK_200');
  });

  it('unparsable Authorization returns ERR_NGROK_201', async () => {
    const simulator = await start();
    const response = await get(`${simulator.url}/app/sessions`, { authorization: 'Token abc', 'ngrok-version': '2' });
    expectNgrokError(response, 401, 'ERR_NGROK_201');
    expect(response.body.msg).toContain('Token abc');
  });

  it.each([
    ['wrong-key', 'ERR_NGROK_202'],
    ['2abcDEF_9xyzXYZ', 'ERR_NGROK_203'],
  ])('echoes wrong key %s', async (key, errorCode) => {
    const simulator = await start();
    const response = await get(`${simulator.url}/app/sessions`, apiHeaders(key));
    expectNgrokError(response, 401, errorCode);
    expect(response.body.msg).toContain(key);
  });

  it('accepts Basic authentication', async () => {
    const simulator = await start();
    const basic = Buffer.from(`${API_KEY}:`).toString('base64');
    const response = await get(`${simulator.url}/app/sessions`, { authorization: `Basic ${basic}`, 'ngrok-version': '2' });
    expect(response.status).toBe(200);
  });

  it('missing Ngrok-Version returns ERR_NGROK_218', async () => {
    const simulator = await start();
    const response = await get(`${simulator.url}/app/sessions`, { authorization: `Bearer ${API_KEY}` });
    expectNgrokError(response, 400, 'ERR_NGROK_218');
  });

  it.each(['1', '3', 'v2'])('Ngrok-Version %s returns ERR_NGROK_217', async (version) => {
    const simulator = await start();
    const response = await get(`${simulator.url}/app/sessions`, { authorization: `Bearer ${API_KEY}`, 'ngrok-version': version });
    expectNgrokError(response, 400, 'ERR_NGROK_217');
  });

  it('unknown paths return 404', async () => {
    const simulator = await start();
    for (const path of ['/', '/app/sessions/', '/app/users', '/v2/app/sessions']) {
      const response = await get(`${simulator.url}${path}`);
      expect(response.status).toBe(404);
      expect(response.headers.get('content-type')).toBe('application/json');
      expect(response.body.error_code).toBeUndefined();
      expect(response.body.status_code).toBe(404);
      expect(response.body.details.operation_id).toMatch(OPERATION_ID);
    }
  });

  it.each(['POST', 'DELETE', 'PUT'])('method %s returns 405', async (method) => {
    const simulator = await start();
    const response = await get(`${simulator.url}/app/sessions`, apiHeaders(), { method });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET');
    expect(response.body.status_code).toBe(405);
  });

  it('operation ids are distinct', async () => {
    const simulator = await start();
    const responses = [
      await get(`${simulator.url}/app/sessions`),
      await get(`${simulator.url}/app/sessions`),
      await get(`${simulator.url}/app/sessions`, {}),
      await get(`${simulator.url}/nothing`),
    ];
    const operationIds = responses.map((response) => response.headers.get('ngrok-operation-id'));
    for (const operationId of operationIds) {
      expect(operationId).toMatch(OPERATION_ID);
    }
    expect(new Set(operationIds).size).toBe(responses.length);
  });
});

describe('simulator limit parameter', () => {
  it.each([
    ['0', 'ERR_NGROK_233'],
    ['101', 'ERR_NGROK_233'],
    ['-5', 'ERR_NGROK_233'],
    ['abc', 'ERR_NGROK_244'],
    ['1.5', 'ERR_NGROK_244'],
    ['10x', 'ERR_NGROK_244'],
  ])('limit=%s returns %s', async (limit, errorCode) => {
    const simulator = await start();
    const response = await get(`${simulator.url}/app/sessions?limit=${limit}`);
    expectNgrokError(response, 400, errorCode);
    expect(response.body.msg).toContain(limit);
  });

  it.each([
    ['limit=1', 1],
    ['limit=37', 37],
    ['limit=100', 100],
    ['', 100],
    ['limit=', 100],
  ])('query %j serves %d sessions', async (query, expected) => {
    const simulator = await start({ syntheticSessions: 250 });
    const response = await get(`${simulator.url}/app/sessions?${query}`);
    expect(response.status).toBe(200);
    expect(response.body.application_sessions).toHaveLength(expected);
  });
});

describe('simulator paging', () => {
  it('walks 2,345 sessions once each', async () => {
    const simulator = await start({ syntheticSessions: 2345 });
    const pages = await walk(simulator, `${simulator.url}/app/sessions?limit=100`);

    expect(pages).toHaveLength(24);
    const ids = pages.flatMap((page) => page.application_sessions.map((item) => item.id));
    expect(ids).toHaveLength(2345);
    expect(new Set(ids).size).toBe(2345);
    expect(ids).toEqual(simulator.account.sessions().map((item) => item.id));
    expect(ids).toEqual([...ids].sort().reverse());

    for (const page of pages.slice(0, -1)) {
      expect(page.uri).toBe(`${simulator.url}/app/sessions`);
      expect(page.next_page_uri?.startsWith(`${simulator.url}/app/sessions?`)).toBe(true);
    }
    expect(pages.at(-1)?.next_page_uri).toBeNull();
    expect(pages.at(-1)?.application_sessions).toHaveLength(45);
  });

  it('orders sessions by creation time', async () => {
    const simulator = await start({ syntheticSessions: 1000 });
    const created = (await walk(simulator))
      .flatMap((page) => page.application_sessions)
      .flatMap((item) => (typeof item.created_at === 'string' ? [Date.parse(item.created_at)] : []));
    for (let i = 1; i < created.length; i++) {
      expect(created[i]).toBeLessThanOrEqual(created[i - 1] as number);
    }
  });

  it('links the next page', async () => {
    const simulator = await start({ syntheticSessions: 100 });
    const response = await get(`${simulator.url}/app/sessions?limit=37`);
    const page = response.body as SessionPage;
    const next = new URL(page.next_page_uri as string);
    expect(next.origin).toBe(simulator.url);
    expect(next.pathname).toBe('/app/sessions');
    expect(next.searchParams.get('before_id')).toBe(page.application_sessions.at(-1)?.id);
    expect(next.searchParams.get('limit')).toBe('37');
  });

  it('pages from an unknown before_id', async () => {
    const simulator = await start({ syntheticSessions: 50 });
    const ids = simulator.account.sessions().map((item) => item.id);

    const between = await get(`${simulator.url}/app/sessions?before_id=${ids[10]}x`);
    expect(between.body.application_sessions[0].id).toBe(ids[10]);
    expect(between.body.application_sessions).toHaveLength(40);

    const beforeAll = await get(`${simulator.url}/app/sessions?before_id=as_`);
    expect(beforeAll.body.application_sessions).toEqual([]);
    expect(beforeAll.body.next_page_uri).toBeNull();

    const afterAll = await get(`${simulator.url}/app/sessions?before_id=zz`);
    expect(afterAll.body.application_sessions).toHaveLength(50);
  });

  it('serves an empty account', async () => {
    const simulator = await start({ sessions: [] });
    const response = await get(`${simulator.url}/app/sessions`);
    expect(response.body).toEqual({ application_sessions: [], uri: `${simulator.url}/app/sessions`, next_page_uri: null });
  });

  it('trailingEmptyPage ends with an empty page', async () => {
    const simulator = await start({ syntheticSessions: 200, trailingEmptyPage: true });
    const pages = await walk(simulator, `${simulator.url}/app/sessions?limit=100`);
    expect(pages.map((page) => page.application_sessions.length)).toEqual([100, 100, 0]);
  });

  it('cursor survives arrivals and expiry', async () => {
    const clock = manualClock();
    const simulator = await start({
      syntheticSessions: 3000,
      now: clock.now,
      churn: { arrivalsPerMinute: 30, expireShare: 0.5, expiredRetentionMs: 10 * MINUTE_MS },
    });
    const before = new Set(simulator.account.sessions().map((item) => item.id));

    const pages = await walk(simulator, `${simulator.url}/app/sessions?limit=100`, () => clock.advance(2 * MINUTE_MS));
    const ids = pages.flatMap((page) => page.application_sessions.map((item) => item.id));
    const after = new Set(simulator.account.sessions().map((item) => item.id));

    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual([...ids].sort().reverse());
    const keptThroughout = [...before].filter((id) => after.has(id));
    expect(keptThroughout.length).toBeLessThan(before.size);
    for (const id of keptThroughout) {
      expect(ids).toContain(id);
    }
  });
});

describe('simulator rate limit', () => {
  it('rejects requests beyond the window', async () => {
    const clock = manualClock();
    const simulator = await start({ requestsPerMinute: 3, rateLimitWindowMs: 1000, now: clock.now });

    expect((await get(`${simulator.url}/app/sessions`, {})).status).toBe(401);
    expect((await get(`${simulator.url}/app/sessions`)).status).toBe(200);
    clock.advance(500);
    expect((await get(`${simulator.url}/nothing`)).status).toBe(404);

    const limited = await get(`${simulator.url}/app/sessions`);
    expectNgrokError(limited, 429, 'ERR_NGROK_226');
    expect(limited.body.msg).toContain('3 API requests');
    expect(limited.headers.get('retry-after')).toBeNull();

    // The two requests at the start leave the window; the one at 500 ms stays in it.
    clock.advance(501);
    expect((await get(`${simulator.url}/app/sessions`)).status).toBe(200);
    expect((await get(`${simulator.url}/app/sessions`)).status).toBe(200);
    expect((await get(`${simulator.url}/app/sessions`)).status).toBe(429);
  });

  it('allows 120 per minute by default', async () => {
    const clock = manualClock();
    const simulator = await start({ requestsPerMinute: undefined, now: clock.now, syntheticSessions: 10 });
    for (let i = 0; i < 120; i++) {
      expect((await get(`${simulator.url}/app/sessions`)).status).toBe(200);
      clock.advance(100);
    }
    const limited = await get(`${simulator.url}/app/sessions`);
    expectNgrokError(limited, 429, 'ERR_NGROK_226');
    expect(limited.body.msg).toBe('Your account is rate limited to 120 API requests per minute.');

    clock.advance(MINUTE_MS - 120 * 100 + 1);
    expect((await get(`${simulator.url}/app/sessions`)).status).toBe(200);
  });

  it('null switches the limit off', async () => {
    const simulator = await start({ requestsPerMinute: null, syntheticSessions: 10 });
    for (let i = 0; i < 150; i++) {
      expect((await get(`${simulator.url}/app/sessions`)).status).toBe(200);
    }
  });

  it('resetRateLimit empties the window', async () => {
    const simulator = await start({ requestsPerMinute: 1, syntheticSessions: 10 });
    expect((await get(`${simulator.url}/app/sessions`)).status).toBe(200);
    expect((await get(`${simulator.url}/app/sessions`)).status).toBe(429);
    simulator.resetRateLimit();
    expect((await get(`${simulator.url}/app/sessions`)).status).toBe(200);
  });
});

describe('simulator faults', () => {
  it('respond fault sends status, body, headers', async () => {
    const simulator = await start({ syntheticSessions: 10 });
    simulator.injectFault({
      kind: 'respond',
      status: 503,
      body: '<html><body>upstream unavailable</body></html>',
      contentType: 'text/html',
      headers: { 'retry-after': '7' },
    });
    expect(simulator.pendingFaults).toBe(1);

    const faulted = await get(`${simulator.url}/app/sessions`);
    expect(faulted.status).toBe(503);
    expect(faulted.text).toContain('upstream unavailable');
    expect(faulted.headers.get('content-type')).toBe('text/html');
    expect(faulted.headers.get('retry-after')).toBe('7');
    expect(faulted.headers.get('ngrok-operation-id')).toMatch(OPERATION_ID);

    expect((await get(`${simulator.url}/app/sessions`)).status).toBe(200);
    expect(simulator.pendingFaults).toBe(0);
  });

  it('respond fault builds an ngrok body', async () => {
    const simulator = await start();
    simulator.injectFault({ kind: 'respond', status: 429, errorCode: 'ERR_NGROK_226', headers: { 'retry-after': '3' } });
    const response = await get(`${simulator.url}/app/sessions`);
    expectNgrokError(response, 429, 'ERR_NGROK_226');
    expect(response.headers.get('retry-after')).toBe('3');
  });

  it('fault applies to matching requests', async () => {
    const simulator = await start({ syntheticSessions: 300 });
    simulator.injectFault({ kind: 'respond', status: 500, times: 2, match: (request) => request.query.has('before_id') });

    const first = await get(`${simulator.url}/app/sessions`);
    expect(first.status).toBe(200);
    const next = first.body.next_page_uri as string;
    expect((await get(next)).status).toBe(500);
    expect((await get(next)).status).toBe(500);
    expect((await get(next)).status).toBe(200);
  });

  it('destroy fault drops the connection', async () => {
    const simulator = await start();
    simulator.injectFault({ kind: 'destroy' });
    await expect(fetch(`${simulator.url}/app/sessions`, { headers: apiHeaders() })).rejects.toThrow();
    expect(simulator.stats.byStatus.destroyed).toBe(1);
    expect((await get(`${simulator.url}/app/sessions`)).status).toBe(200);
  });

  it('destroy fault truncates the body', async () => {
    const simulator = await start({ syntheticSessions: 100 });
    simulator.injectFault({ kind: 'destroy', afterBytes: 200 });
    const response = await fetch(`${simulator.url}/app/sessions`, { headers: apiHeaders() });
    expect(response.status).toBe(200);
    await expect(response.text()).rejects.toThrow();
  });

  it('delay fault outlasts a client timeout', async () => {
    const simulator = await start();
    simulator.injectFault({ kind: 'delay', delayMs: 10_000 });
    await expect(
      fetch(`${simulator.url}/app/sessions`, { headers: apiHeaders(), signal: AbortSignal.timeout(200) }),
    ).rejects.toThrow();
    expect((await get(`${simulator.url}/app/sessions`)).status).toBe(200);
  });

  it('invalid-json sends half the page', async () => {
    const simulator = await start({ syntheticSessions: 20 });
    simulator.injectFault({ kind: 'corrupt', corruption: 'invalid-json' });
    const response = await get(`${simulator.url}/app/sessions`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.text.length).toBeGreaterThan(0);
    expect(response.body).toBeUndefined();
  });

  it('wrong-shape sends a bare array', async () => {
    const simulator = await start({ syntheticSessions: 20 });
    simulator.injectFault({ kind: 'corrupt', corruption: 'wrong-shape' });
    const response = await get(`${simulator.url}/app/sessions`);
    expect(Array.isArray(response.body)).toBe(true);
    expect(response.body).toHaveLength(20);
  });

  it('rewrite fault replaces the page', async () => {
    const simulator = await start({ syntheticSessions: 20 });
    simulator.injectFault({ kind: 'rewrite', rewrite: (page) => ({ ...page, application_sessions: null, next_page_uri: page.uri }) });
    const response = await get(`${simulator.url}/app/sessions`);
    expect(response.body).toEqual({
      application_sessions: null,
      uri: `${simulator.url}/app/sessions`,
      next_page_uri: `${simulator.url}/app/sessions`,
    });
  });

  it('page faults wait for a page', async () => {
    const simulator = await start({ syntheticSessions: 20 });
    simulator.injectFault({ kind: 'corrupt', corruption: 'wrong-shape' });
    const unauthorized = await get(`${simulator.url}/app/sessions`, {});
    expectNgrokError(unauthorized, 401, 'ERR_NGROK_200');
    expect(simulator.pendingFaults).toBe(1);
    expect(Array.isArray((await get(`${simulator.url}/app/sessions`)).body)).toBe(true);
  });

  it('rejects an invalid fault', async () => {
    const simulator = await start();
    expect(() => simulator.injectFault({ kind: 'respond', status: 700 })).toThrow(RangeError);
    expect(() => simulator.injectFault({ kind: 'delay', delayMs: 5, times: 0 })).toThrow(RangeError);
    simulator.injectFault({ kind: 'delay', delayMs: 5, times: 3 });
    simulator.clearFaults();
    expect(simulator.pendingFaults).toBe(0);
  });
});

describe('simulator synthetic account', () => {
  it('same seed gives same sessions', () => {
    const first = generateSessions(500, { seed: 7, nowMs: START_MS });
    const second = generateSessions(500, { seed: 7, nowMs: START_MS });
    const other = generateSessions(500, { seed: 8, nowMs: START_MS });
    expect(second).toEqual(first);
    expect(JSON.stringify(second)).toBe(JSON.stringify(first));
    expect(other.map((item) => item.id)).not.toEqual(first.map((item) => item.id));
  });

  it('two simulators share a seed', async () => {
    const first = await start({ seed: 42, syntheticSessions: 300 });
    const second = await start({ seed: 42, syntheticSessions: 300 });
    const firstIds = (await walk(first)).flatMap((page) => page.application_sessions.map((item) => item.id));
    const secondIds = (await walk(second)).flatMap((page) => page.application_sessions.map((item) => item.id));
    expect(secondIds).toEqual(firstIds);
    expect(second.account.sessions()).toEqual(generateSessions(300, { seed: 42, nowMs: START_MS }));
  });

  it('looks like real traffic', () => {
    const sessions = generateSessions(5000, { seed: 11, nowMs: START_MS });
    const share = (predicate: (item: AppSession) => boolean): number => sessions.filter(predicate).length / sessions.length;
    const values = (pick: (item: AppSession) => unknown): Set<unknown> => new Set(sessions.map(pick));

    expect(new Set(sessions.map((item) => item.id)).size).toBe(5000);
    for (const item of sessions) {
      expect(item.id).toMatch(/^as_[0-9A-Za-z]{27}$/);
      expect(item.uri).toBe(`https://api.ngrok.com/app/sessions/${item.id}`);
      expect(item.browser_session.user_agent.raw.length).toBeGreaterThan(0);
      for (const time of [item.created_at, item.last_active, item.expires_at]) {
        if (typeof time === 'string') {
          expect(time).toMatch(RFC3339_UTC);
        }
      }
      const ip = item.browser_session.ip_address;
      if (typeof ip === 'string') {
        expect(ip).toMatch(/^(192\.0\.2|198\.51\.100|203\.0\.113)\.\d+$|^2001:db8:/);
      }
    }

    const edgeShare = share((item) => item.edge != null);
    expect(edgeShare).toBeGreaterThan(0.05);
    expect(edgeShare).toBeLessThan(0.1);
    expect(share((item) => item.edge != null && item.route == null)).toBe(0);
    expect(share((item) => item.edge === null)).toBeGreaterThan(0.3);
    expect(share((item) => !('edge' in item))).toBeGreaterThan(0.2);

    const countries = sessions.map((item) => item.browser_session.location?.country_code);
    const countryCounts = new Map<unknown, number>();
    for (const code of countries) {
      countryCounts.set(code, (countryCounts.get(code) ?? 0) + 1);
    }
    const ranking = [...countryCounts].sort((a, b) => b[1] - a[1]).map(([code]) => code);
    expect(ranking[0]).toBe('US');
    expect(ranking.slice(0, 6)).toEqual(expect.arrayContaining(['DE', 'GB', 'IN']));
    expect(share((item) => item.browser_session.location === undefined)).toBeGreaterThan(0.01);
    expect(share((item) => item.browser_session.location === null)).toBeGreaterThan(0.005);

    const browsers = values((item) => item.browser_session.user_agent.browser_name);
    for (const browser of ['Chrome', 'Firefox', 'Safari', 'Mobile Safari', 'Edge', 'Samsung Internet', 'Opera', undefined, null]) {
      expect(browsers).toContain(browser);
    }
    const devices = values((item) => item.browser_session.user_agent.device_type);
    for (const device of ['Desktop', 'Mobile', 'Tablet', undefined, null]) {
      expect(devices).toContain(device);
    }
    const operatingSystems = values((item) => item.browser_session.user_agent.os_name);
    for (const os of ['Windows', 'MacOS', 'iOS', 'Android', 'Linux']) {
      expect(operatingSystems).toContain(os);
    }

    const endpoints = values((item) => item.endpoint?.id);
    expect([...endpoints].filter((id) => typeof id === 'string' && id.startsWith('ep_')).length).toBeGreaterThanOrEqual(5);
    expect(values((item) => item.public_url).size).toBeGreaterThanOrEqual(6);

    const sessionsPerUser = new Map<string, number>();
    for (const item of sessions) {
      if (item.application_user) {
        sessionsPerUser.set(item.application_user.id, (sessionsPerUser.get(item.application_user.id) ?? 0) + 1);
      }
    }
    expect(sessionsPerUser.size).toBeLessThan(2000);
    expect(Math.max(...sessionsPerUser.values())).toBeGreaterThanOrEqual(5);
    expect(share((item) => item.application_user === null)).toBeGreaterThan(0);
    expect(share((item) => !('application_user' in item))).toBeGreaterThan(0);

    const expiredShare = share((item) => !isActiveAt(item, START_MS));
    expect(expiredShare).toBeGreaterThan(0.03);
    expect(expiredShare).toBeLessThan(0.3);
    expect(share((item) => 'identity_provider' in item || 'scopes' in item)).toBeGreaterThan(0);
  });

  it('creates no future sessions', () => {
    for (const item of generateSessions(2000, { seed: 5, nowMs: START_MS })) {
      if (typeof item.created_at === 'string') {
        expect(Date.parse(item.created_at)).toBeLessThanOrEqual(START_MS);
      }
      if (typeof item.last_active === 'string') {
        expect(Date.parse(item.last_active)).toBeLessThanOrEqual(START_MS);
      }
      if (typeof item.created_at === 'string' && typeof item.expires_at === 'string') {
        expect(Date.parse(item.expires_at)).toBeGreaterThan(Date.parse(item.created_at));
      }
    }
  });
});

describe('simulator account', () => {
  it('activeCount matches a walk', async () => {
    const clock = manualClock();
    const simulator = await start({ syntheticSessions: 1500, now: clock.now });
    const listed = (await walk(simulator)).flatMap((page) => page.application_sessions);
    const activeInWalk = listed.filter(
      (item) => item.expires_at == null || Date.parse(item.expires_at) > clock.now(),
    ).length;

    expect(simulator.account.listedCount()).toBe(1500);
    expect(simulator.account.activeCount()).toBe(activeInWalk);
    expect(simulator.account.expiredCount()).toBe(1500 - activeInWalk);
    expect(activeInWalk).toBeLessThan(1500);
  });

  it('counts explicit sessions at a time', async () => {
    const simulator = await start({
      sessions: [
        session('as_3', '2026-01-10T12:30:00Z', { application_user: { id: 'au_1', uri: 'u' } }),
        session('as_2', '2026-01-10T11:00:00Z', { application_user: { id: 'au_1', uri: 'u' } }),
        session('as_1', null, { application_user: { id: 'au_2', uri: 'u' } }),
        session('as_0', undefined),
      ],
    });
    expect(simulator.account.activeCount()).toBe(3);
    expect(simulator.account.activeCount(Date.parse('2026-01-10T12:30:00Z'))).toBe(2);
    expect(simulator.account.activeCount(Date.parse('2026-01-10T10:00:00Z'))).toBe(4);
    expect(simulator.account.activeUserCount()).toBe(2);
    expect(simulator.account.activeUserCount(Date.parse('2026-01-10T13:00:00Z'))).toBe(1);
  });

  it('set, add and remove change pages', async () => {
    const simulator = await start({ sessions: [session('as_5', null)] });
    simulator.account.set([session('as_1', null), session('as_3', null)]);
    simulator.account.add(session('as_2', null), session('as_4', null));
    expect(simulator.account.remove('as_3')).toBe(true);
    expect(simulator.account.remove('as_9')).toBe(false);
    expect(() => simulator.account.add(session('as_4', null))).toThrow(RangeError);
    expect(() => simulator.account.set([session('as_1', null), session('as_1', null)])).toThrow(RangeError);

    const response = await get(`${simulator.url}/app/sessions`);
    expect(response.body.application_sessions.map((item: AppSession) => item.id)).toEqual(['as_4', 'as_2', 'as_1']);
  });
});

describe('simulator churn', () => {
  it('expires sessions, then purges them', async () => {
    const clock = manualClock();
    const simulator = await start({
      syntheticSessions: 2000,
      now: clock.now,
      churn: { expireShare: 0.5, arrivalsPerMinute: 0, expiredRetentionMs: HOUR_MS },
    });
    const initial = simulator.account.sessions();
    const activeAtStart = simulator.account.activeCount();

    clock.advance(HOUR_MS);
    const activeAfterHour = simulator.account.activeCount();
    expect(activeAfterHour).toBe(initial.filter((item) => isActiveAt(item, clock.now())).length);
    expect(activeAfterHour).toBeLessThan(activeAtStart * 0.6);
    expect(simulator.account.listedCount()).toBeGreaterThan(activeAfterHour);

    clock.advance(2 * HOUR_MS);
    expect(simulator.account.listedCount()).toBeLessThan(initial.length);
    expect(simulator.account.listedCount()).toBe(
      initial.filter((item) => isActiveAt(item, clock.now() - HOUR_MS)).length,
    );
  });

  it('arrivals appear on the first page', async () => {
    const clock = manualClock();
    const simulator = await start({
      syntheticSessions: 500,
      now: clock.now,
      churn: { expireShare: 0, arrivalsPerMinute: 10 },
    });
    const initial = simulator.account.sessions();
    const newestBefore = initial[0]?.id as string;

    clock.advance(30 * MINUTE_MS);
    const activeInitial = initial.filter((item) => isActiveAt(item, clock.now())).length;
    expect(simulator.account.activeCount()).toBe(activeInitial + 300);

    const response = await get(`${simulator.url}/app/sessions?limit=100`);
    const newest = response.body.application_sessions[0] as AppSession;
    expect(newest.id > newestBefore).toBe(true);
    expect(newest.created_at).toBe('2026-01-10T12:30:00Z');
    expect(newest.last_active).toBe('2026-01-10T12:30:00Z');
  });

  it('churn repeats for a seed', async () => {
    const firstClock = manualClock();
    const secondClock = manualClock();
    const churn = { arrivalsPerMinute: 20, expireShare: 0.3, expiredRetentionMs: 30 * MINUTE_MS };
    const first = await start({ seed: 9, syntheticSessions: 400, now: firstClock.now, churn });
    const second = await start({ seed: 9, syntheticSessions: 400, now: secondClock.now, churn });

    for (let i = 0; i < 90; i++) {
      firstClock.advance(MINUTE_MS);
      first.account.activeCount();
    }
    secondClock.advance(90 * MINUTE_MS);

    expect(second.account.sessions()).toEqual(first.account.sessions());
    expect(second.account.activeCount()).toBe(first.account.activeCount());
  });
});

describe('simulator stats and lifecycle', () => {
  it('counts requests by status', async () => {
    const clock = manualClock();
    const simulator = await start({ now: clock.now });
    await get(`${simulator.url}/app/sessions`);
    clock.advance(1000);
    await get(`${simulator.url}/app/sessions`, {});
    await get(`${simulator.url}/app/sessions`, { ...apiHeaders(), 'user-agent': 'exporter/1.0' });

    expect(simulator.stats.requests).toBe(3);
    expect(simulator.stats.byStatus).toEqual({ '200': 2, '401': 1 });
    expect(simulator.stats.requestTimesMs).toEqual([START_MS, START_MS + 1000, START_MS + 1000]);
    expect(simulator.stats.requestLog.at(-1)).toMatchObject({ method: 'GET', url: '/app/sessions', status: 200, userAgent: 'exporter/1.0' });
    expect(simulator.stats.maxInFlight).toBe(1);

    simulator.stats.reset();
    expect(simulator.stats.requests).toBe(0);
    expect(simulator.stats.byStatus).toEqual({});
    expect(simulator.stats.requestTimesMs).toEqual([]);
  });

  it('latency delays every response', async () => {
    const simulator = await start({ latencyMs: 10_000 });
    await expect(
      fetch(`${simulator.url}/app/sessions`, { headers: apiHeaders(), signal: AbortSignal.timeout(200) }),
    ).rejects.toThrow();
    simulator.setLatency(0);
    expect((await get(`${simulator.url}/app/sessions`)).status).toBe(200);
  });

  it('close drops a delayed response', async () => {
    const simulator = await startSimulator({ apiKey: API_KEY, latencyMs: 60_000 });
    const pending = fetch(`${simulator.url}/app/sessions`, { headers: apiHeaders() });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await simulator.close();
    await expect(pending).rejects.toThrow();
  });

  it.each([
    [{ host: '0.0.0.0' }],
    [{ apiKey: '' }],
    [{ port: 70_000 }],
    [{ requestsPerMinute: 0 }],
    [{ syntheticSessions: -1 }],
    [{ churn: { expireShare: 2 } }],
  ])('rejects invalid options %j', async (options) => {
    const error = await startSimulator({ apiKey: API_KEY, ...options }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ExporterError);
    expect((error as ExporterError).code).toBe('INVALID_SIMULATOR_OPTION');
  });
});
