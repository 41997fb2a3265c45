import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import bcrypt from 'bcryptjs';
import express from 'express';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { ConfigError } from '../src/errors.js';
import {
  basicAuth,
  createCredentialVerifier,
  createHttpServer,
  DEFAULT_SERVER_LIMITS,
  loadWebConfig,
  parseBasicCredentials,
  parseSubjectAltNames,
  type CredentialVerifier,
  type ServerLimits,
  type WebConfig,
} from '../src/web/web-config.js';

// Cost 4 is the bcrypt minimum, which keeps the tests fast.
const ALICE_PASSWORD = 'correct horse battery staple';
const ALICE_HASH = bcrypt.hashSync(ALICE_PASSWORD, 4);
const BOB_HASH = bcrypt.hashSync('bob-secret', 4);

let folder: string;

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: folder, stdio: 'pipe' });
}

/** Creates a key pair and a certificate signed by the CA (or self-signed without one). */
function makeCertificate(name: string, subject: string, extensions: string[], ca?: string): void {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', subject, '-keyout', `${name}.key`];
  const addext = extensions.flatMap((extension) => ['-addext', extension]);
  if (ca === undefined) {
    openssl('req', '-x509', ...ec, ...addext, '-days', '1', '-out', `${name}.crt`);
    return;
  }
  openssl('req', '-new', ...ec, ...addext, '-out', `${name}.csr`);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-days', '1', '-copy_extensions', 'copyall', '-out', `${name}.crt`);
}

async function writeConfig(name: string, text: string): Promise<string> {
  const file = path.join(folder, name);
  await writeFile(file, text);
  return file;
}

beforeAll(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'web-config-'));
  makeCertificate('server', '/CN=127.0.0.1', ['subjectAltName=IP:127.0.0.1']);
  makeCertificate('other', '/CN=other', ['subjectAltName=DNS:other.example']);
  makeCertificate('client-ca', '/CN=test client CA', ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign']);
  makeCertificate('client', '/CN=prometheus', ['subjectAltName=DNS:scraper.example,URI:spiffe://test/prometheus,IP:::1', 'extendedKeyUsage=clientAuth'], 'client-ca');
  makeCertificate('stranger', '/CN=stranger', ['subjectAltName=DNS:scraper.example', 'extendedKeyUsage=clientAuth']);
});

afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface RequestOptions {
  auth?: string;
  authorization?: string;
  clientCert?: string;
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
}

/** Sends GET /metrics over HTTPS, trusting only the test's server certificate. */
async function get(port: number, options: RequestOptions = {}): Promise<Reply> {
  const ca = await readFile(path.join(folder, 'server.crt'));
  const client = options.clientCert === undefined ? {} : {
    cert: await readFile(path.join(folder, `${options.clientCert}.crt`)),
    key: await readFile(path.join(folder, `${options.clientCert}.key`)),
  };
  const headers: Record<string, string> = {};
  if (options.auth !== undefined) headers.authorization = `Basic ${Buffer.from(options.auth).toString('base64')}`;
  if (options.authorization !== undefined) headers.authorization = options.authorization;

  return new Promise((resolve, reject) => {
    const request = https.get(
      { host: '127.0.0.1', port, path: '/metrics', ca, agent: false, headers, ...client, ...(options.maxVersion ? { maxVersion: options.maxVersion } : {}) },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
  });
}

function plainGet(port: number): Promise<Reply> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      })
      .on('error', reject);
  });
}

