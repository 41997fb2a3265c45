import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { sumOf, valueOf } from '../support/harness.js';
import { startRawServer, writeJson, type RawRequest, type RawServer } from '../support/raw-server.js';
import {
  TEST_API_KEY,
  activeSessions,
  errorRecords,
  expectFailedRefresh,
  manualClock,
  pageBody,
  startTestExporter,
  type ExpectedFailure,
  type ManualClock,
  type TestExporter,
} from './exporter.js';

const START_MS = Date.parse('2026-03-01T12:00:00Z');

let clock: ManualClock;
let simulator: Simulator | undefined;
let api: RawServer | undefined;
let evil: RawServer | undefined;
let exporter: TestExporter | undefined;

beforeEach(async () => {
  clock = manualClock(START_MS);
  // Stands for another host: a request that reaches it would carry the API key there.
  evil = await startRawServer((_request, socket) => writeJson(socket, pageBody([], null)));
});

afterEach(async () => {
  await exporter?.close();
  await simulator?.close();
  await api?.close();
  await evil?.close();
  exporter = undefined;
  simulator = undefined;
  api = undefined;
  evil = undefined;
});

const paging = (errorCode: string, requests: Record<string, number> = { '200': 1 }): ExpectedFailure => ({ reason: 'paging', errorCode, requests });

/**
 * Cursors that leave the API's origin or path, each with the error code that
 * ends the walk. `api` is the simulator's origin and `evilPort` the port of
 * another local server. Several are built to pass a check that only compares
 * the start of the string with the API URL.
 */
const FOREIGN_CURSORS: [string, (api: string, evilPort: number) => string, string][] = [
  ['user info before another host', (origin) => `${origin}@evil.example/app/sessions`, 'FOREIGN_CURSOR'],
  ['user info before a local port', (origin, port) => `${origin}@127.0.0.1:${port}/app/sessions`, 'FOREIGN_CURSOR'],
  ['the API host as a subdomain', (origin) => `${origin.replace(/:\d+$/, '')}.evil.example/app/sessions`, 'FOREIGN_CURSOR'],
  ['the API origin followed by a domain', (origin) => `${origin}.evil.example/app/sessions`, 'INVALID_CURSOR'],
  ['a protocol-relative URL', () => '//evil.example/app/sessions', 'FOREIGN_CURSOR'],
  ['a protocol-relative URL to a local port', (_origin, port) => `//127.0.0.1:${port}/app/sessions`, 'FOREIGN_CURSOR'],
  ['two backslashes', () => '\\\\evil.example/app/sessions', 'FOREIGN_CURSOR'],
  ['a slash and a backslash', (_origin, port) => `/\\127.0.0.1:${port}/app/sessions`, 'FOREIGN_CURSOR'],
  ['backslashes after the scheme', (_origin, port) => `http:\\\\127.0.0.1:${port}\\app\\sessions`, 'FOREIGN_CURSOR'],
  ['a tab inside the scheme', (_origin, port) => `ht\ttp://127.0.0.1:${port}/app/sessions`, 'FOREIGN_CURSOR'],
  ['another port', (_origin, port) => `http://127.0.0.1:${port}/app/sessions?before_id=as_1`, 'FOREIGN_CURSOR'],
  ['https instead of http', (origin) => `${origin.replace('http:', 'https:')}/app/sessions`, 'FOREIGN_CURSOR'],
  ['a file URL', () => 'file:///etc/passwd', 'FOREIGN_CURSOR'],
  ['a data URL', () => 'data:application/json,{"application_sessions":[]}', 'FOREIGN_CURSOR'],
  ['a javascript URL', () => 'javascript:alert(1)', 'FOREIGN_CURSOR'],
  ['a percent-encoded host', (_origin, port) => `http://%31%32%37.0.0.1:${port}/app/sessions`, 'FOREIGN_CURSOR'],
  ['a percent-encoded colon in the host', (_origin, port) => `http://127.0.0.1%3A${port}/app/sessions`, 'INVALID_CURSOR'],
  ['a percent-encoded path', (origin) => `${origin}/app/%73essions`, 'FOREIGN_CURSOR'],
  ['an encoded slash in the path', (origin) => `${origin}/app/sessions%2F..%2F..%2Fadmin`, 'FOREIGN_CURSOR'],
  ['a path that climbs out', (origin) => `${origin}/app/sessions/../../admin`, 'FOREIGN_CURSOR'],
  ['a longer path', (origin) => `${origin}/app/sessions/as_1`, 'FOREIGN_CURSOR'],
  ['a trailing slash', (origin) => `${origin}/app/sessions/`, 'FOREIGN_CURSOR'],
  ['another letter case in the path', (origin) => `${origin}/app/Sessions`, 'FOREIGN_CURSOR'],
  ['an IDN host', () => 'https://аpi.ngrok.com/app/sessions', 'FOREIGN_CURSOR'],
  ['a full-width IP address and another port', (_origin, port) => `http://１２７.０.０.１:${port}/app/sessions`, 'FOREIGN_CURSOR'],
  ['credentials on the API origin', (origin) => origin.replace('http://', 'http://user:password@') + '/app/sessions', 'FOREIGN_CURSOR'],
  ['an unclosed IPv6 bracket', () => 'http://[::1/app/sessions', 'INVALID_CURSOR'],
  ['a port out of range', () => 'http://127.0.0.1:99999/app/sessions', 'INVALID_CURSOR'],
];

