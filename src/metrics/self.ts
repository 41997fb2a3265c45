/**
 * The exporter's own metrics: health of the last refresh, API requests by
 * outcome, retries, the request budget, build info and prom-client's process
 * metrics, in registries created per exporter instance.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';

import type { RequestBudget } from '../budget.js';
import { FAILURE_REASONS } from '../errors.js';
import type { WalkObserver } from '../ngrok/pages.js';
import type { Snapshot } from '../sessions/snapshot.js';

export interface SelfMetricsOptions {
  version: string;
  revision: string;
  budget: RequestBudget;
  /** The snapshot being served, read at each scrape. */
  currentSnapshot: () => Snapshot | undefined;
  /** Age after which the snapshot is no longer served; see Refresher.stalenessLimitMs. */
  stalenessLimitMs: () => number;
  now?: () => number;
}

export interface SelfMetrics {
  /** Every self-metric: the process metrics first, then the exporter's. */
  registry: Registry;
  /** prom-client's process and Node.js metrics alone, which cost over a millisecond to collect. */
  processRegistry: Registry;
  /** The exporter's own metrics alone (`ngrok_up`, `ngrok_exporter_*`). */
  exporterRegistry: Registry;
  up: Gauge;
  lastSuccessTimestamp: Gauge;
  refreshDuration: Histogram;
  refreshes: Counter<'result'>;
  refreshFailures: Counter<'reason'>;
  effectiveInterval: Gauge;
  /** Counts API requests, retries and 429 responses for the page walk. */
  walkObserver: WalkObserver;
}

/** Creates the self-metrics in new registries. */
export function createSelfMetrics(options: SelfMetricsOptions): SelfMetrics {
  const processRegistry = new Registry();
  const exporterRegistry = new Registry();
  const registers = [exporterRegistry];
  const now = options.now ?? Date.now;

  collectDefaultMetrics({ register: processRegistry });

  const up = new Gauge({ name: 'ngrok_up', help: '1 when the last refresh from the ngrok API succeeded, 0 when it failed or none has finished yet.', registers });
  up.set(0);

  const lastSuccessTimestamp = new Gauge({
    name: 'ngrok_exporter_last_refresh_success_timestamp_seconds',
    help: 'Unix time at which the last successful refresh completed; 0 before the first one.',
    registers,
  });
  lastSuccessTimestamp.set(0);

  new SnapshotAgeGauge(options.currentSnapshot, now, registers);

  new Gauge({
    name: 'ngrok_exporter_snapshot_stale',
    help: '1 when no snapshot exists or it is older than --refresh.max-staleness (or twice the stretched refresh interval), so the session gauges are not served.',
    registers,
    collect() {
      const snapshot = options.currentSnapshot();
      this.set(snapshot === undefined || now() - snapshot.completedAtMs > options.stalenessLimitMs() ? 1 : 0);
    },
  });

  const refreshDuration = new Histogram({
    name: 'ngrok_exporter_refresh_duration_seconds',
    help: 'Duration of refreshes, successful or not, including waits for the request budget and retries.',
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
    registers,
  });

  const refreshes = new Counter({ name: 'ngrok_exporter_refreshes_total', help: 'Refreshes finished, by result.', labelNames: ['result'], registers });
  refreshes.inc({ result: 'success' }, 0);
  refreshes.inc({ result: 'failure' }, 0);

  const refreshFailures = new Counter({
    name: 'ngrok_exporter_refresh_failures_total',
    help: 'Failed refreshes, by reason.',
    labelNames: ['reason'],
    registers,
  });
  for (const reason of FAILURE_REASONS) refreshFailures.inc({ reason }, 0);

  const requests = new Counter({
    name: 'ngrok_exporter_api_requests_total',
    help: 'Requests sent to the ngrok API, by HTTP status code; "error" when no response arrived.',
    labelNames: ['code'],
    registers,
  });
  const retries = new Counter({ name: 'ngrok_exporter_api_retries_total', help: 'Page requests retried after a network error, timeout, 429 or 5xx.', registers });
  const rateLimited = new Counter({ name: 'ngrok_exporter_api_rate_limited_total', help: 'Responses with HTTP 429 (rate limited) from the ngrok API.', registers });

  new Gauge({
    name: 'ngrok_exporter_budget_requests_per_minute',
    help: 'API requests the exporter may send per rolling minute (--ngrok.requests-per-minute).',
    registers,
  }).set(options.budget.limit);

  new Gauge({
    name: 'ngrok_exporter_budget_tokens_remaining',
    help: 'API requests the exporter may still send in the current rolling minute.',
    registers,
    collect() {
      this.set(options.budget.remaining());
    },
  });

  const effectiveInterval = new Gauge({
    name: 'ngrok_exporter_refresh_interval_seconds',
    help: 'Effective refresh interval: --refresh.interval, stretched when a walk needs more requests than the budget allows in one interval.',
    registers,
  });

  new Gauge({
    name: 'ngrok_exporter_build_info',
    help: 'Build information of the exporter; always 1.',
    labelNames: ['version', 'revision', 'nodejs_version'],
    registers,
  }).set({ version: options.version, revision: options.revision, nodejs_version: process.version }, 1);

  const walkObserver: WalkObserver = {
    request: (code) => requests.inc({ code }),
    retry: () => retries.inc(),
    rateLimited: () => rateLimited.inc(),
  };

  const registry = Registry.merge([processRegistry, exporterRegistry]);
  return { registry, processRegistry, exporterRegistry, up, lastSuccessTimestamp, refreshDuration, refreshes, refreshFailures, effectiveInterval, walkObserver };
}

/**
 * The age of the served snapshot. prom-client prints 0 for a gauge without
 * labels that was never set, which would read as a fresh snapshot, so this
 * gauge leaves out its sample until a snapshot exists.
 */
class SnapshotAgeGauge extends Gauge {
  readonly #currentSnapshot: () => Snapshot | undefined;

  constructor(currentSnapshot: () => Snapshot | undefined, now: () => number, registers: Registry[]) {
    super({
      name: 'ngrok_exporter_snapshot_age_seconds',
      help: 'Age of the snapshot that the session gauges come from; absent before the first successful refresh.',
      registers,
      collect() {
        const snapshot = currentSnapshot();
        if (snapshot !== undefined) this.set(Math.max(0, (now() - snapshot.completedAtMs) / 1000));
      },
    });
    this.#currentSnapshot = currentSnapshot;
  }

  override async get(): Promise<MetricObjectWithValues<MetricValue<string>>> {
    const metric = await super.get();
    return this.#currentSnapshot() === undefined ? { ...metric, values: [] } : metric;
  }
}
