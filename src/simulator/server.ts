/**
 * HTTP server that serves `GET /app/sessions` like the ngrok API: bearer authentication,
 * the `Ngrok-Version` header, `limit` and `before_id` paging with absolute
 * `next_page_uri` links, the account-wide rate limit and ngrok's error bodies.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { ExporterError } from '../errors.js';
import { Account, expireShareSoon, isActiveAt, type ChurnPlan } from './account.js';
import {
  FaultQueue,
  pageFaultReply,
  respondFaultReply,
  type Fault,
  type FaultRequest,
} from './faults.js';
import { DEFAULT_EXPIRED_RETENTION_MS, DEFAULT_SEED, SessionFactory, generateSessions } from './generate.js';
import { createOperationId } from './ids.js';
import { Random } from './random.js';
import { RollingWindowLimit } from './rate-limit.js';
import {
  SUPPORTED_API_VERSION,
  internalError,
  invalidCredential,
  invalidPageSize,
  jsonTextReply,
  methodNotAllowed,
  missingApiVersion,
  missingAuthorization,
  notFound,
  rateLimited,
  unparsableAuthorization,
  unsupportedApiVersion,
  type Reply,
} from './responses.js';
import type { AppSession, SessionPage } from './types.js';

const SESSIONS_PATH = '/app/sessions';
const MAX_PAGE_SIZE = 100;
const HOUR_MS = 3_600_000;
/** Number of recent requests kept in `requestTimesMs` and `requestLog`, so a long demo run stays bounded. */
const MAX_RECORDED_REQUESTS = 10_000;
/** ngrok API keys have the form FIRSTPART_SECONDPART (ngrok error reference, ERR_NGROK_207). */
const WELL_FORMED_API_KEY = /^[0-9A-Za-z]+_[0-9A-Za-z]+$/;

/** Churn settings: sessions expire, long-expired ones are purged and new ones arrive as the clock advances. */
export interface ChurnOptions {
  /** Share of the active synthetic sessions whose expiry moves into the first hour (default 0.2). */
  expireShare?: number;
  /** New sessions per minute (default: the expiring share spread over an hour, at least 1). */
  arrivalsPerMinute?: number;
  /** Time an expired session stays listed before it disappears, in ms (default 2 h). */
  expiredRetentionMs?: number;
}

/** Options of {@link startSimulator}. */
export interface SimulatorOptions {
  /** Loopback address to listen on: 127.0.0.1 (default), ::1 or localhost. */
  host?: string;
  /** TCP port (default 0: any free port). */
  port?: number;
  /** The API key that the server accepts as `Authorization: Bearer <key>`. */
  apiKey: string;
  /** Explicit account contents, copied as JSON. Without it the account is synthetic. */
  sessions?: readonly AppSession[];
  /** Number of synthetic sessions (default 250). */
  syntheticSessions?: number;
  /** Seed of the synthetic account and the churn schedule (default 1). */
  seed?: number;
  /** Clock in ms (default `Date.now`), so tests control time. */
  now?: () => number;
  /** Requests admitted per rolling window (default 120), or null to switch the limit off. */
  requestsPerMinute?: number | null;
  /** Length of the rate-limit window in ms (default 60,000). */
  rateLimitWindowMs?: number;
  /** Fixed delay before each response, in ms (default 0). */
  latencyMs?: number;
  /** Sessions expire and arrive as `now` advances (default false). */
  churn?: boolean | ChurnOptions;
  /**
   * Sets `next_page_uri` on a full last page too, so that a walk ends with an empty page
   * (default false). The ngrok Go client stops on empty pages, which suggests ngrok does this.
   */
  trailingEmptyPage?: boolean;
}

/** One request as the simulator recorded it. */
export interface RequestRecord {
  /** Clock reading at arrival, in ms. */
  atMs: number;
  method: string;
  /** Path and query as received. */
  url: string;
  /** Response status, `destroyed` when the connection was destroyed, undefined while in progress. */
  status?: number | 'destroyed';
  userAgent?: string;
}

/** Request counters. `requestTimesMs` and `requestLog` keep the latest 10,000 requests. */
export interface SimulatorStats {
  /** Number of requests that reached the server. */
  readonly requests: number;
  /** Clock reading at the arrival of each request, in ms. */
  readonly requestTimesMs: readonly number[];
  /** Responses by status (`"200"`, `"429"` ...) plus `"destroyed"` for destroyed connections. */
  readonly byStatus: Readonly<Record<string, number>>;
  /** Highest number of requests in progress at the same time. */
  readonly maxInFlight: number;
  readonly requestLog: readonly RequestRecord[];
  /** Clears every counter. The rate-limit window is separate (see `resetRateLimit`). */
  reset(): void;
}

