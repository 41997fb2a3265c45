/**
 * Synthetic application sessions that look like the traffic of a real account. Countries
 * and browsers are skewed, a few endpoints and legacy edges share the sessions, and users
 * hold several sessions each. Some sessions are expired but still listed, and some carry
 * explicit nulls, absent keys or unknown fields. The same seed and clock always give the
 * same sessions.
 */
import {
  CLIENT_PROFILES,
  type ClientProfile,
  COUNTRIES,
  EDGE_SESSIONS_WEIGHT,
  EDGE_TEMPLATES,
  ENDPOINT_TEMPLATES,
  IPV4_DOCUMENTATION_PREFIXES,
  IPV6_DOCUMENTATION_PREFIX,
  LOCATION_RADII_KM,
  UNRECOGNISED_CLIENT_SHARE,
  UNRECOGNISED_USER_AGENTS,
  reportedBrowserVersion,
} from './catalog.js';
import { SESSION_ID_PREFIX, createId } from './ids.js';
import { Random, WeightedChoice } from './random.js';
import type { AppSession, BrowserSession, Ref, SessionLocation, UserAgent } from './types.js';

/** Origin used in the `uri` fields of generated sessions and references. */
export const API_ORIGIN = 'https://api.ngrok.com';

/** Default time an expired session stays listed before ngrok drops it (an estimate: ngrok documents none). */
export const DEFAULT_EXPIRED_RETENTION_MS = 2 * 3_600_000;

const DAY_MS = 86_400_000;
const MEAN_IDLE_MS = 20 * 60_000;
const SESSIONS_PER_USER = 4;
/** Seed used when none is given. */
export const DEFAULT_SEED = 1;

/** Endpoint or legacy edge route that a session was opened on. */
interface SessionTarget {
  publicUrl: string;
  sessionLifetimeMs: number;
  endpoint: Ref;
  edge: Ref | null;
  route: Ref | null;
}

/** Options of {@link generateSessions}. */
export interface GenerateOptions {
  /** Seed of the pseudo-random generator (default 1). */
  seed?: number;
  /** Clock reading in ms that the account is generated for (default `Date.now()`). */
  nowMs?: number;
  /** Time an expired session stays listed, in ms (default 2 h). */
  expiredRetentionMs?: number;
}

function pad2(value: number): string {
  return value < 10 ? `0${value}` : String(value);
}

/**
 * Formats a time in ms as RFC 3339 UTC without fractional seconds, such as
 * `2025-11-18T09:42:17Z`, for years 0 to 9999. The calendar arithmetic (Howard Hinnant's
 * days-to-civil algorithm) avoids creating a Date object per call.
 */
export function formatTime(timeMs: number): string {
  const totalSeconds = Math.floor(timeMs / 1000);
  const days = Math.floor(totalSeconds / 86_400);
  const secondOfDay = totalSeconds - days * 86_400;

  const shifted = days + 719_468;
  const era = Math.floor(shifted / 146_097);
  const dayOfEra = shifted - era * 146_097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthIndex = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * monthIndex + 2) / 5) + 1;
  const month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);

  const hour = Math.floor(secondOfDay / 3600);
  const minute = Math.floor((secondOfDay % 3600) / 60);
  const second = secondOfDay % 60;
  return `${String(year).padStart(4, '0')}-${pad2(month)}-${pad2(day)}T${pad2(hour)}:${pad2(minute)}:${pad2(second)}Z`;
}

function floorToSecond(timeMs: number): number {
  return Math.floor(timeMs / 1000) * 1000;
}

function roundTo4Decimals(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}

/**
 * Sets `target[key]` unless `value` is undefined, so that the key is absent. Deleting keys
 * instead would switch V8 objects to slow dictionary mode.
 */
function setUnlessUndefined<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) {
    target[key] = value;
  }
}

/**
 * Creates sessions for one simulated account: the endpoints, edges and application
 * users are fixed by the seed, and each session draws from a caller-supplied stream.
 */
export class SessionFactory {
  private readonly seed: number;
  private readonly users: Ref[];
  private readonly targets: WeightedChoice<SessionTarget>;
  /** User-Agent strings by profile and versions, so that 100,000 sessions share a few hundred strings. */
  private readonly userAgents = new Map<ClientProfile, Map<string, string>>();

  constructor(seed: number, accountSize: number, nowMs: number) {
    this.seed = seed;
    const random = this.stream(0);
    this.users = this.createUsers(random, Math.max(1, Math.ceil(accountSize / SESSIONS_PER_USER)), nowMs);
    this.targets = this.createTargets(random, nowMs);
  }

  /** Creates an independent generator for one purpose, numbered by `stream`. */
  stream(stream: number): Random {
    return new Random(this.seed).fork(stream);
  }

  /** Creates a session as an account lists it at `nowMs`: active, or expired within the retention time. */
  createListedSession(random: Random, nowMs: number, expiredRetentionMs: number): AppSession {
    const target = this.targets.pick(random);
    const lifetimeMs = target.sessionLifetimeMs;
    const createdMs = floorToSecond(nowMs - random.between(1000, lifetimeMs + expiredRetentionMs));
    const expiresMs = createdMs + lifetimeMs;
    const lastActiveMs =
      expiresMs <= nowMs
        ? createdMs + random.float() * lifetimeMs
        : Math.max(createdMs, nowMs - random.exponential(MEAN_IDLE_MS));
    return this.createSession(random, target, createdMs, floorToSecond(lastActiveMs), expiresMs);
  }

