/**
 * Command-line flags and environment variables, validated once at start-up
 * into a frozen {@link Config}. Every rejected value raises a ConfigError that
 * names the setting, the value and the fix.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { ConfigError } from './errors.js';

/** Session attributes that can become labels of the session gauges. */
export const LABEL_NAMES = ['country', 'device_type', 'browser', 'os', 'route', 'endpoint', 'public_url'] as const;
export type LabelName = (typeof LABEL_NAMES)[number];

export const DEFAULT_LABELS: readonly LabelName[] = ['country', 'device_type', 'browser', 'route'];

/** The API key; prints as `<redacted>` in logs, JSON and `util.inspect`. */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** Returns the key itself, for the Authorization header only. */
  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return '<redacted>';
  }

  toJSON(): string {
    return '<redacted>';
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '<redacted>';
  }
}

export interface ListenAddress {
  /** Host to bind; an empty string binds every interface. */
  host: string;
  port: number;
}

/** The validated, frozen settings of one exporter process. */
export interface Config {
  apiUrl: URL;
  apiKey: Secret | undefined;
  requestTimeoutMs: number;
  requestsPerMinute: number;
  maxPages: number;
  maxRetries: number;
  retryMinDelayMs: number;
  retryMaxDelayMs: number;
  maxBodyBytes: number;
  refreshIntervalMs: number;
  maxStalenessMs: number;
  maxScrapeWaitMs: number;
  scrapeTimeoutOffsetMs: number;
  labels: readonly LabelName[];
  recentWindowMs: number;
  maxSeries: number;
  maxLabelLength: number;
  listenAddress: ListenAddress;
  telemetryPath: string;
  webConfigFile: string | undefined;
  logLevel: LogLevel;
  demo: boolean;
  demoSessions: number;
  checkOnly: boolean;
}

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Upper bound of the request budget: ngrok allows 120 API requests per rolling minute per account. */
export const MAX_REQUESTS_PER_MINUTE = 120;

/** Default port; the Prometheus default port allocations list is full from 9100 to 9999. */
export const DEFAULT_PORT = 10119;

interface FlagSpec {
  /** Flag name without the leading dashes, such as `refresh.interval`. */
  name: string;
  /** Value placeholder for the help text; absent for boolean flags. */
  placeholder?: string;
  defaultValue?: string;
  help: string;
}

