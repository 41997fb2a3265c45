/**
 * The exporter's refresh as src/app.ts assembles it (ApiClient, walkPages,
 * SessionAggregator, buildSnapshot, with the self-metrics as walk observer),
 * and the floor it is measured against: the same pages fetched one after
 * another with Node's fetch and JSON.parse, nothing else.
 */
import type { Config } from '../../src/config.js';
import type { SelfMetrics } from '../../src/metrics/self.js';
import type { Snapshot } from '../../src/sessions/snapshot.js';
import type { ExporterBuild } from './build.js';

/** A key in ngrok's FIRSTPART_SECONDPART form, shared by the simulator and the clients of the benchmark. */
export const BENCH_API_KEY = '2bench0000000000000000_benchmarkKeyNotASecret0';

/** Budget so large that no benchmark walk ever waits for a token. */
const UNTHROTTLED_REQUESTS = 100_000_000;

/** Most pages any benchmark walk may follow; the largest account has 1,000. */
export const MAX_BENCH_PAGES = 5_000;

/** One exporter walk, ready to run against a simulator. */
export interface ExporterWalk {
  config: Config;
  metrics: SelfMetrics;
  /**
   * Walks every page and builds the snapshot; `maxPages` stops early, for
   * warming up. `afterLastPage` runs while the aggregator still contains the
   * whole walk, before it hands over its totals.
   */
  run(maxPages?: number, afterLastPage?: () => void): Promise<Snapshot>;
  /** Label combinations of the last walk before folding: what the aggregator held. */
  readonly combinations: number;
}

/** Log lines are dropped: the walk logs nothing at info level unless a request fails. */
const discard = { write: (): void => undefined };

/** Builds the refresh pipeline of src/app.ts for `apiUrl` with extra exporter flags. */
export function createExporterWalk(build: ExporterBuild, apiUrl: string, argv: string[] = []): ExporterWalk {
  const config = build.config.parseConfig(['--ngrok.api-url', apiUrl, '--ngrok.max-pages', String(MAX_BENCH_PAGES), ...argv], { NGROK_API_KEY: BENCH_API_KEY });
  const apiKey = config.apiKey;
  if (apiKey === undefined) throw new Error('the benchmark configuration has no API key');

  const logger = build.logger.createLogger({ level: 'info', secret: apiKey, destination: discard });
  const budget = new build.budget.RequestBudget({ limit: UNTHROTTLED_REQUESTS });
  const client = new build.client.ApiClient({ apiKey, userAgent: build.version.USER_AGENT, timeoutMs: config.requestTimeoutMs, maxBodyBytes: config.maxBodyBytes });
  const metrics = build.selfMetrics.createSelfMetrics({ version: 'bench', revision: 'bench', budget, currentSnapshot: () => undefined, stalenessLimitMs: () => config.maxStalenessMs });
  // The refresher passes its shutdown signal to every walk, so each request combines it with its deadline.
  const shutdown = new AbortController();
  let combinations = 0;

  const run = async (maxPages = Infinity, afterLastPage?: () => void): Promise<Snapshot> => {
    const aggregator = new build.aggregate.SessionAggregator({
      labelNames: config.labels,
      nowMs: Date.now(),
      recentWindowMs: config.recentWindowMs,
      maxLabelLength: config.maxLabelLength,
    });
    let pages = 0;
    const walkLogger = logger.child({ component: 'walk' });
    const walk = build.pages.walkPages({ ...config, client, budget, observer: metrics.walkObserver, logger: walkLogger, signal: shutdown.signal });
    for await (const page of walk) {
      pages++;
      aggregator.addPage(page.sessions, page.invalidFields);
      if (pages >= maxPages) break;
    }
    afterLastPage?.();
    const result = aggregator.finish();
    combinations = result.series.size;
    return build.snapshot.buildSnapshot(result, { pages, completedAtMs: Date.now(), maxSeries: config.maxSeries });
  };
  return {
    config,
    metrics,
    run,
    get combinations() {
      return combinations;
    },
  };
}

/** Result of one floor walk. */
export interface FloorResult {
  pages: number;
  sessions: number;
}

/**
 * Fetches every page with Node's fetch and JSON.parse, following
 * `next_page_uri` with the headers the API needs and nothing else: no
 * budget, retries, deadline, body cap, parsing of sessions or aggregation.
 * `maxPages` stops early, for warming up.
 */
export async function walkFloor(apiUrl: string, maxPages = MAX_BENCH_PAGES): Promise<FloorResult> {
  const headers = { authorization: `Bearer ${BENCH_API_KEY}`, 'ngrok-version': '2' };
  let url: string | null = new URL('app/sessions?limit=100', apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`).href;
  let pages = 0;
  let sessions = 0;
  while (url !== null && pages < maxPages) {
    const response = await fetch(url, { headers });
    const page = JSON.parse(await response.text()) as { application_sessions: unknown[]; next_page_uri: string | null };
    if (response.status !== 200) throw new Error(`floor walk: GET ${url} returned HTTP ${response.status}`);
    pages++;
    sessions += page.application_sessions.length;
    url = page.application_sessions.length === 0 ? null : page.next_page_uri;
  }
  return { pages, sessions };
}
