/**
 * The --web.config.file: TLS, client certificates, basic auth, response headers
 * and a rate limit, in the YAML format of the Prometheus exporter-toolkit
 * (docs/web-configuration.md in the prometheus/exporter-toolkit repository).
 *
 * The exporter-toolkit rereads its file on every request. This exporter reads
 * the file once at start-up, so a changed certificate or password takes effect
 * on the next restart.
 */
import { createHmac, createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { isIPv6 } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';

import bcrypt from 'bcryptjs';
import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import { parseDocument } from 'yaml';

import { parseDuration } from '../config.js';
import { ConfigError } from '../errors.js';

const SETTING = '--web.config.file';

/** Client certificate policies, named as in Go's crypto/tls ClientAuthType. */
export const CLIENT_AUTH_TYPES = [
  'NoClientCert',
  'RequestClientCert',
  'RequireAnyClientCert',
  'VerifyClientCertIfGiven',
  'RequireAndVerifyClientCert',
] as const;
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];

/** TLS versions as the exporter-toolkit names them, and the Node.js names they map to. */
const TLS_VERSIONS: ReadonlyMap<string, tls.SecureVersion> = new Map([
  ['TLS10', 'TLSv1'],
  ['TLS11', 'TLSv1.1'],
  ['TLS12', 'TLSv1.2'],
  ['TLS13', 'TLSv1.3'],
]);
const TLS_VERSION_ORDER: readonly tls.SecureVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/** TLS settings of the listener, with file contents already read. */
export interface TlsSettings {
  cert: Buffer;
  key: Buffer;
  /** CA certificates that client certificates are verified against. */
  ca?: Buffer;
  clientAuth: ClientAuthType;
  /** Whether the server requests a certificate from clients. */
  requestCert: boolean;
  /** SANs (DNS, IP, e-mail or URI) of which a client certificate must carry one. An empty list allows any. */
  clientAllowedSans: readonly string[];
  minVersion: tls.SecureVersion;
  maxVersion: tls.SecureVersion;
}

/** Token bucket over all requests: one token per interval, up to `burst` stored. */
export interface RateLimit {
  intervalMs: number;
  burst: number;
}

/** The validated content of a web configuration file. */
export interface WebConfig {
  /** Absent when the listener serves plain HTTP. */
  tls?: TlsSettings;
  /** User name to bcrypt hash, empty when basic auth is off. */
  basicAuthUsers: ReadonlyMap<string, string>;
  /** Headers added to every response, from http_server_config.headers. */
  headers: ReadonlyMap<string, string>;
  rateLimit?: RateLimit;
  /** Settings that the file contains but this exporter ignores, one sentence each, to log at start-up. */
  warnings: readonly string[];
}

/** A web config without TLS, authentication, headers or rate limit. */
export const EMPTY_WEB_CONFIG: WebConfig = Object.freeze({
  basicAuthUsers: new Map<string, string>(),
  headers: new Map<string, string>(),
  warnings: [],
});

const TOP_LEVEL_KEYS = ['tls_server_config', 'http_server_config', 'basic_auth_users', 'rate_limit'];
const TLS_KEYS = [
  'cert',
  'key',
  'client_ca',
  'cert_file',
  'key_file',
  'client_auth_type',
  'client_ca_file',
  'client_allowed_sans',
  'min_version',
  'max_version',
  'cipher_suites',
  'prefer_server_cipher_suites',
  'curve_preferences',
];
const HTTP_SERVER_KEYS = ['http2', 'headers'];
const RATE_LIMIT_KEYS = ['interval', 'burst'];

/** Response headers that the exporter-toolkit allows, with the values it accepts (undefined: any). */
const ALLOWED_HEADERS: ReadonlyMap<string, readonly string[] | undefined> = new Map([
  ['Content-Security-Policy', undefined],
  ['X-Frame-Options', ['deny', 'sameorigin']],
  ['X-Content-Type-Options', ['nosniff']],
  ['X-XSS-Protection', undefined],
  ['Strict-Transport-Security', undefined],
]);