const FLAGS: readonly FlagSpec[] = [
  { name: 'ngrok.api-url', placeholder: 'URL', defaultValue: 'https://api.ngrok.com', help: 'Base URL of the ngrok API.' },
  { name: 'ngrok.api-key-file', placeholder: 'PATH', help: 'File that contains the ngrok API key. Without it, the key comes from NGROK_API_KEY.' },
  { name: 'ngrok.timeout', placeholder: 'DURATION', defaultValue: '10s', help: 'Deadline of one API request, body included.' },
  { name: 'ngrok.requests-per-minute', placeholder: 'N', defaultValue: '60', help: `API requests the exporter may send per rolling minute, retries included (1 to ${MAX_REQUESTS_PER_MINUTE}, the account-wide ngrok limit).` },
  { name: 'ngrok.max-pages', placeholder: 'N', defaultValue: '1000', help: 'Pages of 100 sessions one refresh may walk; a longer walk fails the refresh.' },
  { name: 'ngrok.max-retries', placeholder: 'N', defaultValue: '4', help: 'Retries of one page after a network error, timeout, 429 or 5xx.' },
  { name: 'ngrok.retry-min-delay', placeholder: 'DURATION', defaultValue: '1s', help: 'First backoff delay between retries when the API sends no Retry-After.' },
  { name: 'ngrok.retry-max-delay', placeholder: 'DURATION', defaultValue: '60s', help: 'Maximum backoff delay between retries.' },
  { name: 'ngrok.max-body-bytes', placeholder: 'BYTES', defaultValue: '4194304', help: 'Largest response body read from the API; a larger one fails the refresh.' },
  { name: 'refresh.interval', placeholder: 'DURATION', defaultValue: '60s', help: 'Age at which a scrape starts a new walk of all sessions; failed walks wait at least this long too.' },
  { name: 'refresh.max-staleness', placeholder: 'DURATION', defaultValue: '15m', help: 'Age after which the cached session gauges are no longer served.' },
  { name: 'refresh.max-wait', placeholder: 'DURATION', defaultValue: '10s', help: 'Maximum time a scrape waits for a refresh when Prometheus sends no X-Prometheus-Scrape-Timeout-Seconds header.' },
  { name: 'refresh.timeout-offset', placeholder: 'DURATION', defaultValue: '500ms', help: 'Margin subtracted from the scrape timeout that Prometheus sends.' },
  { name: 'sessions.labels', placeholder: 'LIST', defaultValue: DEFAULT_LABELS.join(','), help: `Comma-separated labels of the session gauges, from: ${LABEL_NAMES.join(', ')}.` },
  { name: 'sessions.recent-window', placeholder: 'DURATION', defaultValue: '5m', help: 'A session is recently active when its last_active is within this window.' },
  { name: 'sessions.max-series', placeholder: 'N', defaultValue: '10000', help: 'Series per session gauge; rarer label combinations fold into one overflow series.' },
  { name: 'sessions.max-label-length', placeholder: 'N', defaultValue: '128', help: 'Label values longer than this many characters are cut.' },
  { name: 'web.listen-address', placeholder: 'HOST:PORT', defaultValue: `:${DEFAULT_PORT}`, help: 'Address to listen on for HTTP requests.' },
  { name: 'web.telemetry-path', placeholder: 'PATH', defaultValue: '/metrics', help: 'Path under which to expose metrics.' },
  { name: 'web.config.file', placeholder: 'PATH', help: 'Exporter-toolkit web configuration file for TLS and basic auth.' },
  { name: 'log.level', placeholder: 'LEVEL', defaultValue: 'info', help: `Log level: ${LOG_LEVELS.join(', ')}.` },
  { name: 'demo', help: 'Serve a simulated ngrok account from inside the process; no API key needed.' },
  { name: 'demo.sessions', placeholder: 'N', defaultValue: '2345', help: 'Sessions in the simulated account of --demo.' },
  { name: 'config.check', help: 'Validate the configuration, print it and exit.' },
  { name: 'help', help: 'Show this help and exit.' },
  { name: 'version', help: 'Show the version and exit.' },
];

const BOOLEAN_FLAGS = new Set(['demo', 'config.check', 'help', 'version']);
/** Flags that only make sense on a command line: a stray variable must not make a service exit at start-up. */
const BOOLEAN_FLAGS_WITHOUT_ENV = new Set(['help', 'version', 'config.check']);

/** Longest accepted duration. Node.js timers overflow at 2^31 ms (about 24.8 days). */
const MAX_DURATION_MS = 24 * 3_600_000;

/** Shortest accepted API key. ngrok API keys are far longer, and redacting a short string would garble every log line. */
const MIN_KEY_LENGTH = 16;

/**
 * Returns the environment variable that sets a flag: `--ngrok.api-url` reads
 * NGROK_API_URL, and flags outside `ngrok.` read NGROK_EXPORTER_<NAME>.
 */
export function envNameOf(flag: string): string {
  const upper = flag.toUpperCase().replace(/[.-]/g, '_');
  return flag.startsWith('ngrok.') ? upper : `NGROK_EXPORTER_${upper}`;
}

/** Parses a Prometheus-style duration such as `500ms`, `30s`, `5m` or `1h30m` into milliseconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^((\d+)h)?((\d+)m(?!s))?((\d+)s)?((\d+)ms)?$/.exec(text);
  if (match === null || text === '') return undefined;

  const [hours, minutes, seconds, millis] = [match[2], match[4], match[6], match[8]].map((part) => Number(part ?? 0)) as [
    number,
    number,
    number,
    number,
  ];
  return ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis;
}

/** Formats milliseconds as the shortest Prometheus-style duration. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    const count = Math.floor(rest / size);
    if (count > 0) parts.push(`${count}${unit}`);
    rest -= count * size;
  }
  return parts.join('');
}

/** Outcome of argument parsing: a config to run, or text to print before exiting. */
export type ParseResult = { kind: 'run'; config: Config } | { kind: 'exit'; output: string };

/**
 * Parses flags and environment variables into a frozen Config.
 * Flags win over environment variables, which win over defaults.
 * @throws ConfigError on an unknown flag or an invalid value.
 */
