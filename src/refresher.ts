/**
 * The snapshot cache. Scrapes start a refresh only when the snapshot is older
 * than the refresh interval. Concurrent scrapes share the one refresh in
 * flight, and a failed refresh waits out the interval or a longer backoff
 * before the next attempt. A walk replaces the served snapshot only when it
 * completes, in one assignment.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import { ApiError, type FailureReason } from './errors.js';
import type { Logger } from './logger.js';
import type { SelfMetrics } from './metrics/self.js';
import type { Snapshot } from './sessions/snapshot.js';

/** Maximum wait between attempts after repeated failures, unless the interval itself is longer. */
export const MAX_FAILURE_BACKOFF_MS = 10 * 60_000;

/**
 * Returns how long before the next refresh is due a scrape may start it. Prometheus
 * scrapes at a fixed interval with small jitter, so with a scrape interval equal
 * to the refresh interval, a strict comparison would skip every other refresh.
 */
export function earlyToleranceMs(intervalMs: number): number {
  return Math.min(intervalMs / 10, 5_000);
}

/** Repeats of the same failure within this period are logged at debug level only. */
const REPEAT_LOG_PERIOD_MS = 10 * 60_000;

/** Kinds of failure whose last error line is remembered, far more than the few dozen ways the API fails. */
const MAX_REMEMBERED_FAILURES = 64;

export interface RefresherOptions {
  /** Walks every page and builds a snapshot; rejects without side effects on failure. */
  walk: (signal: AbortSignal) => Promise<Snapshot>;
  refreshIntervalMs: number;
  maxStalenessMs: number;
  requestsPerMinute: number;
  metrics: SelfMetrics;
  logger: Logger;
  now?: () => number;
}

/** State shown on the landing page. */
export interface RefresherState {
  snapshot: Snapshot | undefined;
  refreshing: boolean;
  consecutiveFailures: number;
  lastFailure: { code: string; reason: FailureReason | 'unknown'; atMs: number } | undefined;
  nextAttemptAtMs: number;
  effectiveIntervalMs: number;
}

/** Owns the served snapshot and decides when to walk the API again. */
export class Refresher {
  readonly #options: RefresherOptions;
  readonly #now: () => number;
  readonly #shutdown = new AbortController();
  #snapshot: Snapshot | undefined;
  #inFlight: Promise<void> | undefined;
  #nextAttemptAtMs = 0;
  #effectiveIntervalMs: number;
  #stretchLogged = false;
  #consecutiveFailures = 0;
  #lastFailure: RefresherState['lastFailure'];
  /** Time of the last error line and the repeats logged at debug level since, by kind of failure. */
  readonly #failureLogs = new Map<string, { atMs: number; repeats: number }>();

