/**
 * Value tables for the synthetic account. The weights are rough estimates of web traffic
 * shares (countries, browsers, devices), chosen to give a realistic skew, not measured
 * from any real ngrok account. Every address and host name is reserved for documentation.
 */
import { WeightedChoice } from './random.js';

/** Country with the approximate centre and extent of its populated area. */
export interface Country {
  code: string;
  latitude: number;
  longitude: number;
  /** Width in degrees of the box around the centre where locations are placed. */
  spreadDegrees: number;
}

function country(code: string, latitude: number, longitude: number, spreadDegrees: number): Country {
  return { code, latitude, longitude, spreadDegrees };
}

export const COUNTRIES = new WeightedChoice<Country>([
  [country('US', 39.8, -98.6, 20), 27],
  [country('DE', 51.2, 10.4, 5), 8],
  [country('GB', 53.5, -1.9, 4), 7],
  [country('IN', 21.0, 78.0, 14), 7],
  [country('FR', 46.6, 2.2, 6), 5],
  [country('BR', -14.2, -51.9, 18), 5],
  [country('JP', 36.2, 138.3, 6), 4],
  [country('CA', 49.5, -95.0, 20), 4],
  [country('NL', 52.1, 5.3, 1.5), 3],
  [country('AU', -27.0, 134.0, 18), 3],
  [country('ES', 40.4, -3.7, 6), 2],
  [country('IT', 42.8, 12.5, 6), 2],
  [country('PL', 52.0, 19.1, 5), 2],
  [country('SE', 60.1, 15.6, 6), 1.5],
  [country('MX', 23.6, -102.6, 12), 1.5],
  [country('KR', 36.5, 127.9, 3), 1.2],
  [country('SG', 1.35, 103.8, 0.2), 1],
  [country('ID', -2.5, 118.0, 16), 1],
  [country('ZA', -29.0, 24.7, 10), 1],
  [country('NG', 9.1, 8.7, 8), 0.8],
  [country('TR', 39.0, 35.2, 10), 0.8],
  [country('AR', -38.4, -63.6, 14), 0.8],
  [country('CH', 46.8, 8.2, 2), 0.8],
  [country('IE', 53.4, -8.2, 3), 0.7],
  [country('IL', 31.0, 34.9, 2), 0.6],
  [country('UA', 48.4, 31.2, 10), 0.6],
  [country('VN', 14.1, 108.3, 8), 0.6],
  [country('PH', 12.9, 121.8, 8), 0.6],
  [country('NZ', -41.3, 174.8, 8), 0.4],
  [country('EG', 26.8, 30.8, 8), 0.4],
]);

/** Accuracy radius of a geolocation; country-level lookups report large radii. */
export const LOCATION_RADII_KM = new WeightedChoice<number>([
  [1, 4],
  [5, 8],
  [10, 10],
  [20, 16],
  [50, 14],
  [100, 12],
  [200, 12],
  [500, 10],
  [1000, 14],
]);

/** Documentation address blocks from RFC 5737 (IPv4) and RFC 3849 (IPv6). */
export const IPV4_DOCUMENTATION_PREFIXES = ['192.0.2', '198.51.100', '203.0.113'] as const;
export const IPV6_DOCUMENTATION_PREFIX = '2001:db8';

/** Browser, operating system and device class of one kind of client, with its User-Agent template. */
export interface ClientProfile {
  /** Browser name as ngrok reports it; null means the key is absent. */
  browserName: string | null;
  browserVersions: readonly string[];
  osName: string | null;
  /** Operating system versions; empty means `os_version` is absent. */
  osVersions: readonly string[];
  deviceType: string | null;
  userAgent(browserVersion: string, osVersion: string): string;
}

const CHROME_VERSIONS = ['128', '129', '130', '131', '132', '133'];
const FIREFOX_VERSIONS = ['130', '131', '132', '133', '134'];
const IOS_VERSIONS = ['17.6', '18.1', '18.2', '18.3'];
const ANDROID_VERSIONS = ['10', '13', '14', '15'];

function underscored(version: string): string {
  return version.replace(/\./g, '_');
}

function majorVersion(version: string): string {
  return version.split('.')[0] ?? version;
}

