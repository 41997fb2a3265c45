/**
 * Soak run: thousands of refreshes of an in-process exporter against the
 * simulator, with browser and country values that change on every refresh
 * and a failing refresh now and then. It prints the session series and the
 * memory of the process over time; both must level off.
 *
 *   npx tsx test/bench/soak.ts [--refreshes N] [--minutes M] [--sessions S]
 *   node --expose-gc --import tsx test/bench/soak.ts ...   (heap after a full GC)
 *
 * The exporter runs on a clock that jumps to the next due refresh, so the
 * loop is bounded by the refresh count and the wall-clock minutes, not by
 * --refresh.interval.
 */
import { parseArgs } from 'node:util';

import { startExporter } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { formatTime, startSimulator, type AppSession, type Fault } from '../../src/simulator/index.js';

const SOAK_API_KEY = '2soak000000000000000000_soakKeyNotASecret000';
/** Distinct browsers and countries in each refresh; their names change every refresh. */
const BROWSERS_PER_REFRESH = 20;
const COUNTRIES_PER_REFRESH = 8;
/**
 * Minimum clock advance per refresh: at 120 requests per minute, 10 s leave
 * room for the 10 pages of 1,000 sessions and the budget's margin.
 */
const CLOCK_STEP_MS = 10_000;

interface Sample {
  refresh: number;
  elapsedSeconds: number;
  series: number;
  failures: number;
  rssMiB: number;
  heapUsedMiB: number;
}

const { values } = parseArgs({
  options: {
    refreshes: { type: 'string', default: '3000' },
    minutes: { type: 'string', default: '5' },
    sessions: { type: 'string', default: '1000' },
  },
});
const maxRefreshes = positiveInteger('--refreshes', values.refreshes);
const maxMinutes = positiveNumber('--minutes', values.minutes);
const sessionCount = positiveInteger('--sessions', values.sessions);

function positiveInteger(flag: string, text: string | undefined): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${flag} must be a whole number of at least 1, got ${JSON.stringify(text)}`);
  return value;
}

function positiveNumber(flag: string, text: string | undefined): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${flag} must be a number above 0, got ${JSON.stringify(text)}`);
  return value;
}

/** Sessions of refresh `refresh`: the same ids each time, with browser and country names never used before. */
function rotatedSessions(refresh: number, nowMs: number): AppSession[] {
  return Array.from({ length: sessionCount }, (_, index) => ({
    id: `as_${String(index).padStart(7, '0')}`,
    uri: `https://api.ngrok.com/app/sessions/as_${index}`,
    public_url: 'https://app.example.com',
    browser_session: {
      user_agent: { raw: 'Mozilla/5.0', browser_name: `Browser ${refresh}.${index % BROWSERS_PER_REFRESH}`, device_type: index % 3 === 0 ? 'Mobile' : 'Desktop' },
      location: { country_code: `C${refresh}-${index % COUNTRIES_PER_REFRESH}` },
    },
    application_user: { id: `au_${index % 300}`, uri: `https://api.ngrok.com/app/users/au_${index % 300}` },
    last_active: formatTime(nowMs - (index % 600) * 1000),
    expires_at: formatTime(nowMs + 86_400_000),
  }));
}

/** Returns a fault for every seventh refresh, cycling through the kinds of failure. */
function faultFor(refresh: number, apiUrl: string): Fault | undefined {
  if (refresh % 7 !== 0) return undefined;
  const faults: Fault[] = [
    { kind: 'respond', status: 503, body: '<html>unavailable</html>', contentType: 'text/html' },
    { kind: 'destroy', afterBytes: 100 },
    { kind: 'corrupt', corruption: 'invalid-json' },
    { kind: 'rewrite', rewrite: (page) => ({ ...page, next_page_uri: `${apiUrl.replace('127.0.0.1', 'evil.example')}/app/sessions` }) },
  ];
  return faults[(refresh / 7) % faults.length];
}

function sampleMemory(): { rssMiB: number; heapUsedMiB: number } {
  globalThis.gc?.();
  const usage = process.memoryUsage();
  return { rssMiB: usage.rss / 1024 / 1024, heapUsedMiB: usage.heapUsed / 1024 / 1024 };
}

function readGauge(text: string, name: string): number {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  return line === undefined ? Number.NaN : Number(line.slice(name.length + 1));
}

