import type { Socket } from 'node:net';
import { gzipSync } from 'node:zlib';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { startSimulator, type AppSession, type Simulator } from '../../src/simulator/index.js';
import { sumOf, valueOf } from '../support/harness.js';
import { startRawServer, writeChunk, writeHead, writeJson, writeResponse, type RawRequest, type RawServer } from '../support/raw-server.js';
import {
  TEST_API_KEY,
  activeSessions,
  errorRecords,
  expectFailedRefresh,
  manualClock,
  pageBody,
  startTestExporter,
  type ExpectedFailure,
  type TestExporter,
} from './exporter.js';

const START_MS = Date.parse('2026-03-01T12:00:00Z');
const SESSIONS = activeSessions(5, START_MS);

let clock = manualClock(START_MS);

let server: RawServer | undefined;
let simulator: Simulator | undefined;
let exporter: TestExporter | undefined;

beforeEach(() => {
  clock = manualClock(START_MS);
});

afterEach(async () => {
  await exporter?.close();
  await server?.close();
  await simulator?.close();
  exporter = undefined;
  server = undefined;
  simulator = undefined;
});

/**
 * Serves a valid one-page account to the first request and hands every later
 * request to `fault`; returns the scrapes before and after the failed refresh.
 */
async function failAfterGoodWalk(fault: (request: RawRequest, socket: Socket) => void | Promise<void>, argv: string[] = []): Promise<[string, string]> {
  server = await startRawServer((request, socket) => {
    if (request.index === 0) return writeJson(socket, pageBody(SESSIONS, null));
    return fault(request, socket);
  });
  exporter = await startTestExporter(server.url, { argv, clock });
  const before = await exporter.waitForRefresh();
  expect(valueOf(before, 'ngrok_up')).toBe(1);
  expect(sumOf(before, 'ngrok_app_sessions_active')).toBe(SESSIONS.length);

  const after = await exporter.refresh();
  expect((await exporter.get('/-/healthy')).status).toBe(200);
  return [before, after];
}

function sendBody(status: number, contentType: string, body: string): (request: RawRequest, socket: Socket) => void {
  return (_request, socket) => writeResponse(socket, { status, reason: 'Whatever', headers: [['content-type', contentType]], body });
}

const HTML_PAGE = '<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>';

const invalidPage = (requests: Record<string, number> = { '200': 1 }): ExpectedFailure => ({ reason: 'invalid_response', errorCode: 'INVALID_PAGE', requests });
const notJson: ExpectedFailure = { reason: 'invalid_response', errorCode: 'INVALID_RESPONSE', requests: { '200': 1 } };

describe('a body that is not JSON', () => {
  it.each([
    ['plain text with 200', sendBody(200, 'text/plain', 'hello'), notJson],
    ['an HTML page with 200', sendBody(200, 'text/html', HTML_PAGE), notJson],
    ['an empty body with 200', sendBody(200, 'application/json', ''), notJson],
    ['JSON cut short with 200', sendBody(200, 'application/json', JSON.stringify(pageBody(SESSIONS, null)).slice(0, 100)), notJson],
    ['JSON after a byte order mark', sendBody(200, 'application/json', `\uFEFF${JSON.stringify(pageBody(SESSIONS, null))}`), notJson],
    ['an HTML page with 502', sendBody(502, 'text/html', HTML_PAGE), { reason: 'server_error', errorCode: 'HTTP_502', requests: { '502': 1 } }],
    ['an HTML page with 500 and no content type', sendBody(500, '', HTML_PAGE), { reason: 'server_error', errorCode: 'HTTP_500', requests: { '500': 1 } }],
    ['an HTML page with 404', sendBody(404, 'text/html', HTML_PAGE), { reason: 'client_error', errorCode: 'HTTP_404', requests: { '404': 1 } }],
  ] satisfies [string, (request: RawRequest, socket: Socket) => void, ExpectedFailure][])('fails the refresh on %s', async (_name, fault, expected) => {
    const [before, after] = await failAfterGoodWalk(fault);
    expectFailedRefresh(exporter!, before, after, expected);
    const error = errorRecords(exporter!.logs)[0]?.err as { message: string };
    expect(error.message).toMatch(/^GET http:\/\/127\.0\.0\.1:\d+\/app\/sessions\?limit=100 /);
    expect(error.message).not.toMatch(/[\u0000-\u001f]/);
  });
});