  /** Creates a session that a browser opens at `createdMs`. */
  createNewSession(random: Random, createdMs: number): AppSession {
    const target = this.targets.pick(random);
    const created = floorToSecond(createdMs);
    return this.createSession(random, target, created, created, created + target.sessionLifetimeMs);
  }

  private createUsers(random: Random, count: number, nowMs: number): Ref[] {
    const users: Ref[] = [];
    for (let i = 0; i < count; i++) {
      const id = createId('au_', nowMs - random.between(30 * DAY_MS, 400 * DAY_MS), random);
      users.push({ id, uri: `${API_ORIGIN}/app/users/${id}` });
    }
    return users;
  }

  private createTargets(random: Random, nowMs: number): WeightedChoice<SessionTarget> {
    const endpointRef = (createdMs: number): Ref => {
      const id = createId('ep_', createdMs, random);
      return { id, uri: `${API_ORIGIN}/endpoints/${id}` };
    };
    const entries: Array<[SessionTarget, number]> = [];

    for (const template of ENDPOINT_TEMPLATES) {
      const target: SessionTarget = {
        publicUrl: template.publicUrl,
        sessionLifetimeMs: template.sessionLifetimeMs,
        endpoint: endpointRef(nowMs - random.between(20 * DAY_MS, 200 * DAY_MS)),
        edge: null,
        route: null,
      };
      entries.push([target, template.weight]);
    }

    const routeCount = EDGE_TEMPLATES.reduce((sum, edge) => sum + edge.routeCount, 0);
    for (const template of EDGE_TEMPLATES) {
      const edgeCreatedMs = nowMs - random.between(400 * DAY_MS, 700 * DAY_MS);
      const edgeId = createId('edghts_', edgeCreatedMs, random);
      const edge: Ref = { id: edgeId, uri: `${API_ORIGIN}/edges/https/${edgeId}` };
      const endpoint = endpointRef(edgeCreatedMs);
      for (let i = 0; i < template.routeCount; i++) {
        const routeId = createId('edghtsrt_', edgeCreatedMs + i * 60_000, random);
        const route: Ref = { id: routeId, uri: `${API_ORIGIN}/edges/https/${edgeId}/routes/${routeId}` };
        const target = { publicUrl: template.publicUrl, sessionLifetimeMs: template.sessionLifetimeMs, endpoint, edge, route };
        entries.push([target, EDGE_SESSIONS_WEIGHT / routeCount]);
      }
    }
    return new WeightedChoice(entries);
  }

  private createSession(
    random: Random,
    target: SessionTarget,
    createdMs: number,
    lastActiveMs: number,
    expiresMs: number,
  ): AppSession {
    const id = createId(SESSION_ID_PREFIX, createdMs, random);
    const isEdgeSession = target.edge !== null;
    // Keys are assigned in the order of the API's JSON, and absent ones are skipped.
    // The cast is needed because browser_session, the other required key, follows public_url.
    const session = { id, uri: `${API_ORIGIN}/app/sessions/${id}` } as AppSession;
    setUnlessUndefined(session, 'public_url', random.chance(0.01) ? undefined : target.publicUrl);
    session.browser_session = this.createBrowserSession(random);
    setUnlessUndefined(session, 'application_user', this.pickUser(random));
    setUnlessUndefined(session, 'created_at', random.chance(0.005) ? undefined : formatTime(createdMs));
    setUnlessUndefined(session, 'last_active', this.pickOptional(random, formatTime(lastActiveMs), 0.005, 0.01));
    setUnlessUndefined(session, 'expires_at', random.chance(0.005) ? undefined : formatTime(expiresMs));
    setUnlessUndefined(
      session,
      'endpoint',
      isEdgeSession ? this.pickOptional(random, target.endpoint, 0.25, 0.25) : target.endpoint,
    );

    if (isEdgeSession) {
      session.edge = target.edge;
      session.route = target.route;
    } else if (random.chance(0.6)) {
      // Endpoint sessions have no edge. Some responses set the keys to null, others omit them.
      session.edge = null;
      session.route = null;
    }

    if (random.chance(0.03)) {
      // Unknown fields can appear in any response and must be ignored.
      Object.assign(session, random.chance(0.5) ? { identity_provider: 'google' } : { scopes: ['openid', 'email'] });
    }
    return session;
  }

  /** Returns `value`, or null with probability `nullShare`, or undefined (absent) with probability `absentShare`. */
  private pickOptional<T>(random: Random, value: T, nullShare: number, absentShare: number): T | null | undefined {
    const draw = random.float();
    if (draw < nullShare) {
      return null;
    }
    if (draw < nullShare + absentShare) {
      return undefined;
    }
    return value;
  }