describe('a cursor to another origin or path', () => {
  it.each(FOREIGN_CURSORS)('is rejected: %s', async (_name, cursor, errorCode) => {
    simulator = await startSimulator({ apiKey: TEST_API_KEY, syntheticSessions: 250, now: clock.now, requestsPerMinute: null });
    exporter = await startTestExporter(simulator.url, { clock });
    const before = await exporter.waitForRefresh();
    expect(valueOf(before, 'ngrok_up')).toBe(1);
    const requestsBefore = simulator.stats.requests;

    simulator.injectFault({ kind: 'rewrite', rewrite: (page) => ({ ...page, next_page_uri: cursor(simulator!.url, evil!.port) }) });
    const after = await exporter.refresh();

    expectFailedRefresh(exporter, before, after, paging(errorCode));
    expect(simulator.stats.requests - requestsBefore).toBe(1);
    expect(evil!.requests).toHaveLength(0);
  });
});

/** Starts a raw API that serves pages from a table keyed by request target, and 404 for anything else. */
async function startPagedApi(pages: (origin: string) => Record<string, unknown>): Promise<RawServer> {
  const server: RawServer = await startRawServer((request: RawRequest, socket) => {
    const page = pages(server.url)[request.target];
    if (page === undefined) return writeJson(socket, { status_code: 404, msg: `no page ${request.target}` }, 404);
    writeJson(socket, page);
  });
  return server;
}

const FIRST = '/app/sessions?limit=100';
const A = activeSessions(3, START_MS, 'as_a');
const B = activeSessions(3, START_MS, 'as_b');
const C = activeSessions(3, START_MS, 'as_c');