/** Wrong shapes of the parts that counting depends on: the page, its array, its cursor and each session's id. */
const WRONG_PAGE_SHAPES: [string, unknown][] = [
  ['a top-level array', [SESSIONS]],
  ['a top-level string', 'application_sessions'],
  ['a top-level number', 42],
  ['a top-level null', null],
  ['a top-level boolean', true],
  ['application_sessions as an object', { application_sessions: { id: 'as_1' }, next_page_uri: null }],
  ['application_sessions as a string', { application_sessions: 'as_1', next_page_uri: null }],
  ['application_sessions as a number', { application_sessions: 1, next_page_uri: null }],
  ['application_sessions as a boolean', { application_sessions: true, next_page_uri: null }],
  ['a session as a string', pageBody(['as_1'], null)],
  ['a session as a number', pageBody([1], null)],
  ['a session as null', pageBody([null], null)],
  ['a session as an array', pageBody([[SESSIONS[0]]], null)],
  ['a session without id', pageBody([{ ...SESSIONS[0], id: undefined }], null)],
  ['a numeric id', pageBody([{ ...SESSIONS[0], id: 7 }], null)],
  ['an empty id', pageBody([{ ...SESSIONS[0], id: '' }], null)],
  ['an object id', pageBody([{ ...SESSIONS[0], id: { id: 'as_1' } }], null)],
  ['a null id', pageBody([{ ...SESSIONS[0], id: null }], null)],
  ['a numeric next_page_uri', pageBody(SESSIONS, 2)],
  ['an object next_page_uri', pageBody(SESSIONS, { href: '/app/sessions' })],
  ['an array next_page_uri', pageBody(SESSIONS, ['/app/sessions'])],
  ['a boolean next_page_uri', pageBody(SESSIONS, true)],
];

describe('JSON of the wrong shape', () => {
  it.each(WRONG_PAGE_SHAPES)('fails the refresh on %s', async (_name, body) => {
    const [before, after] = await failAfterGoodWalk((_request, socket) => writeJson(socket, body));
    expectFailedRefresh(exporter!, before, after, invalidPage());
  });

  it('fails the refresh on an array nested 100,000 deep', async () => {
    const nested = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const [before, after] = await failAfterGoodWalk(sendBody(200, 'application/json', nested), ['--ngrok.timeout=5s']);
    expectFailedRefresh(exporter!, before, after, invalidPage());
  });

  it('fails the refresh when a later page has the wrong shape', async () => {
    // Page 1 of the second walk is fine, page 2 is not: nothing of the partial walk is published.
    const [before, after] = await failAfterGoodWalk((request, socket) => {
      if (request.index === 1) return writeJson(socket, pageBody(activeSessions(3, clock.now(), 'as_new'), '/app/sessions?before_id=as_new000002&limit=100'));
      return writeJson(socket, pageBody([{ id: 12 }], null));
    });
    expectFailedRefresh(exporter!, before, after, invalidPage({ '200': 2 }));
  });
});

/** Puts `value` at `path` inside a copy of a valid session; undefined removes the key. */
function withField(path: string, value: unknown): AppSession {
  const session = structuredClone(SESSIONS[0]) as unknown as Record<string, unknown>;
  const keys = path.split('.');
  let target = session;
  for (const key of keys.slice(0, -1)) target = target[key] as Record<string, unknown>;
  const last = keys[keys.length - 1] as string;
  if (value === undefined) delete target[last];
  else target[last] = value;
  return session as unknown as AppSession;
}

const ALL_LABELS = '--sessions.labels=country,device_type,browser,os,route,endpoint,public_url';

/**
 * Optional parts of a session with a wrong type: the session still counts, the
 * attribute reads as missing, and the refresh succeeds. Each row names the
 * label that changes and its expected value.
 */
