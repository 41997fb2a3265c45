/**
 * Starts the ngrok API simulator and an exporter pointed at it, in this
 * process, with the exporter's log lines captured for assertions.
 */
import { startExporter, type RunningExporter } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator/index.js';
import { LogCapture } from './logs.js';

/** A key in ngrok's FIRSTPART_SECONDPART form, distinctive enough to search for in any output. */
export const TEST_API_KEY = '2pZvpzbSecretKeyPart_8BsmXBrLLDv8fsFpMq5aSecret';

export interface Harness {
  simulator: Simulator;
  exporter: RunningExporter;
  logs: LogCapture;
  /** GETs a path of the exporter and returns status and body. */
  get(path: string, headers?: Record<string, string>): Promise<{ status: number; body: string; contentType: string | null }>;
  scrape(headers?: Record<string, string>): Promise<string>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  simulator?: Partial<SimulatorOptions>;
  /** Extra exporter flags. */
  argv?: string[];
  budgetWindowMs?: number;
  /** Key the exporter sends, when it differs from the one the simulator accepts. */
  exporterKey?: string;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const simulator = await startSimulator({ apiKey: TEST_API_KEY, requestsPerMinute: null, ...options.simulator });
  const config = parseConfig(
    ['--ngrok.api-url', simulator.url, '--web.listen-address', '127.0.0.1:0', '--log.level', 'debug', ...(options.argv ?? [])],
    { NGROK_API_KEY: options.exporterKey ?? TEST_API_KEY },
  );
  const logs = new LogCapture();
  const logger = createLogger({ level: config.logLevel, secret: config.apiKey, destination: logs });
  const exporter = await startExporter(config, { logger, budgetWindowMs: options.budgetWindowMs });

  const get = async (path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; contentType: string | null }> => {
    const response = await fetch(`${exporter.url}${path}`, { headers });
    return { status: response.status, body: await response.text(), contentType: response.headers.get('content-type') };
  };

  return {
    simulator,
    exporter,
    logs,
    get,
    scrape: async (headers) => (await get(config.telemetryPath, headers)).body,
    close: async () => {
      await exporter.close();
      await simulator.close();
    },
  };
}

/** Parses exposition text into samples: `name{labels}` to value. */
export function parseSamples(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    samples.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return samples;
}

/** Sums every sample of one metric name. */
export function sumOf(text: string, name: string): number {
  let sum = 0;
  for (const [series, value] of parseSamples(text)) {
    if (series === name || series.startsWith(`${name}{`)) sum += value;
  }
  return sum;
}

/** Returns the value of one unlabeled sample, or undefined. */
export function valueOf(text: string, series: string): number | undefined {
  return parseSamples(text).get(series);
}

/** Polls `check` every 20 ms until it returns true or `timeoutMs` passes. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