/** `$2a$`, `$2b$` or `$2y$`, a two-digit cost, then 22 characters of salt and 31 of hash. */
const BCRYPT_HASH = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;

/** The file being read, its folder for relative names, and the warnings collected so far. */
interface Source {
  file: string;
  folder: string;
  warnings: string[];
}

function invalid(source: Source, key: string, message: string, cause?: unknown): ConfigError {
  return new ConfigError(SETTING, `invalid web config file ${source.file}: ${key}: ${message}`, cause === undefined ? undefined : { cause });
}

/**
 * Reads and validates a web configuration file. Relative file names inside
 * it resolve against the folder of the file.
 * @throws ConfigError naming the file, the key, the bad value and the fix.
 */
export async function loadWebConfig(file: string): Promise<WebConfig> {
  const source: Source = { file, folder: path.dirname(path.resolve(file)), warnings: [] };

  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError(SETTING, `${SETTING} ${file} could not be read (${errorCode(error)}); point ${SETTING} at a readable YAML file.`, { cause: error });
  }

  const document = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  const yamlError = document.errors[0];
  if (yamlError !== undefined) {
    throw new ConfigError(SETTING, `invalid web config file ${file}: not valid YAML: ${yamlError.message}`, { cause: yamlError });
  }

  const root: unknown = document.toJS();
  if (root === null || root === undefined) return EMPTY_WEB_CONFIG;
  const top = expectMapping(source, '(top level)', root, TOP_LEVEL_KEYS);

  const config: WebConfig = {
    tls: await readTlsSettings(source, top.get('tls_server_config')),
    basicAuthUsers: readBasicAuthUsers(source, top.get('basic_auth_users')),
    headers: readHttpServerConfig(source, top.get('http_server_config')),
    rateLimit: readRateLimit(source, top.get('rate_limit')),
    warnings: source.warnings,
  };
  if (config.tls === undefined) delete config.tls;
  if (config.rateLimit === undefined) delete config.rateLimit;
  return Object.freeze(config);
}

function errorCode(error: unknown): string {
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') return error.code;
  return error instanceof Error ? error.message : String(error);
}

/** Checks that a value is a mapping with only the given keys; null counts as an empty mapping. */
function expectMapping(source: Source, key: string, value: unknown, allowedKeys: readonly string[]): Map<string, unknown> {
  if (value === null || value === undefined) return new Map();
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(source, key, `must be a mapping, got ${describe(value)}; see the exporter-toolkit web configuration format.`);
  }

  const entries = new Map(Object.entries(value));
  for (const name of entries.keys()) {
    if (!allowedKeys.includes(name)) {
      const prefix = key === '(top level)' ? '' : `${key}.`;
      throw invalid(source, `${prefix}${name}`, `unknown key; remove it or use one of: ${allowedKeys.join(', ')}.`);
    }
  }
  return entries;
}

function expectString(source: Source, key: string, value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') {
    throw invalid(source, key, `must be a non-empty string, got ${describe(value)}.`);
  }
  return value;
}

function expectStringList(source: Source, key: string, value: unknown): string[] {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string' && item !== '')) {
    throw invalid(source, key, `must be a list of non-empty strings, got ${describe(value)}.`);
  }
  return value as string[];
}