export function parseCommandLine(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, version: string): ParseResult {
  const raw = readRawValues(argv, env);
  if (raw.get('help')?.value === 'true') return { kind: 'exit', output: helpText(version) };
  if (raw.get('version')?.value === 'true') return { kind: 'exit', output: `ngrok-sessions-exporter ${version} (Node.js ${process.version})\n` };

  return { kind: 'run', config: buildConfig(raw, env) };
}

/** Parses flags and environment variables for the exporter to run; see {@link parseCommandLine}. */
export function parseConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Config {
  return buildConfig(readRawValues(argv, env), env);
}

/** Collects each setting given, by flag name, with flags over environment variables; booleans map to 'true'. */
function readRawValues(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Map<string, RawValue> {
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const flag of FLAGS) options[flag.name] = { type: BOOLEAN_FLAGS.has(flag.name) ? 'boolean' : 'string' };

  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new ConfigError('command line', `invalid command line: ${message}. Run with --help to list the flags.`, { cause: error });
  }

  const raw = new Map<string, RawValue>();
  for (const flag of FLAGS) {
    const envName = envNameOf(flag.name);
    const fromEnv = BOOLEAN_FLAGS_WITHOUT_ENV.has(flag.name) ? undefined : env[envName];
    if (fromEnv !== undefined && fromEnv !== '') raw.set(flag.name, { value: fromEnv, setting: envName });
    const fromArgs = parsed.values[flag.name];
    if (typeof fromArgs === 'string') raw.set(flag.name, { value: fromArgs, setting: `--${flag.name}` });
    if (fromArgs === true) raw.set(flag.name, { value: 'true', setting: `--${flag.name}` });
  }
  return raw;
}

/** A value given on the command line or in the environment, with the flag or variable it came from. */
interface RawValue {
  value: string;
  setting: string;
}

function buildConfig(raw: Map<string, RawValue>, env: Readonly<Record<string, string | undefined>>): Config {
  // A message names the flag or variable that the value came from, so the user edits the right place.
  const read = (name: string): RawValue =>
    raw.get(name) ?? { value: FLAGS.find((flag) => flag.name === name)?.defaultValue ?? '', setting: `--${name}` };

  const demo = readBoolean(read('demo'));
  const config: Config = {
    apiUrl: readApiUrl(read('ngrok.api-url')),
    apiKey: readApiKey(raw.get('ngrok.api-key-file'), env, demo),
    requestTimeoutMs: readDurationMs(read('ngrok.timeout'), { min: 100, max: 10 * 60_000 }),
    requestsPerMinute: readInteger(read('ngrok.requests-per-minute'), 1, MAX_REQUESTS_PER_MINUTE),
    maxPages: readInteger(read('ngrok.max-pages'), 1, 1_000_000),
    maxRetries: readInteger(read('ngrok.max-retries'), 0, 100),
    retryMinDelayMs: readDurationMs(read('ngrok.retry-min-delay'), { min: 0, max: 60 * 60_000 }),
    retryMaxDelayMs: readDurationMs(read('ngrok.retry-max-delay'), { min: 0, max: 60 * 60_000 }),
    maxBodyBytes: readInteger(read('ngrok.max-body-bytes'), 1024, 1024 * 1024 * 1024),
    refreshIntervalMs: readDurationMs(read('refresh.interval'), { min: 1000 }),
    maxStalenessMs: readDurationMs(read('refresh.max-staleness'), { min: 1000 }),
    maxScrapeWaitMs: readDurationMs(read('refresh.max-wait'), { min: 0, max: 10 * 60_000 }),
    scrapeTimeoutOffsetMs: readDurationMs(read('refresh.timeout-offset'), { min: 0, max: 60_000 }),
    labels: readLabels(read('sessions.labels')),
    recentWindowMs: readDurationMs(read('sessions.recent-window'), { min: 1000 }),
    maxSeries: readInteger(read('sessions.max-series'), 1, 10_000_000),
    maxLabelLength: readInteger(read('sessions.max-label-length'), 8, 4096),
    listenAddress: readListenAddress(read('web.listen-address')),
    telemetryPath: readTelemetryPath(read('web.telemetry-path')),
    webConfigFile: raw.get('web.config.file')?.value,
    logLevel: readLogLevel(read('log.level')),
    demo,
    demoSessions: readInteger(read('demo.sessions'), 0, 1_000_000),
    checkOnly: readBoolean(read('config.check')),
  };

  checkRelations(config);
  return Object.freeze(config);
}