/** Contents of the simulated account. Sessions go in and come out as JSON copies. */
export interface SimulatorAccount {
  /** Returns a copy of every listed session, newest first. */
  sessions(): AppSession[];
  /** Counts listed sessions whose `expires_at` is later than `atMs` (default: now) or absent, null or invalid. */
  activeCount(atMs?: number): number;
  /** Counts listed sessions whose `expires_at` is at or before `atMs` (default: now). */
  expiredCount(atMs?: number): number;
  /** Counts distinct `application_user` ids with a session active at `atMs` (default: now). */
  activeUserCount(atMs?: number): number;
  /** Number of listed sessions. */
  listedCount(): number;
  /** Replaces every session. */
  set(sessions: readonly AppSession[]): void;
  /** Adds sessions at the positions their ids sort to. */
  add(...sessions: AppSession[]): void;
  /** Removes a session and reports whether it was listed. */
  remove(id: string): boolean;
}

/** A running simulator. */
export interface Simulator {
  /** Origin such as `http://127.0.0.1:40123`, without a trailing slash. */
  readonly url: string;
  readonly account: SimulatorAccount;
  readonly stats: SimulatorStats;
  /** Queues a one-shot fault for the next matching request(s). */
  injectFault(fault: Fault): void;
  /** Drops every queued fault. */
  clearFaults(): void;
  /** Number of requests the queued faults still apply to. */
  readonly pendingFaults: number;
  /** Changes the fixed delay before each response, in ms. */
  setLatency(ms: number): void;
  /** Empties the rate-limit window. */
  resetRateLimit(): void;
  /** Stops the server, drops open connections and pending delayed responses. */
  close(): Promise<void>;
}

function invalidOption(message: string): ExporterError {
  return new ExporterError('INVALID_SIMULATOR_OPTION', message);
}

function requireNumber(name: string, value: number, min: number, max = Infinity, integer = false): number {
  const valid = Number.isFinite(value) && value >= min && value <= max && (!integer || Number.isInteger(value));
  if (!valid) {
    const bound = max === Infinity ? `at least ${min}` : `between ${min} and ${max}`;
    throw invalidOption(`simulator option ${name} must be ${integer ? 'an integer' : 'a number'} ${bound}, got ${value}`);
  }
  return value;
}

function resolveHost(host: string | undefined): string {
  const resolved = host === undefined || host === 'localhost' ? '127.0.0.1' : host;
  if (resolved !== '127.0.0.1' && resolved !== '::1') {
    throw invalidOption(`simulator option host must be a loopback address (127.0.0.1, ::1 or localhost), got ${host}`);
  }
  return resolved;
}

interface ResolvedChurn {
  expireShare: number;
  arrivalsPerMinute: number | undefined;
  expiredRetentionMs: number;
}

function resolveChurn(churn: SimulatorOptions['churn']): ResolvedChurn | null {
  if (churn === undefined || churn === false) {
    return null;
  }
  const options = churn === true ? {} : churn;
  if (options.arrivalsPerMinute !== undefined) {
    requireNumber('churn.arrivalsPerMinute', options.arrivalsPerMinute, 0);
  }
  return {
    expireShare: requireNumber('churn.expireShare', options.expireShare ?? 0.2, 0, 1),
    arrivalsPerMinute: options.arrivalsPerMinute,
    expiredRetentionMs: requireNumber('churn.expiredRetentionMs', options.expiredRetentionMs ?? DEFAULT_EXPIRED_RETENTION_MS, 0),
  };
}

/** Compares two secrets in constant time, whatever their lengths. */
function secretsEqual(a: string, b: string): boolean {
  const digestA = createHash('sha256').update(a).digest();
  const digestB = createHash('sha256').update(b).digest();
  return timingSafeEqual(digestA, digestB);
}