/** Describes a value for an error message without echoing strings, which may be secrets. */
function describe(value: unknown): string {
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${String(value)}`;
}

async function readTlsSettings(source: Source, value: unknown): Promise<TlsSettings | undefined> {
  const entries = expectMapping(source, 'tls_server_config', value, TLS_KEYS);
  // As in the exporter-toolkit, an empty tls_server_config means plain HTTP.
  if (entries.size === 0) return undefined;

  const cert = await readPem(source, entries, 'cert', 'cert_file');
  const key = await readPem(source, entries, 'key', 'key_file');
  if (cert === undefined) throw invalid(source, 'tls_server_config.cert_file', 'missing; set cert_file to the PEM server certificate, or remove tls_server_config to serve plain HTTP.');
  if (key === undefined) throw invalid(source, 'tls_server_config.key_file', 'missing; set key_file to the PEM private key of the server certificate.');
  checkKeyPair(source, cert, key);

  const ca = await readPem(source, entries, 'client_ca', 'client_ca_file');
  if (ca !== undefined) checkCertificates(source, 'tls_server_config.client_ca_file', ca);
  const clientAuth = readClientAuthType(source, entries.get('client_auth_type'), ca !== undefined);
  const clientAllowedSans = expectStringList(source, 'tls_server_config.client_allowed_sans', entries.get('client_allowed_sans'));
  if (clientAllowedSans.length > 0 && clientAuth !== 'RequireAnyClientCert' && clientAuth !== 'RequireAndVerifyClientCert') {
    throw invalid(source, 'tls_server_config.client_allowed_sans', `needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert, got ${clientAuth}; otherwise a client without a certificate bypasses the check.`);
  }

  const minVersion = readTlsVersion(source, 'min_version', entries.get('min_version'), 'TLSv1.2');
  const maxVersion = readTlsVersion(source, 'max_version', entries.get('max_version'), 'TLSv1.3');
  if (TLS_VERSION_ORDER.indexOf(minVersion) > TLS_VERSION_ORDER.indexOf(maxVersion)) {
    throw invalid(source, 'tls_server_config.min_version', `${minVersion} is newer than max_version ${maxVersion}; lower min_version or raise max_version.`);
  }

  for (const ignored of ['cipher_suites', 'prefer_server_cipher_suites', 'curve_preferences']) {
    if (entries.get(ignored) !== undefined && entries.get(ignored) !== null) {
      source.warnings.push(`tls_server_config.${ignored} in ${source.file} is ignored: the Node.js defaults for cipher suites and curves apply.`);
    }
  }

  return {
    cert,
    key,
    ...(ca === undefined ? {} : { ca }),
    clientAuth,
    requestCert: clientAuth !== 'NoClientCert',
    clientAllowedSans,
    minVersion,
    maxVersion,
  };
}

/** Reads PEM text given inline under `inlineKey` or in the file named under `fileKey`. */
async function readPem(source: Source, entries: Map<string, unknown>, inlineKey: string, fileKey: string): Promise<Buffer | undefined> {
  const inline = expectString(source, `tls_server_config.${inlineKey}`, entries.get(inlineKey));
  const fileName = expectString(source, `tls_server_config.${fileKey}`, entries.get(fileKey));
  if (inline !== undefined && fileName !== undefined) {
    throw invalid(source, `tls_server_config.${inlineKey}`, `set either ${inlineKey} or ${fileKey}, not both.`);
  }
  if (inline !== undefined) return Buffer.from(inline);
  if (fileName === undefined) return undefined;

  const resolved = path.resolve(source.folder, fileName);
  try {
    return await readFile(resolved);
  } catch (error) {
    throw invalid(source, `tls_server_config.${fileKey}`, `file ${resolved} could not be read (${errorCode(error)}); relative names resolve against the folder of the web config file.`, error);
  }
}

/** Checks that the certificate and key parse and belong together, so start-up fails rather than the first handshake. */
function checkKeyPair(source: Source, cert: Buffer, key: Buffer): void {
  checkCertificates(source, 'tls_server_config.cert_file', cert);
  try {
    createPrivateKey(key);
  } catch (error) {
    throw invalid(source, 'tls_server_config.key_file', 'not a PEM private key (or the key is encrypted, which is not supported); give the unencrypted PEM key of the certificate.', error);
  }
  try {
    tls.createSecureContext({ cert, key });
  } catch (error) {
    throw invalid(source, 'tls_server_config.key_file', `does not match the certificate (${errorMessage(error)}); give the key that belongs to cert_file.`, error);
  }
}

function checkCertificates(source: Source, key: string, pem: Buffer): void {
  try {
    new X509Certificate(pem);
  } catch (error) {
    throw invalid(source, key, `not a PEM certificate (${errorMessage(error)}); give a file that starts with -----BEGIN CERTIFICATE-----.`, error);
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function readClientAuthType(source: Source, value: unknown, hasClientCa: boolean): ClientAuthType {
  const text = expectString(source, 'tls_server_config.client_auth_type', value) ?? 'NoClientCert';
  const clientAuth = CLIENT_AUTH_TYPES.find((type) => type === text);
  if (clientAuth === undefined) {
    throw invalid(source, 'tls_server_config.client_auth_type', `${JSON.stringify(text)} is not a client auth type; use one of: ${CLIENT_AUTH_TYPES.join(', ')}.`);
  }

  const verifies = clientAuth === 'VerifyClientCertIfGiven' || clientAuth === 'RequireAndVerifyClientCert';
  if (verifies && !hasClientCa) {
    throw invalid(source, 'tls_server_config.client_ca_file', `missing; client_auth_type ${clientAuth} verifies client certificates against the CA certificates in client_ca_file.`);
  }
  if (hasClientCa && clientAuth === 'NoClientCert') {
    throw invalid(source, 'tls_server_config.client_auth_type', 'is NoClientCert although client_ca_file is set; set client_auth_type to RequireAndVerifyClientCert to verify clients, or remove client_ca_file.');
  }
  return clientAuth;
}

function readTlsVersion(source: Source, key: string, value: unknown, fallback: tls.SecureVersion): tls.SecureVersion {
  const text = expectString(source, `tls_server_config.${key}`, value);
  if (text === undefined) return fallback;

  const version = TLS_VERSIONS.get(text);
  if (version === undefined) {
    throw invalid(source, `tls_server_config.${key}`, `${JSON.stringify(text)} is not a TLS version; use one of: ${[...TLS_VERSIONS.keys()].join(', ')}.`);
  }
  return version;
}

function readBasicAuthUsers(source: Source, value: unknown): ReadonlyMap<string, string> {
  if (value === null || value === undefined) return new Map();
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(source, 'basic_auth_users', `must be a mapping of user name to bcrypt hash, got ${describe(value)}.`);
  }

  const users = new Map<string, string>();
  for (const [user, hash] of Object.entries(value)) {
    const key = `basic_auth_users.${user}`;
    // RFC 7617: the user-id of Basic credentials cannot contain a colon.
    if (user === '' || user.includes(':')) throw invalid(source, key, 'a user name must be non-empty and must not contain a colon.');
    if (typeof hash !== 'string' || !BCRYPT_HASH.test(hash)) {
      throw invalid(source, key, `must be a bcrypt hash ($2a$, $2b$ or $2y$, a two-digit cost and 53 more characters, 60 in all), got ${describe(hash)}; create one with htpasswd -nBC 10 "" | tr -d ':\\n'.`);
    }
    users.set(user, hash);
  }
  return users;
}

function readHttpServerConfig(source: Source, value: unknown): ReadonlyMap<string, string> {
  const entries = expectMapping(source, 'http_server_config', value, HTTP_SERVER_KEYS);

  const http2 = entries.get('http2');
  if (http2 !== undefined && http2 !== null && typeof http2 !== 'boolean') {
    throw invalid(source, 'http_server_config.http2', `must be true or false, got ${describe(http2)}.`);
  }
  if (http2 === true) source.warnings.push(`http_server_config.http2 in ${source.file} is ignored: the exporter serves HTTP/1.1 only.`);

  const headers = new Map<string, string>();
  const given = expectMapping(source, 'http_server_config.headers', entries.get('headers'), [...ALLOWED_HEADERS.keys()]);
  for (const [name, headerValue] of given) {
    const key = `http_server_config.headers.${name}`;
    if (headerValue === null || headerValue === '') continue;
    if (typeof headerValue !== 'string' || /[\r\n]/.test(headerValue)) throw invalid(source, key, `must be a single-line string, got ${describe(headerValue)}.`);

    const accepted = ALLOWED_HEADERS.get(name);
    if (accepted !== undefined && !accepted.includes(headerValue.toLowerCase())) {
      throw invalid(source, key, `${JSON.stringify(headerValue)} is not accepted; use one of: ${accepted.join(', ')}.`);
    }
    headers.set(name, headerValue);
  }
  return headers;
}

function readRateLimit(source: Source, value: unknown): RateLimit | undefined {
  const entries = expectMapping(source, 'rate_limit', value, RATE_LIMIT_KEYS);
  if (entries.size === 0) return undefined;

  const intervalText = entries.get('interval');
  let intervalMs: number | undefined;
  if (intervalText === 0 || intervalText === '0') intervalMs = 0;
  else if (typeof intervalText === 'string') intervalMs = parseDuration(intervalText);
  if (intervalMs === undefined) {
    throw invalid(source, 'rate_limit.interval', `must be a duration such as 100ms or 1s (0 turns the limit off), got ${describe(intervalText)}.`);
  }

  const burst = entries.get('burst');
  if (typeof burst !== 'number' || !Number.isSafeInteger(burst) || burst < 0) {
    throw invalid(source, 'rate_limit.burst', `must be a whole number of requests, 0 or more, got ${describe(burst)}.`);
  }

  // As in the exporter-toolkit, a zero burst or a zero interval turns the limit off.
  if (intervalMs === 0 || burst === 0) return undefined;
  return { intervalMs, burst };
}

// ---------------------------------------------------------------------------
// Basic auth

/** Counters of a {@link CredentialVerifier}, for tests and diagnostics. */
export interface VerifierStats {
  /** bcrypt comparisons run, counting those against the hash for unknown users. */
  bcryptCompares: number;
  cacheHits: number;
  cacheSize: number;
}

/** Checks user names and passwords against bcrypt hashes, caching successes. */
export interface CredentialVerifier {
  verify(user: string, password: string): Promise<boolean>;
  readonly stats: Readonly<VerifierStats>;
  /** bcrypt cost of the hash that passwords of unknown users are compared against. */
  readonly unknownUserCost: number;
}

/** Successful verifications kept in the cache. Each entry is a 44-character HMAC plus map overhead. */
export const DEFAULT_AUTH_CACHE_SIZE = 256;

/**
 * Creates a verifier for the given users. An unknown user's password is
 * compared against a hash of the most common cost among the users, so that
 * the response time does not tell whether a user exists.
 */
export function createCredentialVerifier(users: ReadonlyMap<string, string>, cacheSize = DEFAULT_AUTH_CACHE_SIZE): CredentialVerifier {
  const unknownUserCost = mostCommonCost(users);
  // Hashing a random password makes a hash that no password matches in practice.
  const unknownUserHash = users.size === 0 ? undefined : bcrypt.hashSync(randomBytes(16).toString('hex'), unknownUserCost);
  // The cache keys are HMACs under a key of this process, so the cache contains no password nor a plain digest of one.
  const cacheKeySecret = randomBytes(32);
  const cache = new Map<string, true>();
  const pending = new Map<string, Promise<boolean>>();
  const stats: VerifierStats = { bcryptCompares: 0, cacheHits: 0, cacheSize: 0 };

  async function compare(user: string, password: string, cacheKey: string): Promise<boolean> {
    const hash = users.get(user);
    stats.bcryptCompares += 1;
    const matches = await bcrypt.compare(password, hash ?? unknownUserHash ?? '');
    // bcrypt reads only the first 72 bytes; a longer password must not pass on its prefix alone.
    const valid = hash !== undefined && matches && !bcrypt.truncates(password);
    if (valid) remember(cacheKey);
    return valid;
  }

  function remember(cacheKey: string): void {
    cache.set(cacheKey, true);
    if (cache.size > cacheSize) cache.delete(cache.keys().next().value as string);
    stats.cacheSize = cache.size;
  }

  async function verify(user: string, password: string): Promise<boolean> {
    if (unknownUserHash === undefined) return false;

    const cacheKey = createHmac('sha256', cacheKeySecret).update(`${user.length}:${user}:${password}`).digest('base64');
    if (cache.has(cacheKey)) {
      // Reinsert to keep the most recently used entries at the end, where eviction reaches them last.
      cache.delete(cacheKey);
      cache.set(cacheKey, true);
      stats.cacheHits += 1;
      return true;
    }

    // Concurrent requests with the same credentials share one bcrypt comparison.
    const running = pending.get(cacheKey);
    if (running !== undefined) return running;
    const result = compare(user, password, cacheKey).finally(() => pending.delete(cacheKey));
    pending.set(cacheKey, result);
    return result;
  }

  return { verify, stats, unknownUserCost };
}

function mostCommonCost(users: ReadonlyMap<string, string>): number {
  const counts = new Map<number, number>();
  for (const hash of users.values()) {
    const cost = bcrypt.getRounds(hash);
    counts.set(cost, (counts.get(cost) ?? 0) + 1);
  }

  let best = 10;
  let bestCount = 0;
  for (const [cost, count] of counts) {
    if (count > bestCount || (count === bestCount && cost > best)) {
      best = cost;
      bestCount = count;
    }
  }
  return best;
}

/** Realm sent in the WWW-Authenticate challenge. */
export const BASIC_AUTH_REALM = 'ngrok-sessions-exporter';

/**
 * Returns middleware that requires HTTP basic auth (RFC 7617) from the users
 * of the web config, and passes every request through when there are none.
 * Mount routes that must stay open, such as health checks, before it.
 */
export function basicAuth(webConfig: WebConfig, verifier?: CredentialVerifier): RequestHandler {
  if (webConfig.basicAuthUsers.size === 0) return (_request, _response, next) => next();
  const checker = verifier ?? createCredentialVerifier(webConfig.basicAuthUsers);

  return (request: Request, response: Response, next: NextFunction): void => {
    const credentials = parseBasicCredentials(request.headers.authorization);
    if (credentials === undefined) {
      sendChallenge(response);
      return;
    }

    checker.verify(credentials.user, credentials.password).then((valid) => (valid ? next() : sendChallenge(response)), next);
  };
}

/** Decodes `Basic <base64(user:password)>`, or returns undefined for a missing or malformed header. */
export function parseBasicCredentials(header: string | undefined): { user: string; password: string } | undefined {
  if (header === undefined) return undefined;

  const match = /^basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header);
  if (match === null) return undefined;

  const decoded = Buffer.from(match[1] ?? '', 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function sendChallenge(response: Response): void {
  response
    .status(401)
    .set('WWW-Authenticate', `Basic realm="${BASIC_AUTH_REALM}", charset="UTF-8"`)
    .type('text/plain')
    .send('Unauthorized\n');
}

// ---------------------------------------------------------------------------
// HTTP server

/** Connection limits and timeouts of the listener, in milliseconds where the name says Ms. */
export interface ServerLimits {
  /** Time a client has to send all request headers. */
  headersTimeoutMs: number;
  /** Time a client has to send the whole request. */
  requestTimeoutMs: number;
  /** Idle time after a response before a keep-alive connection is closed. */
  keepAliveTimeoutMs: number;
  /** Socket inactivity (neither side sending) after which the connection is closed, which also stops slow readers. */
  socketTimeoutMs: number;
  /** How often Node.js checks the headers and request timeouts. */
  connectionsCheckingIntervalMs: number;
  /** Time a client has to finish the TLS handshake. */
  tlsHandshakeTimeoutMs: number;
  maxHeadersCount: number;
  maxHeaderSizeBytes: number;
  /** Open connections beyond which new ones are closed at once. */
  maxConnections: number;
}

/**
 * Limits for a scrape target: requests are small GETs, and a scrape waits at
 * most the Prometheus scrape timeout, so a minute of silence means a stuck
 * or hostile client.
 */
export const DEFAULT_SERVER_LIMITS: Readonly<ServerLimits> = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 65_000,
  socketTimeoutMs: 120_000,
  connectionsCheckingIntervalMs: 1_000,
  tlsHandshakeTimeoutMs: 10_000,
  maxHeadersCount: 100,
  maxHeaderSizeBytes: 16_384,
  maxConnections: 512,
});

/**
 * Creates the HTTP or, with TLS in the web config, HTTPS server for an app,
 * with timeouts and size limits so that slow or idle clients cannot hold
 * connections, plus the response headers and rate limit of the web config.
 * The caller mounts {@link basicAuth} in the app and calls `listen`.
 */
export function createHttpServer(app: Express, webConfig: WebConfig = EMPTY_WEB_CONFIG, limits: Readonly<ServerLimits> = DEFAULT_SERVER_LIMITS): http.Server | https.Server {
  const listener = withResponsePolicy(app, webConfig);
  const options: http.ServerOptions = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: limits.connectionsCheckingIntervalMs,
    maxHeaderSize: limits.maxHeaderSizeBytes,
  };

  const server = webConfig.tls === undefined ? http.createServer(options, listener) : createHttpsServer(options, webConfig.tls, limits, listener);
  server.maxHeadersCount = limits.maxHeadersCount;
  server.maxConnections = limits.maxConnections;
  server.setTimeout(limits.socketTimeoutMs, (socket) => socket.destroy());
  return server;
}

function createHttpsServer(options: http.ServerOptions, settings: TlsSettings, limits: Readonly<ServerLimits>, listener: http.RequestListener): https.Server {
  const server = https.createServer(
    {
      ...options,
      cert: settings.cert,
      key: settings.key,
      ...(settings.ca === undefined ? {} : { ca: settings.ca }),
      requestCert: settings.requestCert,
      // Only RequireAndVerifyClientCert fails the handshake inside OpenSSL; the other policies are checked below.
      rejectUnauthorized: settings.clientAuth === 'RequireAndVerifyClientCert',
      minVersion: settings.minVersion,
      maxVersion: settings.maxVersion,
      handshakeTimeout: limits.tlsHandshakeTimeoutMs,
    },
    listener,
  );

  server.on('secureConnection', (socket: tls.TLSSocket) => {
    if (!clientCertificateAccepted(socket, settings)) socket.destroy();
  });
  return server;
}

/** Applies the client_auth_type and client_allowed_sans rules that OpenSSL does not enforce by itself. */
function clientCertificateAccepted(socket: tls.TLSSocket, settings: TlsSettings): boolean {
  const certificate = socket.getPeerCertificate();
  const given = certificate !== null && Object.keys(certificate).length > 0;

  if (settings.clientAuth === 'RequireAnyClientCert' && !given) return false;
  if (settings.clientAuth === 'VerifyClientCertIfGiven' && given && !socket.authorized) return false;
  if (settings.clientAllowedSans.length === 0) return true;

  const sans = given ? parseSubjectAltNames(certificate.subjectaltname ?? '') : [];
  const allowed = new Set(settings.clientAllowedSans.map(normalizeSan));
  return sans.some((san) => allowed.has(san));
}

/**
 * Splits Node.js's subjectaltname text (`DNS:a, IP Address:127.0.0.1,
 * URI:spiffe://x, email:a@b`) into values. Node.js quotes a value that
 * contains a comma or a quote as a JSON string.
 */
export function parseSubjectAltNames(text: string): string[] {
  const values: string[] = [];
  const entry = /(?:DNS|IP Address|email|URI):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (const match of text.matchAll(entry)) {
    const raw = match[1] ?? '';
    values.push(normalizeSan(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw));
  }
  return values;
}

/** Writes IPv6 addresses in one form, since Node.js prints them in full and configs use the short form. */
function normalizeSan(value: string): string {
  if (!isIPv6(value)) return value;
  return new URL(`http://[${value}]/`).hostname.slice(1, -1);
}

/** Wraps the app so that each response carries the configured headers and requests over the rate limit get 429. */
function withResponsePolicy(app: Express, webConfig: WebConfig): http.RequestListener {
  const takeToken = webConfig.rateLimit === undefined ? () => true : createTokenBucket(webConfig.rateLimit);
  const headers = [...webConfig.headers];

  return (request, response) => {
    for (const [name, value] of headers) response.setHeader(name, value);
    if (!takeToken()) {
      response.writeHead(429, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Too Many Requests\n');
      return;
    }
    app(request, response);
  };
}

/** Returns a function that takes one token if there is one; tokens refill one per interval up to the burst. */
function createTokenBucket({ intervalMs, burst }: RateLimit, now: () => number = performance.now.bind(performance)): () => boolean {
  let tokens = burst;
  let updatedAt = now();

  return () => {
    const current = now();
    tokens = Math.min(burst, tokens + (current - updatedAt) / intervalMs);
    updatedAt = current;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
}