const TOLERATED_FIELDS: [string, unknown, string | undefined, string | undefined][] = [
  ['browser_session', 'Chrome', 'country', 'unknown'],
  ['browser_session', 7, 'browser', 'unknown'],
  ['browser_session', [], 'device_type', 'unknown'],
  ['browser_session', true, 'os', 'unknown'],
  ['browser_session.user_agent', 'Mozilla/5.0', 'browser', 'unknown'],
  ['browser_session.user_agent', 1, 'device_type', 'unknown'],
  ['browser_session.user_agent', ['Chrome'], 'os', 'unknown'],
  ['browser_session.user_agent', false, 'browser', 'unknown'],
  ['browser_session.location', 'US', 'country', 'unknown'],
  ['browser_session.location', 1, 'country', 'unknown'],
  ['browser_session.location', [{ country_code: 'US' }], 'country', 'unknown'],
  ['browser_session.location.country_code', 840, 'country', 'unknown'],
  ['browser_session.location.country_code', { code: 'US' }, 'country', 'unknown'],
  ['browser_session.location.country_code', ['US'], 'country', 'unknown'],
  ['browser_session.location.country_code', true, 'country', 'unknown'],
  ['browser_session.user_agent.browser_name', 7, 'browser', 'unknown'],
  ['browser_session.user_agent.browser_name', { name: 'Chrome' }, 'browser', 'unknown'],
  ['browser_session.user_agent.device_type', ['Desktop'], 'device_type', 'unknown'],
  ['browser_session.user_agent.device_type', 0, 'device_type', 'unknown'],
  ['browser_session.user_agent.os_name', false, 'os', 'unknown'],
  ['public_url', 443, 'public_url', 'unknown'],
  ['public_url', { href: 'https://app.example.com' }, 'public_url', 'unknown'],
  ['route', 'rt_1', 'route', 'none'],
  ['route', 1, 'route', 'none'],
  ['route', ['rt_1'], 'route', 'none'],
  ['route', { id: 5, uri: 'x' }, 'route', 'none'],
  ['endpoint', 'ep_1', 'endpoint', 'none'],
  ['endpoint', [], 'endpoint', 'none'],
  ['endpoint', { id: { id: 'ep_1' } }, 'endpoint', 'none'],
  ['application_user', 'au_1', undefined, undefined],
  ['application_user', 3, undefined, undefined],
  ['application_user', { id: 3 }, undefined, undefined],
  ['expires_at', 1_900_000_000, undefined, undefined],
  ['expires_at', { seconds: 1 }, undefined, undefined],
  ['expires_at', true, undefined, undefined],
  ['last_active', 1_900_000_000, undefined, undefined],
  ['last_active', ['2026-01-01T00:00:00Z'], undefined, undefined],
];

describe('optional fields of the wrong type', () => {
  it.each(TOLERATED_FIELDS)('counts the session when %s is %j', async (path, value, label, labelValue) => {
    const session = withField(path, value);
    simulator = await startSimulator({ apiKey: TEST_API_KEY, sessions: [session], now: clock.now, requestsPerMinute: null });
    exporter = await startTestExporter(simulator.url, { argv: [ALL_LABELS], clock });
    const text = await exporter.waitForRefresh();

    expect(valueOf(text, 'ngrok_up')).toBe(1);
    expect(sumOf(text, 'ngrok_app_sessions_active')).toBe(1);
    expect(valueOf(text, 'ngrok_app_sessions_listed')).toBe(1);
    if (label !== undefined) expect(text).toMatch(new RegExp(`^ngrok_app_sessions_active\\{[^}]*\\b${label}="${labelValue}"`, 'm'));
    if (path.startsWith('application_user')) expect(valueOf(text, 'ngrok_app_users_active')).toBe(0);

    const [warning] = exporter.logs.withMessage(/fields of the wrong type/);
    expect(warning).toMatchObject({ level: 40, invalid_fields: 1 });
  });
});