function checkRelations(config: Config): void {
  if (config.retryMaxDelayMs < config.retryMinDelayMs) {
    throw new ConfigError(
      '--ngrok.retry-max-delay',
      `--ngrok.retry-max-delay (${formatDuration(config.retryMaxDelayMs)}) must not be shorter than --ngrok.retry-min-delay (${formatDuration(config.retryMinDelayMs)}); raise it or lower the minimum.`,
    );
  }
  if (config.maxStalenessMs < config.refreshIntervalMs) {
    throw new ConfigError(
      '--refresh.max-staleness',
      `--refresh.max-staleness (${formatDuration(config.maxStalenessMs)}) must not be shorter than --refresh.interval (${formatDuration(config.refreshIntervalMs)}), or fresh data would never be served; raise it.`,
    );
  }
}

function readBoolean({ setting, value }: RawValue): boolean {
  if (['true', '1', 'yes'].includes(value.toLowerCase())) return true;
  if (['false', '0', 'no', ''].includes(value.toLowerCase())) return false;
  throw new ConfigError(setting, `${setting} must be true or false, got ${JSON.stringify(value)}.`);
}

function readInteger({ setting, value }: RawValue, min: number, max: number): number {
  const number = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(number) || number < min || number > max) {
    throw new ConfigError(setting, `${setting} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}.`);
  }
  return number;
}

function readDurationMs({ setting, value }: RawValue, { min, max = MAX_DURATION_MS }: { min: number; max?: number }): number {
  const ms = parseDuration(value);
  if (ms === undefined) {
    throw new ConfigError(setting, `${setting} must be a duration such as 500ms, 30s, 5m or 1h30m, got ${JSON.stringify(value)}.`);
  }
  if (ms < min || ms > max) {
    throw new ConfigError(setting, `${setting} must be from ${formatDuration(min)} to ${formatDuration(max)}, got ${JSON.stringify(value)}.`);
  }
  return ms;
}

function readApiUrl({ setting, value }: RawValue): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch (error) {
    throw new ConfigError(setting, `${setting} must be an absolute http or https URL such as https://api.ngrok.com, got ${JSON.stringify(value)}.`, { cause: error });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError(setting, `${setting} must use http or https, got ${JSON.stringify(value)}.`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new ConfigError(setting, `${setting} must not contain credentials; pass the key with NGROK_API_KEY or NGROK_API_KEY_FILE.`);
  }
  if (url.search !== '' || url.hash !== '') {
    throw new ConfigError(setting, `${setting} must not have a query or fragment, got ${JSON.stringify(value)}.`);
  }
  return url;
}

function readApiKey(keyFile: RawValue | undefined, env: Readonly<Record<string, string | undefined>>, demo: boolean): Secret | undefined {
  // --ngrok.api-key-file reads NGROK_API_KEY_FILE through envNameOf, so keyFile covers both.
  const file = keyFile?.value;
  const fileSetting = keyFile?.setting ?? 'NGROK_API_KEY_FILE';
  const inline = nonEmpty(env.NGROK_API_KEY);

  if (file !== undefined && inline !== undefined) {
    throw new ConfigError(fileSetting, `both ${fileSetting} and NGROK_API_KEY are set; set only one of them.`);
  }
  if (file !== undefined) return new Secret(readKeyFile(fileSetting, file));
  if (inline !== undefined) return new Secret(checkKey('NGROK_API_KEY', inline.trim()));
  if (demo) return undefined;

  throw new ConfigError(
    'NGROK_API_KEY',
    'missing ngrok API key: set NGROK_API_KEY, or NGROK_API_KEY_FILE to a file that contains it (create a key under API Keys in the ngrok dashboard), or run with --demo to try the exporter without an account.',
  );
}

function readKeyFile(setting: string, path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'read failed';
    throw new ConfigError(setting, `${setting} names ${JSON.stringify(path)}, which cannot be read (${reason}); check the path and its permissions.`, { cause: error });
  }
  return checkKey(setting, text.trim());
}