export const CLIENT_PROFILES = new WeightedChoice<ClientProfile>([
  [
    {
      browserName: 'Chrome',
      browserVersions: CHROME_VERSIONS,
      osName: 'Windows',
      osVersions: ['10'],
      deviceType: 'Desktop',
      userAgent: (browser) =>
        `Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${browser}.0.0.0 Safari/537.36`,
    },
    24,
  ],
  [
    {
      browserName: 'Chrome',
      browserVersions: CHROME_VERSIONS,
      osName: 'MacOS',
      osVersions: ['10.15.7'],
      deviceType: 'Desktop',
      userAgent: (browser, os) =>
        `Mozilla/5.0 (Macintosh; Intel Mac OS X ${underscored(os)}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${browser}.0.0.0 Safari/537.36`,
    },
    10,
  ],
  [
    {
      browserName: 'Chrome',
      browserVersions: CHROME_VERSIONS,
      osName: 'Linux',
      osVersions: [],
      deviceType: 'Desktop',
      userAgent: (browser) =>
        `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${browser}.0.0.0 Safari/537.36`,
    },
    3,
  ],
  [
    {
      browserName: 'Chrome',
      browserVersions: CHROME_VERSIONS,
      osName: 'Chrome OS',
      osVersions: ['14541.0.0'],
      deviceType: 'Desktop',
      userAgent: (browser, os) =>
        `Mozilla/5.0 (X11; CrOS x86_64 ${os}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${browser}.0.0.0 Safari/537.36`,
    },
    0.5,
  ],
  [
    {
      browserName: 'Chrome',
      browserVersions: CHROME_VERSIONS,
      osName: 'Android',
      osVersions: ANDROID_VERSIONS,
      deviceType: 'Mobile',
      userAgent: (browser, os) =>
        `Mozilla/5.0 (Linux; Android ${os}; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${browser}.0.0.0 Mobile Safari/537.36`,
    },
    10,
  ],
  [
    {
      browserName: 'Chrome',
      browserVersions: CHROME_VERSIONS,
      osName: 'Android',
      osVersions: ANDROID_VERSIONS,
      deviceType: 'Tablet',
      userAgent: (browser, os) =>
        `Mozilla/5.0 (Linux; Android ${os}; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${browser}.0.0.0 Safari/537.36`,
    },
    1.5,
  ],
  [
    {
      browserName: 'Firefox',
      browserVersions: FIREFOX_VERSIONS,
      osName: 'Windows',
      osVersions: ['10'],
      deviceType: 'Desktop',
      userAgent: (browser) =>
        `Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:${browser}.0) Gecko/20100101 Firefox/${browser}.0`,
    },
    5,
  ],
  [
    {
      browserName: 'Firefox',
      browserVersions: FIREFOX_VERSIONS,
      osName: 'Linux',
      osVersions: [],
      deviceType: 'Desktop',
      userAgent: (browser) => `Mozilla/5.0 (X11; Linux x86_64; rv:${browser}.0) Gecko/20100101 Firefox/${browser}.0`,
    },
    2,
  ],
  [
    {
      browserName: 'Firefox',
      browserVersions: FIREFOX_VERSIONS,
      osName: 'MacOS',
      osVersions: ['10.15'],
      deviceType: 'Desktop',
      userAgent: (browser, os) =>
        `Mozilla/5.0 (Macintosh; Intel Mac OS X ${os}; rv:${browser}.0) Gecko/20100101 Firefox/${browser}.0`,
    },
    1,
  ],
  [
    {
      browserName: 'Safari',
      browserVersions: ['17.6', '18.1', '18.2', '18.3'],
      osName: 'MacOS',
      osVersions: ['10.15.7'],
      deviceType: 'Desktop',
      userAgent: (browser, os) =>
        `Mozilla/5.0 (Macintosh; Intel Mac OS X ${underscored(os)}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/${browser} Safari/605.1.15`,
    },
    7,
  ],
  [
    {
      browserName: 'Mobile Safari',
      browserVersions: [],
      osName: 'iOS',
      osVersions: IOS_VERSIONS,
      deviceType: 'Mobile',
      userAgent: (_browser, os) =>
        `Mozilla/5.0 (iPhone; CPU iPhone OS ${underscored(os)} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/${os} Mobile/15E148 Safari/604.1`,
    },
    12,
  ],
  [
    {
      browserName: 'Mobile Safari',
      browserVersions: [],
      osName: 'iOS',
      osVersions: IOS_VERSIONS,
      deviceType: 'Tablet',
      userAgent: (_browser, os) =>
        `Mozilla/5.0 (iPad; CPU OS ${underscored(os)} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/${os} Mobile/15E148 Safari/604.1`,
    },
    2,
  ],
  [
    {
      browserName: 'Edge',
      browserVersions: CHROME_VERSIONS,
      osName: 'Windows',
      osVersions: ['10'],
      deviceType: 'Desktop',
      userAgent: (browser) =>
        `Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${browser}.0.0.0 Safari/537.36 Edg/${browser}.0.0.0`,
    },
    6,
  ],
  [
    {
      browserName: 'Samsung Internet',
      browserVersions: ['26.0', '27.0'],
      osName: 'Android',
      osVersions: ['14', '15'],
      deviceType: 'Mobile',
      userAgent: (browser, os) =>
        `Mozilla/5.0 (Linux; Android ${os}; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/${browser} Chrome/125.0.0.0 Mobile Safari/537.36`,
    },
    2.5,
  ],
  [
    {
      browserName: 'Opera',
      browserVersions: ['114', '115', '116'],
      osName: 'Windows',
      osVersions: ['10'],
      deviceType: 'Desktop',
      userAgent: (browser) =>
        `Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/${browser}.0.0.0`,
    },
    1.5,
  ],
]);