/** The exporter's clock reads 2026-03-01T12:00:00Z in these tests. */
const TIMESTAMPS: [string, unknown, 'active' | 'expired', 'valid' | 'invalid'][] = [
  ['one second ahead', '2026-03-01T12:00:01Z', 'active', 'valid'],
  ['one second behind', '2026-03-01T11:59:59Z', 'expired', 'valid'],
  ['exactly now', '2026-03-01T12:00:00Z', 'expired', 'valid'],
  ['one millisecond ahead', '2026-03-01T12:00:00.001Z', 'active', 'valid'],
  ['nine fraction digits', '2026-03-01T12:00:00.000000001Z', 'expired', 'valid'],
  ['twelve fraction digits', '2026-03-01T12:00:00.500000000000Z', 'active', 'valid'],
  ['a positive offset', '2026-03-01T13:00:01+01:00', 'active', 'valid'],
  ['a negative offset', '2026-03-01T06:59:59-05:00', 'expired', 'valid'],
  ['the largest offset', '2026-03-02T11:59:00+23:59', 'expired', 'valid'],
  ['lower-case t and z', '2026-03-01t12:00:01z', 'active', 'valid'],
  ['a space for T', '2026-03-01 12:00:01Z', 'active', 'valid'],
  ['a leap second', '2026-03-01T11:59:60Z', 'expired', 'valid'],
  ['the Unix epoch', '1970-01-01T00:00:00Z', 'expired', 'valid'],
  ['year 9999', '9999-12-31T23:59:59Z', 'active', 'valid'],
  ['Go zero time', '0001-01-01T00:00:00Z', 'active', 'valid'],
  ['an empty string', '', 'active', 'valid'],
  ['February 30', '2026-02-30T00:00:00Z', 'active', 'invalid'],
  ['February 29 of a common year', '2025-02-29T00:00:00Z', 'active', 'invalid'],
  ['month 13', '2025-13-01T00:00:00Z', 'active', 'invalid'],
  ['month 0', '2025-00-10T00:00:00Z', 'active', 'invalid'],
  ['day 0', '2025-01-00T00:00:00Z', 'active', 'invalid'],
  ['hour 24', '2026-02-28T24:00:00Z', 'active', 'invalid'],
  ['minute 60', '2026-02-28T23:60:00Z', 'active', 'invalid'],
  ['second 61', '2026-02-28T23:59:61Z', 'active', 'invalid'],
  ['an offset of 24 hours', '2026-02-28T12:00:00+24:00', 'active', 'invalid'],
  ['an offset of 60 minutes', '2026-02-28T12:00:00+01:60', 'active', 'invalid'],
  ['no time zone', '2026-02-28T12:00:00', 'active', 'invalid'],
  ['a date only', '2026-02-28', 'active', 'invalid'],
  ['an expanded year', '+002026-02-28T12:00:00Z', 'active', 'invalid'],
  ['an HTTP date', 'Sat, 28 Feb 2026 12:00:00 GMT', 'active', 'invalid'],
  ['a trailing newline', '2026-02-28T12:00:00Z\n', 'active', 'invalid'],
  ['full-width digits', '２０２６-02-28T12:00:00Z', 'active', 'invalid'],
  ['white space only', '   ', 'active', 'invalid'],
  ['a dot without fraction', '2026-02-28T12:00:00.Z', 'active', 'invalid'],
  ['a Unix time number', 1_772_280_000, 'active', 'invalid'],
];

describe('timestamps', () => {
  it.each(TIMESTAMPS)('reads expires_at with %s', async (_name, expiresAt, state, validity) => {
    simulator = await startSimulator({ apiKey: TEST_API_KEY, sessions: [withField('expires_at', expiresAt)], now: clock.now, requestsPerMinute: null });
    exporter = await startTestExporter(simulator.url, { clock });
    const text = await exporter.waitForRefresh();

    expect(valueOf(text, 'ngrok_up')).toBe(1);
    expect(sumOf(text, 'ngrok_app_sessions_active')).toBe(state === 'active' ? 1 : 0);
    expect(valueOf(text, 'ngrok_app_sessions_expired')).toBe(state === 'expired' ? 1 : 0);
    expect(exporter.logs.withMessage(/fields of the wrong type/)).toHaveLength(validity === 'invalid' ? 1 : 0);
  });

  it.each([
    ['a future last_active', '2026-03-01T13:00:00Z', 1],
    ['a last_active within the window', '2026-03-01T11:56:00Z', 1],
    ['a last_active before the window', '2026-03-01T11:54:59Z', 0],
    ['an invalid last_active', '2026-03-01T25:00:00Z', 0],
  ])('reads %s', async (_name, lastActive, recent) => {
    simulator = await startSimulator({ apiKey: TEST_API_KEY, sessions: [withField('last_active', lastActive)], now: clock.now, requestsPerMinute: null });
    exporter = await startTestExporter(simulator.url, { clock });
    const text = await exporter.waitForRefresh();
    expect(sumOf(text, 'ngrok_app_sessions_active')).toBe(1);
    expect(sumOf(text, 'ngrok_app_sessions_recently_active')).toBe(recent);
  });
});