const servers: (http.Server | https.Server)[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** Starts the app behind createHttpServer and basicAuth on 127.0.0.1, port 0. */
async function serve(webConfig: WebConfig, verifier?: CredentialVerifier, limits?: ServerLimits): Promise<number> {
  const app = express();
  app.use(basicAuth(webConfig, verifier));
  app.get('/metrics', (_request, response) => {
    response.type('text/plain').send('ngrok_up 1\n');
  });

  const server = createHttpServer(app, webConfig, limits);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function tlsConfig(extra = '', users = `basic_auth_users:\n  alice: ${ALICE_HASH}\n  bob: ${BOB_HASH}\n`): Promise<WebConfig> {
  const file = await writeConfig('web.yml', `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n${extra}${users}`);
  return loadWebConfig(file);
}

describe('loadWebConfig', () => {
  it('reads TLS files relative to the config file', async () => {
    const config = await tlsConfig();

    expect(config.tls?.cert.equals(await readFile(path.join(folder, 'server.crt')))).toBe(true);
    expect(config.tls?.key.equals(await readFile(path.join(folder, 'server.key')))).toBe(true);
    expect(config.tls?.requestCert).toBe(false);
    expect(config.tls?.clientAuth).toBe('NoClientCert');
    expect(config.tls?.minVersion).toBe('TLSv1.2');
    expect([...config.basicAuthUsers.keys()]).toEqual(['alice', 'bob']);
    expect(config.warnings).toEqual([]);
  });

  it('treats an empty file as plain HTTP without auth', async () => {
    const config = await loadWebConfig(await writeConfig('empty.yml', '# nothing configured\n'));

    expect(config.tls).toBeUndefined();
    expect(config.basicAuthUsers.size).toBe(0);
    expect(config.rateLimit).toBeUndefined();
  });

  it('maps client auth, versions, headers and rate limit', async () => {
    const file = await writeConfig(
      'full.yml',
      [
        'tls_server_config:',
        `  cert_file: ${path.join(folder, 'server.crt')}`,
        '  key_file: server.key',
        '  client_auth_type: RequireAndVerifyClientCert',
        '  client_ca_file: client-ca.crt',
        '  client_allowed_sans: [scraper.example]',
        '  min_version: TLS13',
        'http_server_config:',
        '  headers:',
        '    X-Content-Type-Options: nosniff',
        '    X-Frame-Options: deny',
        'rate_limit:',
        '  interval: 100ms',
        '  burst: 20',
      ].join('\n'),
    );
    const config = await loadWebConfig(file);

    expect(config.tls?.requestCert).toBe(true);
    expect(config.tls?.ca?.equals(await readFile(path.join(folder, 'client-ca.crt')))).toBe(true);
    expect(config.tls?.clientAllowedSans).toEqual(['scraper.example']);
    expect(config.tls?.minVersion).toBe('TLSv1.3');
    expect(Object.fromEntries(config.headers)).toEqual({ 'X-Content-Type-Options': 'nosniff', 'X-Frame-Options': 'deny' });
    expect(config.rateLimit).toEqual({ intervalMs: 100, burst: 20 });
  });

  it('warns about known keys it ignores', async () => {
    const config = await tlsConfig('  cipher_suites: [TLS_AES_128_GCM_SHA256]\nhttp_server_config:\n  http2: true\n');

    expect(config.warnings).toHaveLength(2);
    expect(config.warnings[0]).toContain('tls_server_config.cipher_suites');
    expect(config.warnings[1]).toContain('http_server_config.http2');
  });

  const invalidConfigs: [string, string, string][] = [
    ['bad YAML', 'tls_server_config: [unclosed\n', 'not valid YAML'],
    ['duplicate key', 'basic_auth_users: {}\nbasic_auth_users: {}\n', 'not valid YAML'],
    ['unknown top-level key', 'basic_auth: {}\n', 'basic_auth: unknown key'],
    ['unknown TLS key', 'tls_server_config:\n  certfile: server.crt\n', 'tls_server_config.certfile: unknown key'],
    ['missing cert file', 'tls_server_config:\n  cert_file: absent.crt\n  key_file: server.key\n', 'absent.crt'],
    ['missing key_file', 'tls_server_config:\n  cert_file: server.crt\n', 'tls_server_config.key_file: missing'],
    ['cert given twice', 'tls_server_config:\n  cert: x\n  cert_file: server.crt\n  key_file: server.key\n', 'either cert or cert_file'],
    ['key of another certificate', 'tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n', 'does not match the certificate'],
    ['key file as certificate', 'tls_server_config:\n  cert_file: server.key\n  key_file: server.key\n', 'not a PEM certificate'],
    ['unknown client auth type', 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: Always\n', '"Always" is not a client auth type'],
    ['verification without CA', 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n', 'client_ca_file: missing'],
    ['CA without policy', 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: client-ca.crt\n', 'is NoClientCert although client_ca_file is set'],
    ['SANs without required cert', 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: client-ca.crt\n  client_auth_type: VerifyClientCertIfGiven\n  client_allowed_sans: [a]\n', 'client_allowed_sans: needs client_auth_type'],
    ['unknown TLS version', 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS1.2\n', '"TLS1.2" is not a TLS version'],
    ['min above max', 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS13\n  max_version: TLS12\n', 'newer than max_version'],
    ['hash that is not bcrypt', 'basic_auth_users:\n  alice: hunter2-plaintext\n', 'basic_auth_users.alice: must be a bcrypt hash'],
    ['user name with colon', `basic_auth_users:\n  "a:b": ${ALICE_HASH}\n`, 'must not contain a colon'],
    ['users as a list', 'basic_auth_users: [alice]\n', 'basic_auth_users: must be a mapping'],
    ['header not allowed', 'http_server_config:\n  headers:\n    Server: nginx\n', 'http_server_config.headers.Server: unknown key'],
    ['header value not allowed', 'http_server_config:\n  headers:\n    X-Frame-Options: allow\n', '"allow" is not accepted'],
    ['http2 not boolean', 'http_server_config:\n  http2: sometimes\n', 'http_server_config.http2: must be true or false'],
    ['rate limit interval', 'rate_limit:\n  interval: fast\n  burst: 1\n', 'rate_limit.interval: must be a duration'],
    ['rate limit burst', 'rate_limit:\n  interval: 1s\n  burst: -1\n', 'rate_limit.burst: must be a whole number'],
    ['top level not a mapping', '- tls_server_config\n', 'must be a mapping'],
  ];

  it.each(invalidConfigs)('rejects %s', async (_name, text, expected) => {
    const file = await writeConfig('invalid.yml', text);

    const error = await loadWebConfig(file).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('INVALID_CONFIG');
    expect((error as ConfigError).setting).toBe('--web.config.file');
    expect((error as ConfigError).message).toContain(file);
    expect((error as ConfigError).message).toContain(expected);
  });

  it('rejects a missing config file', async () => {
    const file = path.join(folder, 'does-not-exist.yml');

    const error = await loadWebConfig(file).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('INVALID_CONFIG');
    expect((error as ConfigError).message).toContain(file);
    expect((error as ConfigError).message).toContain('ENOENT');
  });

  it('keeps a non-bcrypt value out of the message', async () => {
    const file = await writeConfig('plaintext.yml', 'basic_auth_users:\n  alice: hunter2-plaintext\n');

    const error = (await loadWebConfig(file).catch((caught: unknown) => caught)) as ConfigError;
    expect(error.message).not.toContain('hunter2');
    expect(error.message).toContain('17 characters');
  });
});

describe('basic auth over TLS', () => {
  it('accepts a valid user over HTTPS', async () => {
    const port = await serve(await tlsConfig());

    const reply = await get(port, { auth: `alice:${ALICE_PASSWORD}` });
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('ngrok_up 1\n');
  });

  it.each([
    ['wrong password', { auth: 'alice:wrong' }],
    ['unknown user', { auth: `mallory:${ALICE_PASSWORD}` }],
    ['missing header', {}],
    ['bearer scheme', { authorization: 'Bearer abc' }],
    ['no colon', { authorization: `Basic ${Buffer.from('alice').toString('base64')}` }],
  ])('rejects %s with a challenge', async (_name, options: RequestOptions) => {
    const port = await serve(await tlsConfig());

    const reply = await get(port, options);
    expect(reply.status).toBe(401);
    expect(reply.headers['www-authenticate']).toBe('Basic realm="ngrok-sessions-exporter", charset="UTF-8"');
    expect(reply.body).toBe('Unauthorized\n');
  });

  it('compares a hash for unknown users too', async () => {
    const config = await tlsConfig();
    const verifier = createCredentialVerifier(config.basicAuthUsers);
    const port = await serve(config, verifier);

    await get(port, { auth: 'mallory:guess' });
    expect(verifier.stats.bcryptCompares).toBe(1);
    await get(port, { auth: 'alice:guess' });
    expect(verifier.stats.bcryptCompares).toBe(2);
    expect(verifier.unknownUserCost).toBe(4);
  });

  it('skips bcrypt without credentials', async () => {
    const config = await tlsConfig();
    const verifier = createCredentialVerifier(config.basicAuthUsers);
    const port = await serve(config, verifier);

    await get(port);
    expect(verifier.stats.bcryptCompares).toBe(0);
  });

  it('caches a successful verification', async () => {
    const config = await tlsConfig();
    const verifier = createCredentialVerifier(config.basicAuthUsers);
    const port = await serve(config, verifier);

    expect((await get(port, { auth: `alice:${ALICE_PASSWORD}` })).status).toBe(200);
    expect((await get(port, { auth: `alice:${ALICE_PASSWORD}` })).status).toBe(200);
    expect(verifier.stats.bcryptCompares).toBe(1);
    expect(verifier.stats.cacheHits).toBe(1);
  });

  it('does not cache a failed verification', async () => {
    const config = await tlsConfig();
    const verifier = createCredentialVerifier(config.basicAuthUsers);
    const port = await serve(config, verifier);

    await get(port, { auth: 'alice:wrong' });
    await get(port, { auth: 'alice:wrong' });
    expect(verifier.stats.bcryptCompares).toBe(2);
    expect(verifier.stats.cacheSize).toBe(0);
  });

  it('passes every request without users', async () => {
    const port = await serve(await tlsConfig('', ''));

    expect((await get(port)).status).toBe(200);
  });

  it('rejects plain HTTP on the TLS port', async () => {
    const port = await serve(await tlsConfig());

    await expect(plainGet(port)).rejects.toThrow();
  });

  it('enforces min_version', async () => {
    const port = await serve(await tlsConfig('  min_version: TLS13\n'));

    await expect(get(port, { maxVersion: 'TLSv1.2', auth: `alice:${ALICE_PASSWORD}` })).rejects.toThrow();
    expect((await get(port, { auth: `alice:${ALICE_PASSWORD}` })).status).toBe(200);
  });
});

describe('credential verifier', () => {
  it('uses the most common cost for unknown users', () => {
    const users = new Map([
      ['a', bcrypt.hashSync('a', 4)],
      ['b', bcrypt.hashSync('b', 5)],
      ['c', bcrypt.hashSync('c', 5)],
    ]);

    expect(createCredentialVerifier(users).unknownUserCost).toBe(5);
  });

  it('bounds the cache', async () => {
    const users = new Map([
      ['a', bcrypt.hashSync('pa', 4)],
      ['b', bcrypt.hashSync('pb', 4)],
      ['c', bcrypt.hashSync('pc', 4)],
    ]);
    const verifier = createCredentialVerifier(users, 2);

    for (const user of ['a', 'b', 'c']) expect(await verifier.verify(user, `p${user}`)).toBe(true);
    expect(verifier.stats.cacheSize).toBe(2);
    // The oldest entry was evicted, so it costs a bcrypt comparison again.
    expect(await verifier.verify('a', 'pa')).toBe(true);
    expect(verifier.stats.bcryptCompares).toBe(4);
  });

  it('shares one comparison between concurrent requests', async () => {
    const verifier = createCredentialVerifier(new Map([['alice', ALICE_HASH]]));

    const results = await Promise.all([1, 2, 3].map(() => verifier.verify('alice', ALICE_PASSWORD)));
    expect(results).toEqual([true, true, true]);
    expect(verifier.stats.bcryptCompares).toBe(1);
  });

  it('rejects a password past 72 bytes', async () => {
    const prefix = 'x'.repeat(72);
    const verifier = createCredentialVerifier(new Map([['alice', bcrypt.hashSync(prefix, 4)]]));

    expect(await verifier.verify('alice', prefix)).toBe(true);
    expect(await verifier.verify('alice', `${prefix}anything`)).toBe(false);
  });

  it.each([
    ['Basic YWxpY2U6cHc6Mg==', { user: 'alice', password: 'pw:2' }],
    ['basic   YWxpY2U6', { user: 'alice', password: '' }],
    ['Basic', undefined],
    ['Basic !!!', undefined],
    ['Digest YWxpY2U6cHc=', undefined],
  ])('parses %j', (header, expected) => {
    expect(parseBasicCredentials(header)).toEqual(expected);
  });
});

describe('client certificates', () => {
  async function clientAuthConfig(type: string, extra = ''): Promise<WebConfig> {
    return tlsConfig(`  client_auth_type: ${type}\n  client_ca_file: client-ca.crt\n${extra}`, '');
  }

  it('requires a verified certificate', async () => {
    const port = await serve(await clientAuthConfig('RequireAndVerifyClientCert'));

    await expect(get(port)).rejects.toThrow();
    await expect(get(port, { clientCert: 'stranger' })).rejects.toThrow();
    expect((await get(port, { clientCert: 'client' })).status).toBe(200);
  });

  it('matches client_allowed_sans', async () => {
    const allowed = await serve(await clientAuthConfig('RequireAndVerifyClientCert', '  client_allowed_sans: ["::1"]\n'));
    const denied = await serve(await clientAuthConfig('RequireAndVerifyClientCert', '  client_allowed_sans: [other.example]\n'));

    expect((await get(allowed, { clientCert: 'client' })).status).toBe(200);
    await expect(get(denied, { clientCert: 'client' })).rejects.toThrow();
  });

  it('verifies a certificate only if given', async () => {
    const port = await serve(await clientAuthConfig('VerifyClientCertIfGiven'));

    expect((await get(port)).status).toBe(200);
    expect((await get(port, { clientCert: 'client' })).status).toBe(200);
    await expect(get(port, { clientCert: 'stranger' })).rejects.toThrow();
  });

  it('requires any certificate', async () => {
    const port = await serve(await tlsConfig('  client_auth_type: RequireAnyClientCert\n', ''));

    await expect(get(port)).rejects.toThrow();
    expect((await get(port, { clientCert: 'stranger' })).status).toBe(200);
  });

  it.each([
    ['DNS:a.example, IP Address:0:0:0:0:0:0:0:1', ['a.example', '::1']],
    ['URI:spiffe://x/y, email:ops@example.com', ['spiffe://x/y', 'ops@example.com']],
    ['DNS:"a, b.example", DNS:c', ['a, b.example', 'c']],
  ])('parses SANs %j', (text, expected) => {
    expect(parseSubjectAltNames(text)).toEqual(expected);
  });
});

describe('createHttpServer', () => {
  it('sets connection limits', () => {
    const server = createHttpServer(express());

    expect(server.headersTimeout).toBe(DEFAULT_SERVER_LIMITS.headersTimeoutMs);
    expect(server.requestTimeout).toBe(DEFAULT_SERVER_LIMITS.requestTimeoutMs);
    expect(server.keepAliveTimeout).toBe(DEFAULT_SERVER_LIMITS.keepAliveTimeoutMs);
    expect(server.timeout).toBe(DEFAULT_SERVER_LIMITS.socketTimeoutMs);
    expect(server.maxHeadersCount).toBe(DEFAULT_SERVER_LIMITS.maxHeadersCount);
    expect(server.maxConnections).toBe(DEFAULT_SERVER_LIMITS.maxConnections);
  });

  it('drops a client that never finishes its headers', async () => {
    const limits = { ...DEFAULT_SERVER_LIMITS, headersTimeoutMs: 200, requestTimeoutMs: 400, connectionsCheckingIntervalMs: 50 };
    const port = await serve({ basicAuthUsers: new Map(), headers: new Map(), warnings: [] }, undefined, limits);

    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    socket.on('error', () => undefined);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.write('GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    await new Promise((resolve) => socket.on('close', resolve));

    expect(received).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('rejects oversized headers', async () => {
    const port = await serve({ basicAuthUsers: new Map(), headers: new Map(), warnings: [] });

    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    socket.on('error', () => undefined);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.write(`GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ${'a'.repeat(32_768)}\r\n\r\n`);
    await new Promise((resolve) => socket.on('close', resolve));

    expect(received).toMatch(/^HTTP\/1\.1 431 /);
  });

  it('adds configured headers to every response', async () => {
    const port = await serve(await tlsConfig('http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n'));

    const denied = await get(port);
    expect(denied.status).toBe(401);
    expect(denied.headers['x-content-type-options']).toBe('nosniff');
    const allowed = await get(port, { auth: `alice:${ALICE_PASSWORD}` });
    expect(allowed.headers['x-content-type-options']).toBe('nosniff');
  });

  it('answers 429 past the rate limit', async () => {
    const port = await serve(await tlsConfig('rate_limit:\n  interval: 1h\n  burst: 2\n', ''));

    expect((await get(port)).status).toBe(200);
    expect((await get(port)).status).toBe(200);
    expect((await get(port)).status).toBe(429);
  });
});
