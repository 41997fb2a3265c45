/**
 * An in-process exporter pointed at any API URL (the simulator or a raw
 * server), on a clock that moves only when a test moves it, with its log
 * lines captured. Each call of `refresh()` jumps the clock to the next due
 * attempt and scrapes, so a test runs one refresh after another without
 * sleeping and without refreshes it did not ask for.
 */
import { expect } from 'vitest';

import { startExporter, type RunningExporter } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import { FAILURE_REASONS, type FailureReason } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import { formatTime, type AppSession } from '../../src/simulator/index.js';
import { TEST_API_KEY, parseSamples, until, valueOf } from '../support/harness.js';
import { LogCapture } from '../support/logs.js';

export { TEST_API_KEY };

/** A clock that moves only when advanced. */
export interface ManualClock {
  now(): number;
  advance(ms: number): void;
  /** Moves the clock forward to `ms` if it is behind. */
  advanceTo(ms: number): void;
}

export function manualClock(startMs = Date.parse('2026-03-01T12:00:00Z')): ManualClock {
  let nowMs = startMs;
  return {
    now: () => nowMs,
    advance: (ms) => {
      nowMs += ms;
    },
    advanceTo: (ms) => {
      nowMs = Math.max(nowMs, ms);
    },
  };
}

/**
 * Flags of every exporter here: one attempt per page with a 300 ms deadline,
 * so a failing refresh ends quickly, and a 1 s interval, so backoffs stay
 * far below the staleness limit.
 */
export const FAST_FAILURE_FLAGS = [
  '--ngrok.timeout=300ms',
  '--ngrok.max-retries=0',
  '--ngrok.retry-min-delay=0s',
  '--ngrok.retry-max-delay=0s',
  '--ngrok.requests-per-minute=120',
  '--refresh.interval=1s',
  '--refresh.max-wait=20s',
  '--log.level=debug',
];

export interface TestExporter {
  exporter: RunningExporter;
  logs: LogCapture;
  clock: ManualClock;
  get(path: string, headers?: Record<string, string>): Promise<{ status: number; body: string }>;
  /** Scrapes /metrics and expects HTTP 200. */
  scrape(): Promise<string>;
  /** Waits until no walk is running, such as the one started at start-up, and returns a scrape taken after it. */
  waitForRefresh(): Promise<string>;
  /** Moves the clock to the next due attempt, scrapes, waits for the walk to end and scrapes again. */
  refresh(): Promise<string>;
  close(): Promise<void>;
}

export interface TestExporterOptions {
  argv?: string[];
  clock?: ManualClock;
  /** Key the exporter sends (default TEST_API_KEY). */
  key?: string;
}

/** Starts an exporter against `apiUrl` with {@link FAST_FAILURE_FLAGS} and `options.argv` after them. */
export async function startTestExporter(apiUrl: string, options: TestExporterOptions = {}): Promise<TestExporter> {
  const clock = options.clock ?? manualClock();
  const config = parseConfig(['--ngrok.api-url', apiUrl, '--web.listen-address', '127.0.0.1:0', ...FAST_FAILURE_FLAGS, ...(options.argv ?? [])], {
    NGROK_API_KEY: options.key ?? TEST_API_KEY,
  });
  const logs = new LogCapture();
  const logger = createLogger({ level: config.logLevel, secret: config.apiKey, destination: logs });
  const exporter = await startExporter(config, { logger, now: clock.now });

  const get = async (path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> => {
    const response = await fetch(`${exporter.url}${path}`, { headers });
    return { status: response.status, body: await response.text() };
  };
  const scrape = async (): Promise<string> => {
    const response = await get(config.telemetryPath);
    if (response.status !== 200) throw new Error(`scrape returned HTTP ${response.status}: ${response.body.slice(0, 200)}`);
    return response.body;
  };
  const settled = async (): Promise<string> => {
    await until(() => !exporter.refresher.state().refreshing, 20_000);
    return scrape();
  };

  return {
    exporter,
    logs,
    clock,
    get,
    scrape,
    waitForRefresh: settled,
    refresh: async () => {
      await until(() => !exporter.refresher.state().refreshing, 20_000);
      clock.advanceTo(exporter.refresher.state().nextAttemptAtMs);
      await scrape();
      return settled();
    },
    close: () => exporter.close(),
  };
}

/** Returns the lines of the snapshot gauges (`ngrok_app_*`), which every scrape of one snapshot repeats. */
export function snapshotLines(text: string): string[] {
  return text.split('\n').filter((line) => /^ngrok_app_/.test(line));
}

export { FAILURE_REASONS };

/** Values of `ngrok_exporter_refresh_failures_total` by reason. */
export function failuresByReason(text: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const reason of FAILURE_REASONS) counts[reason] = valueOf(text, `ngrok_exporter_refresh_failures_total{reason="${reason}"}`) ?? Number.NaN;
  return counts;
}