function sumGauge(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function main(): Promise<void> {
  let nowMs = Date.now();
  const now = (): number => nowMs;
  const simulator = await startSimulator({ apiKey: SOAK_API_KEY, sessions: rotatedSessions(0, nowMs), now, requestsPerMinute: null });
  const config = parseConfig(
    [
      '--ngrok.api-url', simulator.url,
      '--web.listen-address', '127.0.0.1:0',
      '--refresh.interval=1s',
      '--ngrok.requests-per-minute=120',
      '--ngrok.max-retries=0',
      '--ngrok.timeout=2s',
      '--refresh.max-wait=30s',
    ],
    { NGROK_API_KEY: SOAK_API_KEY },
  );
  const logger = createLogger({ level: 'error', secret: config.apiKey, destination: { write: () => undefined } });
  const exporter = await startExporter(config, { logger, now });
  const scrape = async (): Promise<string> => (await fetch(`${exporter.url}/metrics`)).text();

  const startedAt = Date.now();
  const deadline = startedAt + maxMinutes * 60_000;
  const reportEvery = Math.max(1, Math.floor(maxRefreshes / 25));
  const samples: Sample[] = [];
  let failures = 0;
  let refresh = 0;

  console.log(`soak: ${sessionCount} sessions, up to ${maxRefreshes} refreshes or ${maxMinutes} min, gc after each sample: ${globalThis.gc === undefined ? 'no (run with --expose-gc)' : 'yes'}`);
  console.log('refresh  elapsed_s  series  failures  rss_MiB  heap_used_MiB');
  while (refresh < maxRefreshes && Date.now() < deadline) {
    refresh++;
    simulator.account.set(rotatedSessions(refresh, nowMs));
    const fault = faultFor(refresh, simulator.url);
    if (fault !== undefined) simulator.injectFault(fault);

    // The budget reads the same clock, so the clock moves on far enough for the requests of one walk.
    nowMs = Math.max(nowMs + CLOCK_STEP_MS, exporter.refresher.state().nextAttemptAtMs);
    await scrape();
    while (exporter.refresher.state().refreshing) await new Promise((resolve) => setTimeout(resolve, 1));
    simulator.clearFaults();
    // The simulator runs in this process; its request log would otherwise count toward the heap.
    simulator.stats.reset();
    const text = await scrape();

    const up = readGauge(text, 'ngrok_up');
    if (fault !== undefined) {
      failures++;
      if (up !== 0) throw new Error(`refresh ${refresh} should have failed`);
    } else if (up !== 1 || sumGauge(text, 'ngrok_app_sessions_active') !== sessionCount) {
      throw new Error(`refresh ${refresh} did not count ${sessionCount} active sessions: ngrok_up ${up}, sum ${sumGauge(text, 'ngrok_app_sessions_active')}`);
    }

    if (refresh % reportEvery === 0 || refresh === 1) {
      const sample: Sample = {
        refresh,
        elapsedSeconds: (Date.now() - startedAt) / 1000,
        series: readGauge(text, 'ngrok_exporter_session_series'),
        failures,
        ...sampleMemory(),
      };
      samples.push(sample);
      console.log(
        `${String(sample.refresh).padStart(7)}  ${sample.elapsedSeconds.toFixed(1).padStart(9)}  ${String(sample.series).padStart(6)}  ${String(sample.failures).padStart(8)}  ${sample.rssMiB.toFixed(1).padStart(7)}  ${sample.heapUsedMiB.toFixed(1).padStart(13)}`,
      );
    }
  }

  await exporter.close();
  await simulator.close();
  summarize(samples, refresh);
}

/** Compares the second quarter of the run with the last sample, after warm-up. */
function summarize(samples: Sample[], refreshes: number): void {
  const last = samples.at(-1);
  const settled = samples[Math.floor(samples.length / 4)];
  if (last === undefined || settled === undefined || samples.length < 4) {
    console.log(`${refreshes} refreshes; too few samples for a trend`);
    return;
  }
  const growth = (from: number, to: number): string => `${(to - from).toFixed(1)} MiB (${(((to - from) / from) * 100).toFixed(1)} %)`;
  console.log(`${refreshes} refreshes in ${last.elapsedSeconds.toFixed(0)} s`);
  console.log(`series: ${settled.series} at refresh ${settled.refresh}, ${last.series} at refresh ${last.refresh}`);
  console.log(`rss from refresh ${settled.refresh} to ${last.refresh}: ${growth(settled.rssMiB, last.rssMiB)}`);
  console.log(`heap used from refresh ${settled.refresh} to ${last.refresh}: ${growth(settled.heapUsedMiB, last.heapUsedMiB)}`);
}

await main();