/** Parses `limit`: the page size, or the invalid value and whether it was an integer at all. */
function parsePageSize(raw: string | null): { pageSize: number } | { invalid: string; isNumber: boolean } {
  if (raw === null || raw === '') {
    return { pageSize: MAX_PAGE_SIZE };
  }
  if (!/^[+-]?\d+$/.test(raw)) {
    return { invalid: raw, isNumber: false };
  }
  const pageSize = Number(raw);
  return pageSize >= 1 && pageSize <= MAX_PAGE_SIZE ? { pageSize } : { invalid: raw, isNumber: true };
}

class StatsRecorder implements SimulatorStats {
  requests = 0;
  requestTimesMs: number[] = [];
  byStatus: Record<string, number> = {};
  maxInFlight = 0;
  requestLog: RequestRecord[] = [];
  inFlight = 0;

  recordArrival(atMs: number, request: IncomingMessage): RequestRecord {
    const record: RequestRecord = { atMs, method: request.method ?? '', url: request.url ?? '' };
    if (typeof request.headers['user-agent'] === 'string') {
      record.userAgent = request.headers['user-agent'];
    }
    this.requests += 1;
    this.requestTimesMs.push(atMs);
    this.requestLog.push(record);
    if (this.requestLog.length > 2 * MAX_RECORDED_REQUESTS) {
      this.requestTimesMs = this.requestTimesMs.slice(-MAX_RECORDED_REQUESTS);
      this.requestLog = this.requestLog.slice(-MAX_RECORDED_REQUESTS);
    }
    return record;
  }

  recordStatus(record: RequestRecord, status: number | 'destroyed'): void {
    record.status = status;
    const key = String(status);
    this.byStatus[key] = (this.byStatus[key] ?? 0) + 1;
  }

  reset(): void {
    this.requests = 0;
    this.requestTimesMs = [];
    this.byStatus = {};
    this.maxInFlight = this.inFlight;
    this.requestLog = [];
  }
}

interface PendingDelay {
  timer: NodeJS.Timeout;
  resolve: () => void;
}

interface ServerSettings {
  apiKey: string;
  clock: () => number;
  rateLimit: RollingWindowLimit | null;
  latencyMs: number;
  trailingEmptyPage: boolean;
}

/** The request handling of one simulator instance. */
class SimulatorServer {
  readonly server: Server;
  readonly stats = new StatsRecorder();
  readonly faults = new FaultQueue();
  origin = '';
  latencyMs: number;
  private closing = false;
  private readonly delays = new Set<PendingDelay>();

  constructor(
    private readonly account: Account,
    private readonly settings: ServerSettings,
  ) {
    this.latencyMs = settings.latencyMs;
    this.server = createServer((request, response) => {
      void this.handle(request, response);
    });
  }

  async listen(host: string, port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as AddressInfo;
    const hostInUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.origin = `http://${hostInUrl}:${address.port}`;
  }

  resetRateLimit(): void {
    this.settings.rateLimit?.reset();
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const delay of this.delays) {
      clearTimeout(delay.timer);
      delay.resolve();
    }
    this.delays.clear();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const arrivalMs = this.settings.clock();
    const operationId = createOperationId();
    const record = this.stats.recordArrival(arrivalMs, request);
    this.stats.inFlight += 1;
    this.stats.maxInFlight = Math.max(this.stats.maxInFlight, this.stats.inFlight);
    request.resume();

