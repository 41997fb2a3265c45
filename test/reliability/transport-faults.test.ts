import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { sumOf, until, valueOf } from '../support/harness.js';
import { freePort } from '../support/prometheus.js';
import { drip, startRawServer, writeChunk, writeHead, writeJson, writeResponse, type RawRequest, type RawServer } from '../support/raw-server.js';
import {
  TEST_API_KEY,
  activeSessions,
  errorRecords,
  expectFailedRefresh,
  expectRepeatCounted,
  manualClock,
  pageBody,
  startTestExporter,
  type ExpectedFailure,
  type ManualClock,
  type TestExporter,
} from './exporter.js';

const START_MS = Date.parse('2026-03-01T12:00:00Z');
const SESSIONS = activeSessions(5, START_MS);
const PAGE = JSON.stringify(pageBody(SESSIONS, null));

let clock: ManualClock;
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

type Fault = (request: RawRequest, socket: Socket) => void | Promise<void>;

const network: ExpectedFailure = { reason: 'network', errorCode: 'NETWORK_ERROR', requests: { error: 1 } };
const timeout: ExpectedFailure = { reason: 'timeout', errorCode: 'TIMEOUT', requests: { error: 1 } };

/** Starts a raw server whose first request gets a valid page and whose later requests get `fault`. */
async function goodThenFault(fault: Fault, argv: string[] = []): Promise<string> {
  server = await startRawServer((request, socket) => (request.index === 0 ? writeJson(socket, pageBody(SESSIONS, null)) : fault(request, socket)));
  exporter = await startTestExporter(server.url, { argv, clock });
  const before = await exporter.waitForRefresh();
  expect(valueOf(before, 'ngrok_up')).toBe(1);
  expect(sumOf(before, 'ngrok_app_sessions_active')).toBe(SESSIONS.length);
  return before;
}

