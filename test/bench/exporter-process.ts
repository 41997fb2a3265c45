/**
 * Runs a complete exporter (startExporter, as src/main.ts does) in a process
 * of its own for the scrape benchmark, so the load generator in the parent
 * does not share its CPU time. Ready once the first walk has finished.
 */
import { loadExporterBuild } from './build.js';
import { readSpec, runChild, serveCommands } from './child.js';
import { BENCH_API_KEY, MAX_BENCH_PAGES } from './pipeline.js';

export interface ExporterSpec {
  apiUrl: string;
  /** Extra exporter flags, such as `--sessions.labels`. */
  argv: string[];
}

export interface ExporterReady {
  url: string;
  telemetryPath: string;
  series: number;
  listed: number;
}

/** Maximum wait for the first walk. */
const FIRST_WALK_TIMEOUT_MS = 300_000;

const discard = { write: (): void => undefined };

runChild(async () => {
  const spec = readSpec<ExporterSpec>();
  const build = await loadExporterBuild();
  // A long interval keeps walks out of the measurement; the one-millisecond budget window never makes the first walk wait.
  const argv = [
    '--ngrok.api-url', spec.apiUrl,
    '--web.listen-address', '127.0.0.1:0',
    '--ngrok.max-pages', String(MAX_BENCH_PAGES),
    '--refresh.interval', '1h',
    '--refresh.max-staleness', '2h',
    ...spec.argv,
  ];
  const config = build.config.parseConfig(argv, { NGROK_API_KEY: BENCH_API_KEY });
  const logger = build.logger.createLogger({ level: 'error', secret: config.apiKey, destination: discard });
  const exporter = await build.app.startExporter(config, { logger, budgetWindowMs: 1 });

  const deadline = Date.now() + FIRST_WALK_TIMEOUT_MS;
  while (exporter.refresher.current() === undefined) {
    const failure = exporter.refresher.state().lastFailure;
    if (failure !== undefined) throw new Error(`the first walk failed: ${failure.code} (${failure.reason})`);
    if (Date.now() > deadline) throw new Error(`the first walk did not finish within ${FIRST_WALK_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  const snapshot = exporter.refresher.current();
  const ready: ExporterReady = { url: exporter.url, telemetryPath: config.telemetryPath, series: snapshot?.activeSeries ?? 0, listed: snapshot?.listed ?? 0 };
  serveCommands(ready, { cpu: () => process.cpuUsage() }, () => exporter.close());
});