  constructor(options: RefresherOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#effectiveIntervalMs = options.refreshIntervalMs;
    options.metrics.effectiveInterval.set(this.#effectiveIntervalMs / 1000);
  }

  /** Returns the last complete snapshot, however old. */
  current(): Snapshot | undefined {
    return this.#snapshot;
  }

  /** Returns the snapshot to serve, or undefined when none exists or it is older than the maximum staleness. */
  servable(): Snapshot | undefined {
    const snapshot = this.#snapshot;
    if (snapshot === undefined || this.#now() - snapshot.completedAtMs > this.stalenessLimitMs()) return undefined;
    return snapshot;
  }

  /**
   * Returns the age after which a snapshot is no longer served:
   * --refresh.max-staleness, or twice the effective interval when the budget
   * stretched the interval that far, because otherwise an account too large
   * for the budget would lose its gauges for part of every cycle.
   */
  stalenessLimitMs(): number {
    return Math.max(this.#options.maxStalenessMs, 2 * this.#effectiveIntervalMs);
  }

  state(): RefresherState {
    return {
      snapshot: this.#snapshot,
      refreshing: this.#inFlight !== undefined,
      consecutiveFailures: this.#consecutiveFailures,
      lastFailure: this.#lastFailure,
      nextAttemptAtMs: this.#nextAttemptAtMs,
      effectiveIntervalMs: this.#effectiveIntervalMs,
    };
  }

  /**
   * Starts a refresh when one is due and none is running. Returns the refresh
   * in flight, or undefined when none is running. The promise never rejects.
   */
  refreshIfDue(): Promise<void> | undefined {
    if (this.#inFlight !== undefined) return this.#inFlight;
    const dueAtMs = this.#nextAttemptAtMs - earlyToleranceMs(this.#options.refreshIntervalMs);
    if (this.#shutdown.signal.aborted || this.#now() < dueAtMs) return undefined;

    this.#inFlight = this.#refresh().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  /**
   * Starts a due refresh and waits for the refresh in flight, at most
   * `maxWaitMs`. The refresh carries on in the background after that.
   */
  async waitForScrape(maxWaitMs: number): Promise<void> {
    const inFlight = this.refreshIfDue();
    if (inFlight === undefined || maxWaitMs <= 0) return;

    const timer = new AbortController();
    try {
      await Promise.race([inFlight, sleep(maxWaitMs, undefined, { signal: timer.signal, ref: false })]);
    } finally {
      timer.abort();
    }
  }

  /** Cancels a running walk and waits for it to settle. */
  async close(): Promise<void> {
    this.#shutdown.abort(new Error('exporter shutting down'));
    await this.#inFlight;
  }

  async #refresh(): Promise<void> {
    const { metrics, logger } = this.#options;
    const startedAtMs = this.#now();
    const stopTimer = metrics.refreshDuration.startTimer();

    let snapshot: Snapshot;
    try {
      snapshot = await this.#options.walk(this.#shutdown.signal);
    } catch (error) {
      const durationSeconds = stopTimer();
      if (this.#shutdown.signal.aborted) {
        logger.info({ duration_seconds: durationSeconds }, 'refresh cancelled by shutdown');
        return;
      }
      this.#recordFailure(error, durationSeconds);
      return;
    }

    const durationSeconds = stopTimer();
    this.#snapshot = snapshot;
    if (this.#consecutiveFailures > 0) {
      logger.info(
        { failed_refreshes: this.#consecutiveFailures, duration_seconds: durationSeconds },
        'refresh succeeded after failures',
      );
    }
    this.#consecutiveFailures = 0;
    this.#failureLogs.clear();
    metrics.up.set(1);
    metrics.lastSuccessTimestamp.set(snapshot.completedAtMs / 1000);
    metrics.refreshes.inc({ result: 'success' });
    this.#scheduleAfterSuccess(startedAtMs, snapshot.pages);

    logger.debug(
      {
        pages: snapshot.pages,
        sessions_listed: snapshot.listed,
        sessions_active: snapshot.active,
        series: snapshot.activeSeries,
        duration_seconds: durationSeconds,
      },
      'refresh succeeded',
    );
    if (snapshot.foldedSessions > 0) {
      logger.warn(
        { folded_sessions: snapshot.foldedSessions, series: snapshot.activeSeries },
        'label combinations exceeded --sessions.max-series; the rarest were folded into the __overflow__ series',
      );
    }
    if (snapshot.duplicates > 0 || snapshot.invalidFields > 0) {
      logger.warn(
        { duplicate_sessions: snapshot.duplicates, invalid_fields: snapshot.invalidFields },
        'the API returned repeated sessions or fields of the wrong type; they were counted once or as unknown',
      );
    }
  }

  /** A walk costs one request per page, so the interval stretches until the budget covers one walk per interval. */
  #scheduleAfterSuccess(startedAtMs: number, pages: number): void {
    const { refreshIntervalMs, requestsPerMinute, logger, metrics } = this.#options;
    const budgetIntervalMs = Math.ceil((pages / requestsPerMinute) * 60_000);
    this.#effectiveIntervalMs = Math.max(refreshIntervalMs, budgetIntervalMs);
    metrics.effectiveInterval.set(this.#effectiveIntervalMs / 1000);
    this.#nextAttemptAtMs = startedAtMs + this.#effectiveIntervalMs;

    if (this.#effectiveIntervalMs > refreshIntervalMs && !this.#stretchLogged) {
      this.#stretchLogged = true;
      logger.warn(
        {
          pages,
          requests_per_minute: requestsPerMinute,
          refresh_interval_seconds: refreshIntervalMs / 1000,
          effective_interval_seconds: this.#effectiveIntervalMs / 1000,
        },
        'a walk needs more API requests than the budget allows per refresh interval; the interval was stretched to fit',
      );
    }
  }

  #recordFailure(error: unknown, durationSeconds: number): void {
    const { metrics, refreshIntervalMs } = this.#options;
    const reason = error instanceof ApiError ? error.reason : undefined;
    const code = error instanceof ApiError ? error.code : 'UNEXPECTED';

    this.#consecutiveFailures++;
    this.#lastFailure = { code, reason: reason ?? 'unknown', atMs: this.#now() };
    metrics.up.set(0);
    metrics.refreshes.inc({ result: 'failure' });
    if (reason !== undefined) metrics.refreshFailures.inc({ reason });

    const backoffMs = Math.min(
      refreshIntervalMs * 2 ** (this.#consecutiveFailures - 1),
      Math.max(refreshIntervalMs, MAX_FAILURE_BACKOFF_MS),
    );
    const retryAfterMs = error instanceof ApiError && error.retryAfterSeconds !== undefined ? error.retryAfterSeconds * 1000 : 0;
    const waitMs = Math.max(backoffMs, retryAfterMs);
    this.#nextAttemptAtMs = this.#now() + waitMs;

    this.#logFailure(error, code, { durationSeconds, waitMs });
  }

  /**
   * Logs a failure at error level, but each kind of failure (error code and
   * HTTP status) only once every REPEAT_LOG_PERIOD_MS, so two alternating
   * failures do not flood the log either. Repeats go to debug level, and the
   * next error line of that kind reports how many there were in
   * `repeats_since_last_log`.
   */
  #logFailure(error: unknown, code: string, { durationSeconds, waitMs }: { durationSeconds: number; waitMs: number }): void {
    const status = error instanceof ApiError ? error.status : undefined;
    const key = `${code}/${status ?? ''}`;
    const now = this.#now();
    const previous = this.#failureLogs.get(key);
    const fields = {
      err: error,
      status,
      ngrok_error_code: error instanceof ApiError ? error.ngrokCode : undefined,
      operation_id: error instanceof ApiError ? error.operationId : undefined,
      consecutive_failures: this.#consecutiveFailures,
      duration_seconds: durationSeconds,
      next_attempt_in_seconds: waitMs / 1000,
      serving_snapshot_age_seconds: this.#snapshot === undefined ? undefined : (now - this.#snapshot.completedAtMs) / 1000,
    };

    if (previous !== undefined && now - previous.atMs < REPEAT_LOG_PERIOD_MS) {
      previous.repeats++;
      this.#options.logger.debug({ ...fields, repeats_since_last_log: previous.repeats }, 'refresh failed again');
      return;
    }
    this.#failureLogs.delete(key);
    this.#failureLogs.set(key, { atMs: now, repeats: 0 });
    if (this.#failureLogs.size > MAX_REMEMBERED_FAILURES) this.#failureLogs.delete(this.#failureLogs.keys().next().value as string);
    const message = this.#snapshot === undefined ? 'refresh failed; no snapshot to serve yet' : 'refresh failed; serving the previous snapshot';
    this.#options.logger.error({ ...fields, repeats_since_last_log: previous?.repeats }, message);
  }
}