const FAULTS: [string, Fault, ExpectedFailure][] = [
  ['a reset before any response', (_request, socket) => void socket.resetAndDestroy(), network],
  ['a close before any response', (_request, socket) => void socket.end(), network],
  [
    'a reset in the middle of the body',
    (_request, socket) => {
      writeHead(socket, 200, [['content-type', 'application/json'], ['content-length', String(PAGE.length)]]);
      socket.write(PAGE.slice(0, 100), () => socket.resetAndDestroy());
    },
    network,
  ],
  [
    'a close in the middle of the body',
    (_request, socket) => {
      writeHead(socket, 200, [['content-type', 'application/json'], ['content-length', String(PAGE.length)]]);
      socket.end(PAGE.slice(0, 100));
    },
    network,
  ],
  [
    'a close in the middle of a chunked body',
    (_request, socket) => {
      writeHead(socket, 200, [['content-type', 'application/json'], ['transfer-encoding', 'chunked']]);
      writeChunk(socket, PAGE.slice(0, 100));
      socket.end();
    },
    network,
  ],
  [
    'an invalid chunk size',
    (_request, socket) => {
      writeHead(socket, 200, [['content-type', 'application/json'], ['transfer-encoding', 'chunked']]);
      socket.write('zz\r\nnot a chunk\r\n');
    },
    network,
  ],
  ['a response that is not HTTP', (_request, socket) => void socket.end('SSH-2.0-OpenSSH_9.6\r\n\r\n'), network],
  [
    'two different Content-Length headers',
    (_request, socket) => writeResponse(socket, { status: 200, headers: [['content-length', '3']], body: PAGE }),
    network,
  ],
  ['a server that accepts and never answers', () => undefined, timeout],
  [
    'headers that drip in slowly',
    async (_request, socket) => {
      await drip(socket, Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${PAGE.length}\r\n\r\n${PAGE}`), 50);
    },
    timeout,
  ],
  [
    'a body that drips in slowly',
    async (_request, socket) => {
      // The headers arrive at once, so only a deadline that covers the body can end this request.
      writeHead(socket, 200, [['content-type', 'application/json'], ['content-length', String(PAGE.length)]]);
      await drip(socket, Buffer.from(PAGE), 20);
    },
    timeout,
  ],
  [
    'a valid page after the deadline',
    async (_request, socket) => {
      await new Promise((resolve) => setTimeout(resolve, 600));
      if (!socket.destroyed) writeJson(socket, pageBody(SESSIONS, null));
    },
    timeout,
  ],
  [
    'a status above 599',
    (_request, socket) => writeResponse(socket, { status: 999, reason: 'Odd', headers: [['content-type', 'application/json']], body: PAGE }),
    { reason: 'invalid_response', errorCode: 'HTTP_999', requests: { '999': 1 } },
  ],
];

describe('transport faults', () => {
  it.each(FAULTS)('survive %s', async (_name, fault, expected) => {
    const before = await goodThenFault(fault);
    const after = await exporter!.refresh();
    expectFailedRefresh(exporter!, before, after, expected);
    await expectRepeatCounted(exporter!, expected);
  });

  it('survive a refused connection', async () => {
    const before = await goodThenFault(() => undefined);
    await server!.close();
    server = undefined;

    const after = await exporter!.refresh();
    expectFailedRefresh(exporter!, before, after, network);
    const error = errorRecords(exporter!.logs)[0]?.err as { message: string };
    expect(error.message).toMatch(/ECONNREFUSED/);
    await expectRepeatCounted(exporter!, network);
  });

  it('report a refused connection before any snapshot', async () => {
    const port = await freePort();
    exporter = await startTestExporter(`http://127.0.0.1:${port}`, { clock });
    const text = await exporter.waitForRefresh();

    expect(valueOf(text, 'ngrok_up')).toBe(0);
    expect(valueOf(text, 'ngrok_exporter_refresh_failures_total{reason="network"}')).toBe(1);
    expect(valueOf(text, 'ngrok_exporter_api_requests_total{code="error"}')).toBe(1);
    expect(valueOf(text, 'ngrok_exporter_snapshot_stale')).toBe(1);
    expect(text).not.toContain('ngrok_app_sessions_active');
    expect(errorRecords(exporter.logs).map((record) => record.msg)).toEqual(['refresh failed; no snapshot to serve yet']);
  });

  it('put a deadline on every attempt', async () => {
    const before = await goodThenFault(() => undefined, ['--ngrok.max-retries=2']);
    const after = await exporter!.refresh();

    expectFailedRefresh(exporter!, before, after, { ...timeout, requests: { error: 3 } });
    expect(server!.requests).toHaveLength(4);
    expect(valueOf(after, 'ngrok_exporter_api_retries_total')).toBe(2);
    expect(exporter!.logs.withMessage(/retrying/)).toHaveLength(2);
  });

  it('time out a delayed simulator page', async () => {
    simulator = await startSimulator({ apiKey: TEST_API_KEY, sessions: SESSIONS, now: clock.now, requestsPerMinute: null });
    exporter = await startTestExporter(simulator.url, { clock });
    const before = await exporter.waitForRefresh();
    simulator.injectFault({ kind: 'delay', delayMs: 1_000 });
    const after = await exporter.refresh();
    expectFailedRefresh(exporter, before, after, timeout);
  });

  it.each([
    ['no response', undefined],
    ['part of the body', 50],
  ])('survive a simulator that destroys the connection after %s', async (_name, afterBytes) => {
    simulator = await startSimulator({ apiKey: TEST_API_KEY, sessions: SESSIONS, now: clock.now, requestsPerMinute: null });
    exporter = await startTestExporter(simulator.url, { clock });
    const before = await exporter.waitForRefresh();
    simulator.injectFault({ kind: 'destroy', afterBytes });
    const after = await exporter.refresh();
    expectFailedRefresh(exporter, before, after, network);
  });
});

