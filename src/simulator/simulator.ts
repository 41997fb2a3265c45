/**
 * Start-up of the simulator: option validation, the account (explicit, or synthetic with
 * optional churn) and the public handle that tests, demo mode and the benchmark use.
 */
import { ExporterError } from '../errors.js';
import { Account, expireShareSoon, isActiveAt, type ChurnPlan } from './account.js';
import type { Fault } from './faults.js';
import { DEFAULT_EXPIRED_RETENTION_MS, DEFAULT_SEED, SessionFactory, generateSessions } from './generate.js';
import { Random } from './random.js';
import { RollingWindowLimit } from './rate-limit.js';
import { SimulatorServer } from './server.js';
import type { SimulatorStats } from './stats.js';
import type { AppSession } from './types.js';

const HOUR_MS = 3_600_000;

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