function checkKey(setting: string, key: string): string {
  // The key itself never goes into a message; only its shape is described.
  if (key === '') throw new ConfigError(setting, `${setting} gives an empty API key; put the key from the ngrok dashboard there.`);
  if (key.length < MIN_KEY_LENGTH) {
    throw new ConfigError(setting, `${setting} gives an API key of ${key.length} characters, too short for an ngrok API key; copy the whole key from the ngrok dashboard.`);
  }
  if (/[\s\u0000-\u001f\u007f]/.test(key)) {
    throw new ConfigError(setting, `${setting} gives an API key that contains white space or control characters; it must be one line with the key only.`);
  }
  return key;
}

function readLabels({ setting, value }: RawValue): readonly LabelName[] {
  const names = value.split(',').map((name) => name.trim()).filter((name) => name !== '');
  const unknown = names.filter((name) => !(LABEL_NAMES as readonly string[]).includes(name));
  if (unknown.length > 0) {
    throw new ConfigError(setting, `${setting} contains unknown label ${JSON.stringify(unknown[0])}; choose from ${LABEL_NAMES.join(', ')}.`);
  }
  const unique = [...new Set(names)] as LabelName[];
  if (unique.length !== names.length) {
    throw new ConfigError(setting, `${setting} lists a label twice in ${JSON.stringify(value)}; list each label once.`);
  }
  return Object.freeze(unique);
}

function readListenAddress({ setting, value }: RawValue): ListenAddress {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]*):(\d{1,5})$/.exec(value);
  const port = match === null ? Number.NaN : Number(match[2]);
  if (match === null || port > 65535) {
    throw new ConfigError(setting, `${setting} must be HOST:PORT or :PORT with a port from 0 to 65535, got ${JSON.stringify(value)}.`);
  }
  return { host: (match[1] ?? '').replace(/^\[|\]$/g, ''), port };
}

function readTelemetryPath({ setting, value }: RawValue): string {
  if (!/^\/[A-Za-z0-9._~\-/]*$/.test(value) || value === '/' || value.startsWith('/-/')) {
    throw new ConfigError(setting, `${setting} must be a path such as /metrics, other than / and /-/..., got ${JSON.stringify(value)}.`);
  }
  return value;
}

function readLogLevel({ setting, value }: RawValue): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new ConfigError(setting, `${setting} must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(value)}.`);
  }
  return value as LogLevel;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** Returns the --help text. */
export function helpText(version: string): string {
  const lines = [
    `ngrok-sessions-exporter ${version}`,
    'Exports the application sessions of an ngrok account as Prometheus metrics.',
    '',
    'Usage: ngrok-sessions-exporter [FLAGS]',
    '',
    'The API key comes from NGROK_API_KEY, or from the file named by NGROK_API_KEY_FILE or --ngrok.api-key-file.',
    'Each flag can also be set by the environment variable in brackets; a flag wins over its variable.',
    '',
    'Flags:',
  ];
  for (const flag of FLAGS) {
    const left = flag.placeholder === undefined ? `--${flag.name}` : `--${flag.name}=${flag.placeholder}`;
    const defaultNote = flag.defaultValue === undefined ? '' : ` Default: ${flag.defaultValue}.`;
    const envNote = ['help', 'version'].includes(flag.name) ? '' : ` [${envNameOf(flag.name)}]`;
    lines.push(`  ${left}`, `      ${flag.help}${defaultNote}${envNote}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Returns the settings as plain data for the start-up log, with the key redacted. */
export function describeConfig(config: Config): Record<string, unknown> {
  return {
    api_url: config.apiUrl.href,
    api_key: config.apiKey === undefined ? 'none' : '<redacted>',
    requests_per_minute: config.requestsPerMinute,
    request_timeout: formatDuration(config.requestTimeoutMs),
    max_pages: config.maxPages,
    max_retries: config.maxRetries,
    refresh_interval: formatDuration(config.refreshIntervalMs),
    max_staleness: formatDuration(config.maxStalenessMs),
    labels: config.labels.join(','),
    recent_window: formatDuration(config.recentWindowMs),
    max_series: config.maxSeries,
    listen_address: `${config.listenAddress.host}:${config.listenAddress.port}`,
    telemetry_path: config.telemetryPath,
    web_config_file: config.webConfigFile ?? 'none',
    demo: config.demo,
  };
}