const MAX_BODY_FLAG = '--ngrok.max-body-bytes=4096';
const tooLarge: ExpectedFailure = { reason: 'invalid_response', errorCode: 'BODY_TOO_LARGE', requests: { '200': 1 } };

/** Writes 1 KiB chunks until the peer stops reading or `limitBytes` are out; resolves with the bytes written. */
async function flood(socket: Socket, write: (data: Buffer) => boolean, limitBytes: number): Promise<number> {
  const block = Buffer.alloc(1024, ' ');
  let written = 0;
  while (!socket.destroyed && written < limitBytes) {
    written += block.length;
    if (!write(block)) await new Promise((resolve) => (socket.once('drain', resolve), socket.once('close', resolve)));
  }
  return written;
}

describe('a body larger than --ngrok.max-body-bytes', () => {
  it('fails at once on a Content-Length above the cap', async () => {
    const [before, after] = await failAfterGoodWalk((_request, socket) => {
      // The body never comes: only the declared length can end this request before the deadline.
      writeHead(socket, 200, [['content-type', 'application/json'], ['content-length', String(100 * 1024 * 1024)]]);
      socket.write('{"application_sessions":[');
    }, [MAX_BODY_FLAG]);
    expectFailedRefresh(exporter!, before, after, tooLarge);
  });

  it('stops reading an endless chunked body', async () => {
    let written = 0;
    const [before, after] = await failAfterGoodWalk(async (_request, socket) => {
      writeHead(socket, 200, [['content-type', 'application/json'], ['transfer-encoding', 'chunked']]);
      written = await flood(socket, (data) => writeChunk(socket, data), 64 * 1024 * 1024);
    }, [MAX_BODY_FLAG]);
    expectFailedRefresh(exporter!, before, after, tooLarge);
    expect(written).toBeLessThan(64 * 1024 * 1024);
  });

  it('stops reading an endless body without a length', async () => {
    let written = 0;
    const [before, after] = await failAfterGoodWalk(async (_request, socket) => {
      writeHead(socket, 200, [['content-type', 'application/json'], ['connection', 'close']]);
      written = await flood(socket, (data) => socket.write(data), 64 * 1024 * 1024);
    }, [MAX_BODY_FLAG]);
    expectFailedRefresh(exporter!, before, after, tooLarge);
    expect(written).toBeLessThan(64 * 1024 * 1024);
  });

  it('counts the decompressed size of a gzip body', async () => {
    // Deflate shrinks at most about 1,000 times, so a bomb smaller than the cap inflates to a few MiB.
    const bomb = gzipSync(Buffer.alloc(3 * 1024 * 1024, ' '), { level: 9 });
    expect(bomb.length).toBeLessThan(4096);
    const [before, after] = await failAfterGoodWalk((_request, socket) => {
      writeResponse(socket, { status: 200, headers: [['content-type', 'application/json'], ['content-encoding', 'gzip']], body: bomb });
    }, [MAX_BODY_FLAG]);
    expectFailedRefresh(exporter!, before, after, tooLarge);
  });

  it('accepts a body of exactly the cap and rejects one byte more', async () => {
    const page = JSON.stringify(pageBody(SESSIONS, null));
    const padded = (size: number): string => page.slice(0, -1) + ' '.repeat(size - page.length) + page.slice(-1);
    server = await startRawServer((request, socket) => {
      writeResponse(socket, { status: 200, headers: [['content-type', 'application/json']], body: padded(request.index === 0 ? 4096 : 4097) });
    });
    exporter = await startTestExporter(server.url, { argv: [MAX_BODY_FLAG], clock });
    const before = await exporter.waitForRefresh();
    expect(valueOf(before, 'ngrok_up')).toBe(1);
    const after = await exporter.refresh();
    expectFailedRefresh(exporter, before, after, tooLarge);
  });
});