    try {
      const url = new URL(request.url ?? '/', 'http://simulator.invalid');
      const faultRequest: FaultRequest = { method: request.method ?? '', path: url.pathname, query: url.searchParams };
      const fault = this.faults.take('request', faultRequest);
      if (fault?.kind === 'destroy' && fault.afterBytes === undefined) {
        this.stats.recordStatus(record, 'destroyed');
        request.socket.destroy();
        return;
      }

      const reply =
        fault?.kind === 'respond'
          ? respondFaultReply(fault, operationId)
          : this.answer(request, url, faultRequest, arrivalMs, operationId);

      const delayMs = this.latencyMs + (fault?.kind === 'delay' ? fault.delayMs : 0);
      if (delayMs > 0) {
        await this.sleep(delayMs);
      }
      if (this.closing) {
        this.stats.recordStatus(record, 'destroyed');
        response.destroy();
        return;
      }

      this.stats.recordStatus(record, fault?.kind === 'destroy' ? 'destroyed' : reply.status);
      this.send(response, reply, operationId, fault?.kind === 'destroy' ? fault.afterBytes : undefined);
    } catch {
      if (!response.headersSent) {
        this.stats.recordStatus(record, 500);
        this.send(response, internalError(operationId), operationId, undefined);
      }
    } finally {
      this.stats.inFlight -= 1;
    }
  }

  /**
   * Builds the API's response to a request, checking rate limit, route, credentials,
   * version and query in that order.
   * NOTE: ngrok does not document the order of its own checks.
   */
  private answer(request: IncomingMessage, url: URL, faultRequest: FaultRequest, nowMs: number, operationId: string): Reply {
    const { rateLimit } = this.settings;
    if (rateLimit !== null && !rateLimit.tryAdmit(nowMs)) {
      return rateLimited(rateLimit.maxRequests, rateLimit.windowMs, operationId);
    }
    if (url.pathname !== SESSIONS_PATH) {
      return notFound(operationId);
    }
    if (request.method !== 'GET') {
      return methodNotAllowed(operationId);
    }

    const authFailure = this.checkAuthorization(request.headers.authorization, operationId);
    if (authFailure !== undefined) {
      return authFailure;
    }
    const version = request.headers['ngrok-version'];
    if (version === undefined || version === '') {
      return missingApiVersion(operationId);
    }
    if (version !== SUPPORTED_API_VERSION) {
      return unsupportedApiVersion(String(version), operationId);
    }

    const pageSize = parsePageSize(url.searchParams.get('limit'));
    if ('invalid' in pageSize) {
      return invalidPageSize(pageSize.invalid, pageSize.isNumber, MAX_PAGE_SIZE, operationId);
    }
    const beforeId = url.searchParams.get('before_id') || undefined;

    this.account.advanceTo(nowMs);
    const reply = jsonTextReply(200, this.pageJson(beforeId, pageSize.pageSize));
    const pageFault = this.faults.take('page', faultRequest);
    if (pageFault?.kind === 'corrupt' || pageFault?.kind === 'rewrite') {
      return pageFaultReply(pageFault, reply, JSON.parse(reply.body) as SessionPage);
    }
    return reply;
  }

  /** Returns the 401 reply for a missing, unparsable or wrong credential, or undefined when it is the key. */
  private checkAuthorization(header: string | undefined, operationId: string): Reply | undefined {
    if (header === undefined || header.trim() === '') {
      return missingAuthorization(operationId);
    }
    const match = /^(Bearer|Basic)\s+(\S+)\s*$/i.exec(header);
    if (match === null) {
      return unparsableAuthorization(header, operationId);
    }

    let credential = match[2] as string;
    if ((match[1] as string).toLowerCase() === 'basic') {
      // Basic authentication carries the key as the user name, with an empty password.
      const decoded = Buffer.from(credential, 'base64').toString('utf8');
      credential = decoded.split(':')[0] ?? '';
    }
    if (secretsEqual(credential, this.settings.apiKey)) {
      return undefined;
    }
    return invalidCredential(credential, WELL_FORMED_API_KEY.test(credential), operationId);
  }

  /** Returns the JSON text of a page, joined from the stored JSON of its sessions. */
  private pageJson(beforeId: string | undefined, pageSize: number): string {
    const slice = this.account.page(beforeId, pageSize);
    const isFullLastPage = this.settings.trailingEmptyPage && slice.sessionsJson.length === pageSize;
    const nextPageUri =
      slice.lastId !== undefined && (slice.hasMore || isFullLastPage) ? this.nextPageUri(slice.lastId, pageSize) : null;
    return (
      `{"application_sessions":[${slice.sessionsJson.join(',')}],` +
      `"uri":${JSON.stringify(this.origin + SESSIONS_PATH)},"next_page_uri":${JSON.stringify(nextPageUri)}}`
    );
  }

  /**
   * Builds the absolute link to the page after `lastId`. ngrok varies the order of the query
   * parameters, so the order here depends on the id; clients must follow the link as given.
   */
  private nextPageUri(lastId: string, pageSize: number): string {
    const beforeId = `before_id=${encodeURIComponent(lastId)}`;
    const limit = `limit=${pageSize}`;
    const query = lastId.charCodeAt(lastId.length - 1) % 2 === 0 ? `${beforeId}&${limit}` : `${limit}&${beforeId}`;
    return `${this.origin}${SESSIONS_PATH}?${query}`;
  }

  private send(response: ServerResponse, reply: Reply, operationId: string, afterBytes: number | undefined): void {
    const body = Buffer.from(reply.body, 'utf8');
    response.writeHead(reply.status, {
      'ngrok-operation-id': operationId,
      ...reply.headers,
      'content-length': String(body.length),
    });
    if (afterBytes === undefined) {
      response.end(body);
      return;
    }
    response.write(body.subarray(0, afterBytes), () => response.destroy());
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const delay: PendingDelay = {
        timer: setTimeout(() => {
          this.delays.delete(delay);
          resolve();
        }, ms),
        resolve,
      };
      this.delays.add(delay);
    });
  }
}