/** Values of `ngrok_exporter_api_requests_total` by code. */
export function requestsByCode(text: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const [series, value] of parseSamples(text)) {
    const match = /^ngrok_exporter_api_requests_total\{code="([^"]*)"\}$/.exec(series);
    if (match !== null) counts[match[1] as string] = value;
  }
  return counts;
}

/** Log records at error level (pino level 50). */
export function errorRecords(logs: LogCapture): Record<string, unknown>[] {
  return logs.records().filter((record) => record.level === 50);
}

/** Sessions that stay active for a day after `nowMs`, spread over three countries and two browsers. */
export function activeSessions(count: number, nowMs: number, prefix = 'as_'): AppSession[] {
  const countries = ['US', 'DE', 'JP'];
  const browsers = ['Chrome', 'Firefox'];
  return Array.from({ length: count }, (_, index) => ({
    id: `${prefix}${String(index).padStart(6, '0')}`,
    uri: `https://api.ngrok.com/app/sessions/${prefix}${index}`,
    public_url: 'https://app.example.com',
    browser_session: {
      user_agent: { raw: 'Mozilla/5.0', browser_name: browsers[index % browsers.length] as string, device_type: 'Desktop', os_name: 'Linux' },
      location: { country_code: countries[index % countries.length] as string },
    },
    application_user: { id: `au_${index % 7}`, uri: `https://api.ngrok.com/app/users/au_${index % 7}` },
    created_at: formatTime(nowMs - 3_600_000),
    last_active: formatTime(nowMs - 60_000),
    expires_at: formatTime(nowMs + 86_400_000),
    endpoint: { id: 'ep_1', uri: 'https://api.ngrok.com/endpoints/ep_1' },
  }));
}

/** Returns a page body in the documented layout. */
export function pageBody(sessions: readonly unknown[], nextPageUri: unknown): Record<string, unknown> {
  return { application_sessions: sessions, uri: 'https://api.ngrok.com/app/sessions', next_page_uri: nextPageUri };
}

/** What a failed refresh must leave behind. */
export interface ExpectedFailure {
  reason: FailureReason;
  /** `code` of the ApiError in the log line, such as `TIMEOUT`. */
  errorCode: string;
  /** Expected `ngrok_exporter_api_requests_total` increases by code during the failed refresh. */
  requests: Record<string, number>;
}

/**
 * Asserts the state after one failed refresh that followed a successful one:
 * the previous session gauges are still served, `ngrok_up` is 0, the failure
 * and request counters moved by exactly the expected amounts, and one error
 * line names the failure.
 */
export function expectFailedRefresh(t: TestExporter, before: string, after: string, expected: ExpectedFailure): void {
  expect(snapshotLines(after)).toEqual(snapshotLines(before));
  expect(valueOf(after, 'ngrok_up')).toBe(0);

  const failuresBefore = failuresByReason(before);
  const failuresAfter = failuresByReason(after);
  for (const reason of FAILURE_REASONS) {
    const increase = (failuresAfter[reason] as number) - (failuresBefore[reason] as number);
    expect(increase, `failures with reason ${reason}`).toBe(reason === expected.reason ? 1 : 0);
  }

  const requestsBefore = requestsByCode(before);
  const requestsAfter = requestsByCode(after);
  for (const code of new Set([...Object.keys(requestsAfter), ...Object.keys(expected.requests)])) {
    const increase = (requestsAfter[code] ?? 0) - (requestsBefore[code] ?? 0);
    expect(increase, `API requests with code ${code}`).toBe(expected.requests[code] ?? 0);
  }

  const errors = errorRecords(t.logs);
  expect(errors).toHaveLength(1);
  expect(errors[0]?.msg).toMatch(/^refresh failed/);
  expect((errors[0]?.err as { code?: string } | undefined)?.code).toBe(expected.errorCode);
}

/**
 * Runs one more refresh that fails the same way and asserts that it is
 * counted but logged at debug level only, with the number of repeats.
 */
export async function expectRepeatCounted(t: TestExporter, expected: ExpectedFailure): Promise<void> {
  const before = await t.scrape();
  const repeatsBefore = t.logs.withMessage(/^refresh failed again$/).length;

  const after = await t.refresh();

  expect(failuresByReason(after)[expected.reason]).toBe((failuresByReason(before)[expected.reason] as number) + 1);
  expect(valueOf(after, 'ngrok_up')).toBe(0);
  expect(snapshotLines(after)).toEqual(snapshotLines(before));
  expect(errorRecords(t.logs)).toHaveLength(1);
  const repeats = t.logs.withMessage(/^refresh failed again$/);
  expect(repeats).toHaveLength(repeatsBefore + 1);
  expect(repeats.at(-1)).toMatchObject({ level: 20, repeats_since_last_log: repeatsBefore + 1 });
  expect((repeats.at(-1)?.err as { code?: string } | undefined)?.code).toBe(expected.errorCode);
}
