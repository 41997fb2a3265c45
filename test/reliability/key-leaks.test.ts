import { inspect } from 'node:util';
import type { Socket } from 'node:net';

import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';

import { RequestBudget } from '../../src/budget.js';
import { Secret } from '../../src/config.js';
import { ApiError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import { ApiClient } from '../../src/ngrok/client.js';
import { walkPages } from '../../src/ngrok/pages.js';
import { REDACTED, redactSecret } from '../../src/redact.js';
import { LogCapture } from '../support/logs.js';
import { startRawServer, writeHead, writeJson, writeResponse, type RawRequest, type RawServer } from '../support/raw-server.js';
import { TEST_API_KEY, activeSessions, errorRecords, manualClock, pageBody, startTestExporter, type TestExporter } from './exporter.js';

const KEY = TEST_API_KEY;
const [KEY_ID_PART, KEY_SECRET_PART] = KEY.split('_') as [string, string];
const SESSIONS = activeSessions(3, Date.parse('2026-03-01T12:00:00Z'));

let server: RawServer | undefined;
let exporter: TestExporter | undefined;

afterEach(async () => {
  await exporter?.close();
  await server?.close();
  exporter = undefined;
  server = undefined;
});

/** Every 12-character piece of the key in lower case, so that a cut-off copy is found too. */
const KEY_PIECES = Array.from({ length: KEY.length - 11 }, (_, start) => KEY.slice(start, start + 12).toLowerCase());

/** Undoes percent-encoding (also twice over), JSON escapes and HTML character references, and lower-cases. */
function decodeEverything(text: string): string {
  let decoded = text;
  for (let round = 0; round < 3; round++) {
    decoded = decoded
      .replace(/%([0-9a-f]{2})/gi, (_match, hex: string) => String.fromCharCode(parseInt(hex, 16)))
      .replace(/\\u([0-9a-f]{4})/gi, (_match, hex: string) => String.fromCharCode(parseInt(hex, 16)))
      .replace(/&#x([0-9a-f]+);/gi, (_match, hex: string) => String.fromCodePoint(parseInt(hex, 16)))
      .replace(/&#(\d+);/g, (_match, digits: string) => String.fromCodePoint(Number(digits)));
  }
  return decoded.toLowerCase();
}

function expectNoKey(text: string, where: string): void {
  const decoded = decodeEverything(text);
  for (const piece of KEY_PIECES) expect(decoded.includes(piece), `${where} contains ${JSON.stringify(piece)}`).toBe(false);
}

/** Percent-encodes every character of `text`, with upper or lower case hex digits. */
function percentEncodeAll(text: string, lowerCase = false): string {
  const encoded = [...Buffer.from(text, 'utf8')].map((byte) => `%${byte.toString(16).padStart(2, '0').toUpperCase()}`).join('');
  return lowerCase ? encoded.toLowerCase() : encoded;
}

const jsonEscapeAll = (text: string): string => [...text].map((character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
const htmlEscapeAll = (text: string): string => [...text].map((character) => `&#${character.charCodeAt(0)};`).join('');

type Reply = (request: RawRequest, socket: Socket, origin: string) => void;

const jsonError = (status: number, body: Record<string, unknown>, headers: [string, string][] = []): Reply => (_request, socket) =>
  writeJson(socket, body, status, headers);
const textReply = (status: number, contentType: string, body: string, reason = 'OK'): Reply => (_request, socket) =>
  writeResponse(socket, { status, reason, headers: [['content-type', contentType]], body });
/** Serves a first page whose cursor is `cursor(origin)`, then `next` for the page that cursor names. */
const cursorReply = (cursor: (origin: string) => string, next: Reply = textReply(500, 'text/plain', 'failed')): Reply => (request, socket, origin) =>
  request.index === 0 ? writeJson(socket, pageBody(SESSIONS, cursor(origin))) : next(request, socket, origin);

/** Ways in which an API or a proxy could send the key back. */
const ECHOES: [string, Reply][] = [
  ['an auth error message', jsonError(401, { error_code: 'ERR_NGROK_202', status_code: 401, msg: `The credential ${KEY} is invalid.`, details: { operation_id: 'op_1' } })],
  ['a message cut off inside the key', jsonError(500, { status_code: 500, msg: `${'x'.repeat(290)}${KEY}`, details: {} })],
  ['the error_code field', jsonError(400, { error_code: KEY, status_code: 400, msg: 'bad', details: {} })],
  ['the operation id field', jsonError(503, { status_code: 503, msg: 'down', details: { operation_id: `op_${KEY}` } })],
  ['the operation id header', jsonError(503, { status_code: 503, msg: 'down' }, [['ngrok-operation-id', `op_${KEY}`]])],
  ['an HTML page with 200', textReply(200, 'text/html', `<html><body><p>Hello, your key is ${KEY}</p></body></html>`)],
  ['an HTML page cut off inside the key', textReply(200, 'text/html', `<html><body>${'y'.repeat(50)}${KEY}</body></html>`)],
  ['an HTML page with 502', textReply(502, 'text/html', `<html><body>upstream rejected ${KEY}</body></html>`)],
  ['a body that starts with the key', textReply(200, 'application/json', `${KEY}{"application_sessions":[]}`)],
  ['a JSON body cut short after the key', textReply(200, 'application/json', `{"msg":"${KEY}","application_sessions":[`)],
  ['the status reason phrase', textReply(500, 'text/plain', 'failed', `Failed for ${KEY}`)],
  ['a message with the key percent-encoded', jsonError(401, { status_code: 401, msg: `see /x?k=${percentEncodeAll(KEY)}`, details: {} })],
  ['a message with lower-case percent-encoding', jsonError(401, { status_code: 401, msg: `see /x?k=${percentEncodeAll(KEY, true)}`, details: {} })],
  ['a message with only the underscore encoded', jsonError(401, { status_code: 401, msg: `see /x?k=${KEY.replace('_', '%5f')}`, details: {} })],
  ['a message with the key encoded twice', jsonError(401, { status_code: 401, msg: `see /x?k=${KEY.replace('_', '%255F')}`, details: {} })],
  ['a body with the key JSON-escaped', textReply(502, 'text/plain', `{"msg":"${jsonEscapeAll(KEY)}"`)],
  ['an HTML page with the key as entities', textReply(502, 'text/html', `<p>${htmlEscapeAll(KEY)}</p>`)],
  ['a message with the key in upper case', jsonError(401, { status_code: 401, msg: `KEY ${KEY.toUpperCase()}`, details: {} })],
  ['a message with only the secret part', jsonError(401, { status_code: 401, msg: `secret ${KEY_SECRET_PART} rejected`, details: {} })],
  ['a Location header', (_request, socket) => writeResponse(socket, { status: 302, reason: 'Found', headers: [['location', `https://login.example/?key=${KEY}`]], body: `Moved to https://login.example/?key=${KEY}` })],
  ['a cursor on the API origin', cursorReply((origin) => `${origin}/app/sessions?before_id=as_1&token=${KEY}`)],
  ['a cursor that loops', cursorReply((origin) => `${origin}/app/sessions?before_id=as_1&token=${KEY}`, (_request, socket, origin) => writeJson(socket, pageBody(activeSessions(2, 0, 'as_other'), `${origin}/app/sessions?before_id=as_1&token=${KEY}`)))],
  ['a cursor with the key as host name', cursorReply(() => `https://${KEY}.evil.example/app/sessions`)],
  ['a cursor with the key as user name', cursorReply(() => `https://${KEY}@evil.example/app/sessions`)],
  ['a cursor with the key in its path', cursorReply((origin) => `${origin}/app/${KEY}`)],
  ['a cursor that is not a URL', cursorReply(() => `http://[${KEY}/app/sessions`)],
  ['a cursor with the key percent-encoded', cursorReply((origin) => `${origin}/app/sessions?before_id=${percentEncodeAll(KEY)}`)],
  ['a cursor to a page with a huge body', cursorReply((origin) => `${origin}/app/sessions?t=${KEY}`, (_request, socket) => writeHead(socket, 200, [['content-length', String(1 << 30)]]))],
];

async function startEcho(reply: Reply): Promise<RawServer> {
  const started: RawServer = await startRawServer((request, socket) => reply(request, socket, started.url));
  return started;
}

describe('API key in the exporter outputs', () => {
  it.each(ECHOES)('stays out when the API echoes it in %s', async (_name, reply) => {
    server = await startEcho(reply);
    exporter = await startTestExporter(server.url, { argv: ['--ngrok.max-body-bytes=4096'], clock: manualClock() });
    const metrics = await exporter.waitForRefresh();

    expect(errorRecords(exporter.logs)).toHaveLength(1);
    expectNoKey(exporter.logs.text(), 'the log');
    expectNoKey(metrics, 'the metrics');
    expectNoKey((await exporter.get('/')).body, 'the landing page');
  });
});

/** Walks the raw server directly and returns the error that ends the walk. */
async function walkError(url: string): Promise<ApiError> {
  const logs = new LogCapture();
  const options = {
    client: new ApiClient({ apiKey: new Secret(KEY), userAgent: 'test', timeoutMs: 2_000, maxBodyBytes: 4096 }),
    budget: new RequestBudget({ limit: 120 }),
    apiUrl: new URL(url),
    maxPages: 10,
    maxRetries: 0,
    retryMinDelayMs: 0,
    retryMaxDelayMs: 0,
    observer: { request: () => undefined, retry: () => undefined, rateLimited: () => undefined },
    logger: createLogger({ level: 'debug', destination: logs }),
  };
  try {
    for await (const page of walkPages(options)) expect(page).toBeDefined();
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error('the walk did not fail');
}

describe('API key in errors', () => {
  it.each(ECHOES)('stays out of the error when the API echoes it in %s', async (_name, reply) => {
    server = await startEcho(reply);
    const error = await walkError(server.url);

    expectNoKey(error.message, 'the message');
    expectNoKey(JSON.stringify({ ...error, message: error.message }), 'the fields');
    expectNoKey(inspect(error, { depth: 10 }), 'the inspected error with its causes');
  });
});

describe('redactSecret', () => {
  const secret = new Secret(KEY);

  it.each([
    ['plain', KEY],
    ['upper case', KEY.toUpperCase()],
    ['percent-encoded', percentEncodeAll(KEY)],
    ['lower-case percent-encoded', percentEncodeAll(KEY, true)],
    ['JSON-escaped', jsonEscapeAll(KEY)],
    ['HTML entities', htmlEscapeAll(KEY)],
    ['hex HTML entities', [...KEY].map((character) => `&#x${character.charCodeAt(0).toString(16)};`).join('')],
    ['the secret part alone', KEY_SECRET_PART],
    ['the id part alone', KEY_ID_PART],
  ])('removes the key %s', (_name, form) => {
    const text = redactSecret(`before ${form} after`, secret);
    expect(text).toBe(`before ${REDACTED} after`);
  });

  it('removes the key wherever it sits in any text', () => {
    const encodings = [(key: string) => key, encodeURIComponent, (key: string) => percentEncodeAll(key), jsonEscapeAll, htmlEscapeAll];
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), fc.integer({ min: 0, max: encodings.length - 1 }), (prefix, suffix, encoding) => {
        const text = redactSecret(`${prefix}${(encodings[encoding] as (key: string) => string)(KEY)}${suffix}`, secret);
        expectNoKey(text, 'the redacted text');
      }),
    );
  });

  it('leaves text without the key unchanged', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        fc.pre(!text.toLowerCase().includes(KEY_ID_PART.toLowerCase().slice(0, 8)));
        expect(redactSecret(text, secret)).toBe(text);
      }),
    );
  });
});