/** Share of sessions from clients whose User-Agent the parser does not recognise. */
export const UNRECOGNISED_CLIENT_SHARE = 0.025;

/** User-Agent values without browser, device or operating system information. */
export const UNRECOGNISED_USER_AGENTS = [
  'curl/8.5.0',
  'python-requests/2.32.3',
  'Go-http-client/1.1',
  'Mozilla/5.0 (compatible; ExampleMonitor/1.0; +https://monitor.example.com)',
  'okhttp/4.12.0',
] as const;

/** Returns the browser version as ngrok reports it: the major version only. */
export function reportedBrowserVersion(profile: ClientProfile, browserVersion: string, osVersion: string): string {
  // Mobile Safari carries the iOS version in its User-Agent.
  return majorVersion(profile.browserVersions.length > 0 ? browserVersion : osVersion);
}

/** Endpoint of the account, with the session lifetime its Traffic Policy sets. */
export interface EndpointTemplate {
  publicUrl: string;
  /** Relative share of the account's sessions. */
  weight: number;
  /** Lifetime of a session (`max_session_duration`), in ms. */
  sessionLifetimeMs: number;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export const ENDPOINT_TEMPLATES: readonly EndpointTemplate[] = [
  { publicUrl: 'https://dashboard.example.com', weight: 30, sessionLifetimeMs: DAY_MS },
  { publicUrl: 'https://grafana.example.net', weight: 18, sessionLifetimeMs: 7 * DAY_MS },
  { publicUrl: 'https://wiki.example.com', weight: 12, sessionLifetimeMs: 7 * DAY_MS },
  { publicUrl: 'https://docs.example.net', weight: 10, sessionLifetimeMs: 12 * HOUR_MS },
  { publicUrl: 'https://admin.example.org', weight: 8, sessionLifetimeMs: HOUR_MS },
  { publicUrl: 'https://staging.example.com', weight: 6, sessionLifetimeMs: DAY_MS },
];

/** Legacy edge of the account with its number of routes. */
export interface EdgeTemplate {
  publicUrl: string;
  routeCount: number;
  sessionLifetimeMs: number;
}

export const EDGE_TEMPLATES: readonly EdgeTemplate[] = [
  { publicUrl: 'https://legacy.example.org', routeCount: 2, sessionLifetimeMs: 3 * DAY_MS },
  { publicUrl: 'https://intranet.example.net', routeCount: 1, sessionLifetimeMs: 3 * DAY_MS },
];

/** Weight of all legacy edge sessions together against the endpoint weights (about 7 %). */
export const EDGE_SESSIONS_WEIGHT = 7;
