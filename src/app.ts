/**
 * Assembles one exporter instance from a validated Config: the API client,
 * the request budget, the refresher, the self-metrics and the HTTP server.
 */
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { RequestBudget } from './budget.js';
import type { Config } from './config.js';
import { ConfigError } from './errors.js';
import type { Logger } from './logger.js';
import { createSelfMetrics, type SelfMetrics } from './metrics/self.js';
import { ApiClient } from './ngrok/client.js';
import { walkPages } from './ngrok/pages.js';
import { redactSecret } from './redact.js';
import { Refresher } from './refresher.js';
import { SessionAggregator } from './sessions/aggregate.js';
import { buildSnapshot, type Snapshot } from './sessions/snapshot.js';
import { REVISION, USER_AGENT, VERSION } from './version.js';
import { createApp } from './web/server.js';
import { basicAuth, createHttpServer, loadWebConfig } from './web/web-config.js';

export interface ExporterOptions {
  logger: Logger;
  /** Window of the request budget; 60 s except in tests. */
  budgetWindowMs?: number;
  now?: () => number;
}

/** A running exporter. */
export interface RunningExporter {
  /** Base URL of the HTTP server, such as http://127.0.0.1:10119. */
  url: string;
  server: Server;
  refresher: Refresher;
  metrics: SelfMetrics;
  budget: RequestBudget;
  /** Stops accepting connections, lets requests in flight finish, cancels the walk. */
  close(): Promise<void>;
}

/** Starts an exporter and resolves once it listens. */
export async function startExporter(config: Config, options: ExporterOptions): Promise<RunningExporter> {
  const { logger } = options;
  const now = options.now ?? Date.now;
  if (config.apiKey === undefined) {
    throw new ConfigError('NGROK_API_KEY', 'missing ngrok API key: set NGROK_API_KEY or NGROK_API_KEY_FILE.');
  }

  const webConfig = config.webConfigFile === undefined ? undefined : await loadWebConfig(config.webConfigFile);
  for (const warning of webConfig?.warnings ?? []) logger.warn({ web_config_file: config.webConfigFile }, warning);
  const budget = new RequestBudget({ limit: config.requestsPerMinute, windowMs: options.budgetWindowMs, now });
  const client = new ApiClient({ apiKey: config.apiKey, userAgent: USER_AGENT, timeoutMs: config.requestTimeoutMs, maxBodyBytes: config.maxBodyBytes });

  let refresher: Refresher | undefined;
  const metrics = createSelfMetrics({
    version: VERSION,
    revision: REVISION,
    budget,
    currentSnapshot: () => refresher?.current(),
    stalenessLimitMs: () => refresher?.stalenessLimitMs() ?? config.maxStalenessMs,
    now,
  });

  const walk = async (signal: AbortSignal): Promise<Snapshot> => {
    const aggregator = new SessionAggregator({
      labelNames: config.labels,
      nowMs: now(),
      recentWindowMs: config.recentWindowMs,
      maxLabelLength: config.maxLabelLength,
      redact: (text) => redactSecret(text, config.apiKey),
    });
    let pages = 0;
    const walkLogger = logger.child({ component: 'walk' });
    for await (const page of walkPages({ ...config, client, budget, observer: metrics.walkObserver, logger: walkLogger, signal })) {
      pages++;
      aggregator.addPage(page.sessions, page.invalidFields);
    }
    return buildSnapshot(aggregator.finish(), { pages, completedAtMs: now(), maxSeries: config.maxSeries });
  };

  refresher = new Refresher({
    walk,
    refreshIntervalMs: config.refreshIntervalMs,
    maxStalenessMs: config.maxStalenessMs,
    requestsPerMinute: config.requestsPerMinute,
    metrics,
    logger: logger.child({ component: 'refresher' }),
    now,
  });

  const app = createApp({
    config,
    refresher,
    metrics,
    logger,
    version: VERSION,
    authenticate: webConfig === undefined ? undefined : basicAuth(webConfig),
  });
  const server = createHttpServer(app, webConfig);
  let closing = false;
  server.on('request', (_request, response: ServerResponse) => {
    // Keep-alive connections would hold close() open until they time out.
    if (closing) response.setHeader('connection', 'close');
    response.once('finish', () => {
      if (closing) server.closeIdleConnections();
    });
  });
  await listen(server, config);

  const address = server.address() as AddressInfo;
  const scheme = webConfig?.tls === undefined ? 'http' : 'https';
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  logger.info({ address: `${host}:${address.port}`, tls: scheme === 'https', telemetry_path: config.telemetryPath }, 'listening');

  // The first walk starts now, so the first scrape finds data sooner.
  void refresher.refreshIfDue();

  const activeRefresher = refresher;
  return {
    url: `${scheme}://${host}:${address.port}`,
    server,
    refresher: activeRefresher,
    metrics,
    budget,
    close: async () => {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await activeRefresher.close();
      await closed;
    },
  };
}

function listen(server: Server, config: Config): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      const address = `${config.listenAddress.host}:${config.listenAddress.port}`;
      reject(new ConfigError('--web.listen-address', `cannot listen on ${address}: ${error.code ?? error.message}; choose a free port or another address with --web.listen-address.`, { cause: error }));
    };
    server.once('error', onError);
    const host = config.listenAddress.host === '' ? undefined : config.listenAddress.host;
    server.listen(config.listenAddress.port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