/** Builds the account: the given sessions, or a synthetic one, with the churn schedule if enabled. */
function createAccount(options: SimulatorOptions, clock: () => number): Account {
  const nowMs = clock();
  const seed = options.seed ?? DEFAULT_SEED;
  const churn = resolveChurn(options.churn);
  const expiredRetentionMs = churn?.expiredRetentionMs ?? DEFAULT_EXPIRED_RETENTION_MS;

  let sessions: AppSession[];
  if (options.sessions !== undefined) {
    sessions = [...options.sessions];
  } else {
    const count = requireNumber('syntheticSessions', options.syntheticSessions ?? 250, 0, 10_000_000, true);
    sessions = generateSessions(count, { seed, nowMs, expiredRetentionMs });
    if (churn !== null) {
      expireShareSoon(sessions, churn.expireShare, nowMs, HOUR_MS, new Random(seed).fork(2));
    }
  }
  if (churn === null) {
    return new Account(sessions, null);
  }

  const activeCount = sessions.filter((session) => isActiveAt(session, nowMs)).length;
  const arrivalsPerMinute = churn.arrivalsPerMinute ?? Math.max(1, (activeCount * churn.expireShare) / 60);
  const factory = new SessionFactory(seed, sessions.length, nowMs);
  const plan: ChurnPlan = {
    factory,
    random: factory.stream(3),
    startMs: nowMs,
    arrivalIntervalMs: arrivalsPerMinute > 0 ? 60_000 / arrivalsPerMinute : Infinity,
    expiredRetentionMs,
  };
  return new Account(sessions, plan);
}

/**
 * Starts a simulator of the ngrok Application Sessions API on a loopback port.
 * Throws ExporterError `INVALID_SIMULATOR_OPTION` for an invalid option.
 */
export async function startSimulator(options: SimulatorOptions): Promise<Simulator> {
  if (typeof options.apiKey !== 'string' || options.apiKey === '') {
    throw invalidOption('simulator option apiKey must be a non-empty string');
  }
  const host = resolveHost(options.host);
  const port = requireNumber('port', options.port ?? 0, 0, 65_535, true);
  const windowMs = requireNumber('rateLimitWindowMs', options.rateLimitWindowMs ?? 60_000, 1);
  const requestsPerMinute = options.requestsPerMinute === undefined ? 120 : options.requestsPerMinute;
  if (requestsPerMinute !== null) {
    requireNumber('requestsPerMinute', requestsPerMinute, 1, Infinity, true);
  }
  const clock = options.now ?? Date.now;

  const account = createAccount(options, clock);
  const server = new SimulatorServer(account, {
    apiKey: options.apiKey,
    clock,
    rateLimit: requestsPerMinute === null ? null : new RollingWindowLimit(requestsPerMinute, windowMs),
    latencyMs: requireNumber('latencyMs', options.latencyMs ?? 0, 0),
    trailingEmptyPage: options.trailingEmptyPage ?? false,
  });
  await server.listen(host, port);

  const currentAccount = (): Account => {
    account.advanceTo(clock());
    return account;
  };
  return {
    url: server.origin,
    account: {
      sessions: () => currentAccount().list(),
      activeCount: (atMs) => currentAccount().countActive(atMs ?? clock()),
      expiredCount: (atMs) => currentAccount().countExpired(atMs ?? clock()),
      activeUserCount: (atMs) => currentAccount().countActiveUsers(atMs ?? clock()),
      listedCount: () => currentAccount().size,
      set: (sessions) => account.replace(sessions),
      add: (...sessions) => account.add(sessions),
      remove: (id) => account.remove(id),
    },
    stats: server.stats,
    injectFault: (fault) => server.faults.push(fault),
    clearFaults: () => server.faults.clear(),
    get pendingFaults() {
      return server.faults.pending;
    },
    setLatency: (ms) => {
      server.latencyMs = requireNumber('latencyMs', ms, 0);
    },
    resetRateLimit: () => server.resetRateLimit(),
    close: () => server.close(),
  };
}