describe('paging rules', () => {
  it('follows a relative cursor on the same origin and path', async () => {
    api = await startPagedApi(() => ({
      [FIRST]: pageBody(A, '?before_id=as_a000002&limit=100'),
      '/app/sessions?before_id=as_a000002&limit=100': pageBody(B, '/app/sessions?before_id=as_b000002&limit=100'),
      '/app/sessions?before_id=as_b000002&limit=100': pageBody(C, null),
    }));
    exporter = await startTestExporter(api.url, { clock });
    const text = await exporter.waitForRefresh();

    expect(valueOf(text, 'ngrok_up')).toBe(1);
    expect(sumOf(text, 'ngrok_app_sessions_active')).toBe(9);
    expect(api.requests.map((request) => request.target)).toEqual([
      FIRST,
      '/app/sessions?before_id=as_a000002&limit=100',
      '/app/sessions?before_id=as_b000002&limit=100',
    ]);
  });

  it.each([
    ['back to the first page', (origin: string) => `${origin}${FIRST}`],
    ['back to itself', (origin: string) => `${origin}/app/sessions?before_id=as_a000002&limit=100`],
  ])('stops a cursor that loops %s', async (_name, loop) => {
    api = await startPagedApi((origin) => ({
      [FIRST]: pageBody(A, `${origin}/app/sessions?before_id=as_a000002&limit=100`),
      '/app/sessions?before_id=as_a000002&limit=100': pageBody(B, loop(origin)),
    }));
    exporter = await startTestExporter(api.url, { clock });
    const text = await exporter.waitForRefresh();

    expect(valueOf(text, 'ngrok_up')).toBe(0);
    expect(valueOf(text, 'ngrok_exporter_refresh_failures_total{reason="paging"}')).toBe(1);
    expect(text).not.toContain('ngrok_app_sessions_active');
    expect(api.requests).toHaveLength(2);
    expect((errorRecords(exporter.logs)[0]?.err as { code: string }).code).toBe('CURSOR_LOOP');
  });

  it('stops a loop that reorders the query', async () => {
    api = await startPagedApi((origin) => ({
      [FIRST]: pageBody(A, `${origin}/app/sessions?before_id=as_a000002&limit=100`),
      '/app/sessions?before_id=as_a000002&limit=100': pageBody(B, `${origin}/app/sessions?limit=100&before_id=as_a000002`),
      '/app/sessions?limit=100&before_id=as_a000002': pageBody(B, `${origin}/app/sessions?before_id=as_a000002&limit=100`),
    }));
    exporter = await startTestExporter(api.url, { clock });
    const text = await exporter.waitForRefresh();

    expect(valueOf(text, 'ngrok_up')).toBe(0);
    expect(valueOf(text, 'ngrok_exporter_refresh_failures_total{reason="paging"}')).toBe(1);
    expect((errorRecords(exporter.logs)[0]?.err as { code: string }).code).toBe('CURSOR_LOOP');
    expect(api.requests.length).toBeLessThanOrEqual(3);
  });

  it('stops a loop whose cursor changes on every page', async () => {
    // Every cursor is new, but the pages repeat: only the sessions show that the walk makes no progress.
    let served = 0;
    api = await startRawServer((request, socket) => {
      served++;
      const sessions = request.index === 0 ? A : B;
      writeJson(socket, pageBody(sessions, `/app/sessions?before_id=as_b000002&limit=100&nonce=${served}`));
    });
    exporter = await startTestExporter(api.url, { clock, argv: ['--ngrok.max-pages=50'] });
    const text = await exporter.waitForRefresh();

    expect(valueOf(text, 'ngrok_up')).toBe(0);
    expect(valueOf(text, 'ngrok_exporter_refresh_failures_total{reason="paging"}')).toBe(1);
    expect((errorRecords(exporter.logs)[0]?.err as { code: string }).code).toBe('CURSOR_LOOP');
    expect(api.requests).toHaveLength(3);
  });

  it('ends the walk on an empty page that still has a cursor', async () => {
    api = await startPagedApi((origin) => ({
      [FIRST]: pageBody(A, `${origin}/app/sessions?before_id=as_a000002&limit=100`),
      '/app/sessions?before_id=as_a000002&limit=100': pageBody([], `${origin}/app/sessions?before_id=as_a000002&limit=100&more=1`),
    }));
    exporter = await startTestExporter(api.url, { clock });
    const text = await exporter.waitForRefresh();

    expect(valueOf(text, 'ngrok_up')).toBe(1);
    expect(sumOf(text, 'ngrok_app_sessions_active')).toBe(3);
    expect(valueOf(text, 'ngrok_exporter_refresh_pages')).toBe(2);
    expect(api.requests).toHaveLength(2);
  });

  it.each([
    ['a null array', null],
    ['a missing array', undefined],
  ])('ends the walk on a page with %s', async (_name, items) => {
    api = await startPagedApi((origin) => ({
      [FIRST]: pageBody(A, `${origin}/app/sessions?before_id=as_a000002&limit=100`),
      '/app/sessions?before_id=as_a000002&limit=100': { application_sessions: items, next_page_uri: `${origin}/app/sessions?before_id=x` },
    }));
    exporter = await startTestExporter(api.url, { clock });
    const text = await exporter.waitForRefresh();
    expect(valueOf(text, 'ngrok_up')).toBe(1);
    expect(sumOf(text, 'ngrok_app_sessions_active')).toBe(3);
    expect(api.requests).toHaveLength(2);
  });

  it('counts a session listed on several pages once', async () => {
    const shared = activeSessions(2, START_MS, 'as_shared');
    api = await startPagedApi((origin) => ({
      [FIRST]: pageBody([...A, ...shared], `${origin}/app/sessions?before_id=1&limit=100`),
      '/app/sessions?before_id=1&limit=100': pageBody([...shared, ...B], `${origin}/app/sessions?before_id=2&limit=100`),
      '/app/sessions?before_id=2&limit=100': pageBody([shared[0], ...C, shared[1], C[0]], null),
    }));
    exporter = await startTestExporter(api.url, { clock });
    const text = await exporter.waitForRefresh();

    expect(valueOf(text, 'ngrok_up')).toBe(1);
    expect(sumOf(text, 'ngrok_app_sessions_active')).toBe(11);
    expect(valueOf(text, 'ngrok_app_sessions_listed')).toBe(11);
    expect(exporter.logs.withMessage(/repeated sessions/)).toEqual([expect.objectContaining({ level: 40, duplicate_sessions: 5 })]);
  });

  it('fails the refresh beyond --ngrok.max-pages', async () => {
    simulator = await startSimulator({ apiKey: TEST_API_KEY, sessions: activeSessions(450, START_MS), now: clock.now, requestsPerMinute: null });
    exporter = await startTestExporter(simulator.url, { clock, argv: ['--ngrok.max-pages=5'] });
    const before = await exporter.waitForRefresh();
    expect(sumOf(before, 'ngrok_app_sessions_active')).toBe(450);

    simulator.account.add(...activeSessions(100, START_MS, 'as_more'));
    const after = await exporter.refresh();

    expectFailedRefresh(exporter, before, after, paging('TOO_MANY_PAGES', { '200': 5 }));
    expect(simulator.stats.requests).toBe(10);
  });
});