describe('failure log', () => {
  it('logs a repeat again after ten minutes with its count', async () => {
    let failing = true;
    server = await startRawServer((request, socket) => {
      if (request.index === 0 || !failing) return writeJson(socket, pageBody(SESSIONS, null));
      socket.resetAndDestroy();
    });
    exporter = await startTestExporter(server.url, { clock });
    await exporter.waitForRefresh();

    await exporter.refresh();
    await exporter.refresh();
    await exporter.refresh();
    expect(errorRecords(exporter.logs)).toHaveLength(1);
    expect(exporter.logs.withMessage(/^refresh failed again$/).map((record) => record.repeats_since_last_log)).toEqual([1, 2]);

    clock.advance(10 * 60_000);
    await exporter.refresh();
    const errors = errorRecords(exporter.logs);
    expect(errors).toHaveLength(2);
    expect(errors[1]).toMatchObject({ repeats_since_last_log: 2, consecutive_failures: 4 });

    failing = false;
    const text = await exporter.refresh();
    expect(valueOf(text, 'ngrok_up')).toBe(1);
    expect(valueOf(text, 'ngrok_exporter_refresh_failures_total{reason="network"}')).toBe(4);
    expect(exporter.logs.withMessage(/^refresh succeeded after failures$/)).toEqual([expect.objectContaining({ level: 30, failed_refreshes: 4 })]);
  });

  it('counts two alternating failures without logging each', async () => {
    server = await startRawServer((request, socket) => {
      if (request.index === 0) return writeJson(socket, pageBody(SESSIONS, null));
      if (request.index % 2 === 0) return writeResponse(socket, { status: 503, body: 'unavailable' });
      socket.resetAndDestroy();
    });
    exporter = await startTestExporter(server.url, { clock });
    await exporter.waitForRefresh();

    let text = '';
    for (let refresh = 0; refresh < 6; refresh++) text = await exporter.refresh();
    expect(valueOf(text, 'ngrok_exporter_refresh_failures_total{reason="network"}')).toBe(3);
    expect(valueOf(text, 'ngrok_exporter_refresh_failures_total{reason="server_error"}')).toBe(3);
    expect(errorRecords(exporter.logs).map((record) => (record.err as { code: string }).code)).toEqual(['NETWORK_ERROR', 'HTTP_503']);
    expect(exporter.logs.withMessage(/^refresh failed again$/)).toHaveLength(4);
  });
});

const MAIN = new URL('../../dist/main.js', import.meta.url).pathname;

describe('exporter process', () => {
  it('stays up through a series of transport faults', async () => {
    // Each fault follows a valid page, so every failure is one refresh interval (1 s) after a success.
    const faults: Fault[] = [
      (_request, socket) => {
        writeHead(socket, 200, [['content-length', String(PAGE.length)]]);
        socket.write(PAGE.slice(0, 10), () => socket.resetAndDestroy());
      },
      () => undefined,
      (_request, socket) => void socket.end('garbage\r\n\r\n'),
      (_request, socket) => writeHead(socket, 200, [['content-type', 'application/json'], ['content-length', String(100 * 1024 * 1024)]]),
    ];
    // The process runs on the real clock, so its sessions expire a day from now.
    const sessions = activeSessions(5, Date.now());
    server = await startRawServer((request, socket) => {
      const fault = request.index % 2 === 1 ? faults[(request.index - 1) / 2] : undefined;
      return fault === undefined ? writeJson(socket, pageBody(sessions, null)) : fault(request, socket);
    });
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [MAIN, `--ngrok.api-url=${server.url}`, `--web.listen-address=127.0.0.1:${port}`, '--ngrok.timeout=300ms', '--ngrok.max-retries=0', '--refresh.interval=1s', '--ngrok.max-body-bytes=4096'],
      { env: { PATH: process.env.PATH ?? '', NGROK_API_KEY: TEST_API_KEY } },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));

    try {
      const expectedRequests = 2 * faults.length + 1;
      await until(async () => {
        const response = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined);
        await response?.text();
        return server!.requests.length >= expectedRequests;
      }, 30_000);
      await until(async () => (await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).includes('ngrok_up 1'), 10_000);

      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(child.exitCode).toBeNull();
      expect(sumOf(text, 'ngrok_app_sessions_active')).toBe(sessions.length);
      expect(valueOf(text, 'ngrok_exporter_refresh_failures_total{reason="network"}')).toBe(2);
      expect(valueOf(text, 'ngrok_exporter_refresh_failures_total{reason="timeout"}')).toBe(1);
      expect(valueOf(text, 'ngrok_exporter_refresh_failures_total{reason="invalid_response"}')).toBe(1);
      expect(output).not.toContain('unhandled');
      expect(output).not.toContain(TEST_API_KEY);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