  private pickUser(random: Random): Ref | null | undefined {
    // Low indexes are picked more often, so that some users hold many sessions.
    const user = this.users[Math.floor(this.users.length * random.float() ** 1.6)] as Ref;
    return this.pickOptional(random, user, 0.02, 0.025);
  }

  private createBrowserSession(random: Random): BrowserSession {
    const ipAddress = random.chance(0.7)
      ? `${random.pick(IPV4_DOCUMENTATION_PREFIXES)}.${1 + random.int(254)}`
      : `${IPV6_DOCUMENTATION_PREFIX}:${random.int(0x10000).toString(16)}::${(1 + random.int(0xffff)).toString(16)}`;
    const browserSession = {} as BrowserSession;
    setUnlessUndefined(browserSession, 'ip_address', random.chance(0.005) ? undefined : ipAddress);
    setUnlessUndefined(browserSession, 'location', this.pickOptional(random, this.createLocation(random), 0.015, 0.03));
    browserSession.user_agent = this.createUserAgent(random);
    return browserSession;
  }

  private createLocation(random: Random): SessionLocation {
    const country = COUNTRIES.pick(random);
    const offset = (): number => (random.float() - 0.5) * country.spreadDegrees;
    const location: SessionLocation = {
      country_code: random.chance(0.01) ? null : country.code,
      latitude: roundTo4Decimals(Math.max(-90, Math.min(90, country.latitude + offset()))),
      longitude: roundTo4Decimals(country.longitude + offset()),
    };
    setUnlessUndefined(location, 'lat_long_radius_km', random.chance(0.03) ? undefined : LOCATION_RADII_KM.pick(random));
    return location;
  }

  private createUserAgent(random: Random): UserAgent {
    if (random.chance(UNRECOGNISED_CLIENT_SHARE)) {
      const userAgent: UserAgent = { raw: random.pick(UNRECOGNISED_USER_AGENTS) };
      setUnlessUndefined(userAgent, 'device_type', random.chance(0.5) ? null : undefined);
      return userAgent;
    }

    const profile = CLIENT_PROFILES.pick(random);
    const browserVersion = profile.browserVersions.length > 0 ? random.pick(profile.browserVersions) : '';
    const osVersion = profile.osVersions.length > 0 ? random.pick(profile.osVersions) : '';
    const raw = this.userAgentFor(profile, browserVersion, osVersion);
    const userAgent: UserAgent = {
      raw,
      browser_name: random.chance(0.005) ? null : profile.browserName,
      browser_version: reportedBrowserVersion(profile, browserVersion, osVersion),
    };
    setUnlessUndefined(userAgent, 'device_type', this.pickOptional(random, profile.deviceType, 0.015, 0.005));
    userAgent.os_name = profile.osName;
    setUnlessUndefined(userAgent, 'os_version', osVersion === '' ? undefined : osVersion);
    if (random.chance(0.02)) {
      userAgent.engine_name = raw.includes('Gecko/') ? 'Gecko' : raw.includes('AppleWebKit/605') ? 'WebKit' : 'Blink';
    }
    return userAgent;
  }

  private userAgentFor(profile: ClientProfile, browserVersion: string, osVersion: string): string {
    let byVersions = this.userAgents.get(profile);
    if (byVersions === undefined) {
      byVersions = new Map();
      this.userAgents.set(profile, byVersions);
    }
    const key = `${browserVersion}/${osVersion}`;
    let userAgent = byVersions.get(key);
    if (userAgent === undefined) {
      userAgent = profile.userAgent(browserVersion, osVersion);
      byVersions.set(key, userAgent);
    }
    return userAgent;
  }
}

/** Sorts sessions newest first, which for time-ordered ids is descending id order. */
export function sortNewestFirst(sessions: AppSession[]): AppSession[] {
  // Sorting [id, session] pairs keeps the comparisons on one object shape. Sessions
  // come in many shapes, which makes reading `id` from them slow.
  const pairs = sessions.map((session): [string, AppSession] => [session.id, session]);
  pairs.sort((a, b) => {
    if (a[0] === b[0]) {
      return 0;
    }
    return a[0] < b[0] ? 1 : -1;
  });
  for (let i = 0; i < pairs.length; i++) {
    sessions[i] = (pairs[i] as [string, AppSession])[1];
  }
  return sessions;
}

/**
 * Generates the sessions of a synthetic account, newest first. The same count, seed and
 * `nowMs` always give the same sessions, and about 10 % of them are already expired.
 */
export function generateSessions(count: number, options: GenerateOptions = {}): AppSession[] {
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new RangeError(`session count must be a non-negative integer, got ${count}`);
  }
  const seed = options.seed ?? DEFAULT_SEED;
  const nowMs = options.nowMs ?? Date.now();
  const expiredRetentionMs = options.expiredRetentionMs ?? DEFAULT_EXPIRED_RETENTION_MS;

  const factory = new SessionFactory(seed, count, nowMs);
  const random = factory.stream(1);
  const sessions: AppSession[] = [];
  for (let i = 0; i < count; i++) {
    sessions.push(factory.createListedSession(random, nowMs, expiredRetentionMs));
  }
  return sortNewestFirst(sessions);
}
