/**
 * The express application: the metrics endpoint, a landing page, and
 * liveness and readiness endpoints.
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';

import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { SelfMetrics } from '../metrics/self.js';
import type { Refresher } from '../refresher.js';
import { renderLandingPage } from './landing-page.js';
import { MetricsBodies } from './metrics-body.js';

export interface AppOptions {
  config: Config;
  refresher: Refresher;
  metrics: SelfMetrics;
  logger: Logger;
  version: string;
  /** Runs before every route, such as basic auth from --web.config.file. */
  authenticate?: RequestHandler;
}

/** Header in which Prometheus sends its scrape timeout in seconds. */
const SCRAPE_TIMEOUT_HEADER = 'x-prometheus-scrape-timeout-seconds';

/**
 * Returns how long a scrape may wait for a refresh: the scrape timeout that
 * Prometheus sends minus the configured margin, or --refresh.max-wait when the
 * header is absent or invalid.
 */
export function scrapeWaitMs(header: string | undefined, config: Pick<Config, 'maxScrapeWaitMs' | 'scrapeTimeoutOffsetMs'>): number {
  const seconds = header === undefined ? Number.NaN : Number(header);
  if (!Number.isFinite(seconds) || seconds <= 0) return config.maxScrapeWaitMs;
  return Math.max(0, seconds * 1000 - config.scrapeTimeoutOffsetMs);
}

/** Builds the express application. */
export function createApp(options: AppOptions): express.Express {
  const { config, refresher, metrics, logger } = options;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  // Basic auth covers every endpoint, probes included, as in the Prometheus
  // exporter-toolkit; probes then need an Authorization header.
  if (options.authenticate !== undefined) app.use(options.authenticate);

  app.get('/-/healthy', (_request: Request, response: Response) => {
    response.type('text/plain').send('Healthy\n');
  });

  // Ready as soon as it listens: a pod that failed to reach the API must stay
  // scrapeable, or ngrok_up = 0 would never reach Prometheus.
  app.get('/-/ready', (_request: Request, response: Response) => {
    response.type('text/plain').send('Ready\n');
  });

  const bodies = new MetricsBodies(metrics);
  app.get(config.telemetryPath, async (request: Request, response: Response) => {
    await refresher.waitForScrape(scrapeWaitMs(request.get(SCRAPE_TIMEOUT_HEADER), config));

    // One snapshot is read once, so every session gauge of this scrape comes from it.
    const snapshot = refresher.servable();
    const gzip = request.acceptsEncodings('gzip', 'identity') === 'gzip';
    const body = await bodies.build(snapshot, gzip);
    response.set('content-type', metrics.registry.contentType);
    response.set('cache-control', 'no-store');
    response.set('vary', 'accept-encoding');
    if (body.gzip) response.set('content-encoding', 'gzip');
    response.set('content-length', String(body.length));
    // The parts go out as they are, without being joined into one buffer first.
    response.cork();
    for (const chunk of body.chunks) response.write(chunk);
    response.end();
  });

  app.get('/', (_request: Request, response: Response) => {
    response.set('content-type', 'text/html; charset=utf-8');
    response.send(renderLandingPage({ version: options.version, telemetryPath: config.telemetryPath, state: refresher.state(), now: Date.now() }));
  });

  app.use((_request: Request, response: Response) => {
    response.status(404).type('text/plain').send(`Not found. Metrics are at ${config.telemetryPath}\n`);
  });

  app.use((error: unknown, request: Request, response: Response, _next: NextFunction) => {
    logger.error({ err: error, path: request.path }, 'request failed');
    if (!response.headersSent) response.status(500).type('text/plain').send('Internal server error\n');
  });

  return app;
}
