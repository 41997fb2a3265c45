/**
 * Walk overhead: a full refresh of the exporter against the floor of the
 * same pages fetched with fetch and JSON.parse alone, each in a process of
 * its own, one run of each in turn. The simulator runs in a third process,
 * so its work is in both wall times and in neither CPU time.
 */
import { repeat, startSimulatorProcess, startWalker, type BenchContext } from '../context.js';
import { count, table, type Section } from '../report.js';
import { formatSummary, summarize } from '../stats.js';

/** Largest ratio of the exporter's time to the floor's. */
const MAX_OVERHEAD_RATIO = 1.3;

/** Pages each side walks before the measured runs of a size, within MAX_WARM_UP_WALKS walks. */
const WARM_UP_PAGES = 2000;
const MAX_WARM_UP_WALKS = 200;

interface Size {
  sessions: number;
  runs: number;
}

/** Requests that each measured exporter walk sent, for the requests-per-walk check. */
export interface WalkRequests {
  sessions: number;
  requests: number[];
}

export async function runWalkOverhead(context: BenchContext): Promise<{ section: Section; requests: WalkRequests[] }> {
  const sizes: Size[] = context.quick
    ? [
        { sessions: 1000, runs: 5 },
        { sessions: 10_000, runs: 3 },
      ]
    : [
        { sessions: 1000, runs: 41 },
        { sessions: 10_000, runs: 15 },
        { sessions: 100_000, runs: 3 },
      ];
  const simulator = await startSimulatorProcess({ sessions: 0 });
  const exporter = await startWalker(simulator, 'exporter');
  const floor = await startWalker(simulator, 'floor');
  const rows: string[][] = [];
  const targets: Section['targets'] = [];
  const requests: WalkRequests[] = [];

  try {
    for (const size of sizes) {
      context.log(`walk overhead: ${size.sessions} sessions, ${size.runs} runs`);
      await simulator.setAccount(size.sessions);
      // Both sides take some thousand pages to reach their steady speed: a first walk of 10,000 sessions costs twice the CPU of the twentieth.
      const warmUpWalks = Math.min(MAX_WARM_UP_WALKS, Math.max(2, Math.ceil(WARM_UP_PAGES / Math.ceil(size.sessions / 100))));
      for (let walk = 0; walk < warmUpWalks; walk++) {
        await floor.time();
        await exporter.time();
      }

      const runs = await repeat(size.runs, async (index) => {
        // Alternating the order cancels a drift of the machine's speed between the two.
        const floorFirst = index % 2 === 0;
        const floorBefore = floorFirst ? await floor.time() : undefined;
        await simulator.resetStats();
        const exporterRun = await exporter.time();
        const walkRequests = (await simulator.stats()).requests;
        const floorRun = floorBefore ?? (await floor.time());
        if (exporterRun.items !== size.sessions || floorRun.items !== size.sessions) {
          throw new Error(`walk overhead: expected ${size.sessions} sessions, the exporter listed ${exporterRun.items} and the floor ${floorRun.items}`);
        }
        return { floor: floorRun, exporter: exporterRun, walkRequests };
      });
      requests.push({ sessions: size.sessions, requests: runs.map((run) => run.walkRequests) });

      const wallRatio = summarize(runs.map((run) => run.exporter.wallMs / run.floor.wallMs));
      const cpuRatio = summarize(runs.map((run) => run.exporter.cpuMs / run.floor.cpuMs));
      rows.push([
        count(size.sessions),
        count(runs[0]?.walkRequests ?? 0),
        String(size.runs),
        formatSummary(summarize(runs.map((run) => run.floor.wallMs)), 0, 'ms'),
        formatSummary(summarize(runs.map((run) => run.exporter.wallMs)), 0, 'ms'),
        formatSummary(wallRatio, 2, '×'),
        formatSummary(summarize(runs.map((run) => run.floor.cpuMs)), 0, 'ms'),
        formatSummary(summarize(runs.map((run) => run.exporter.cpuMs)), 0, 'ms'),
        formatSummary(cpuRatio, 2, '×'),
      ]);
      targets.push({
        target: `refresh of ${count(size.sessions)} sessions ≤ ${MAX_OVERHEAD_RATIO}× the fetch + JSON.parse floor (wall and CPU)`,
        measured: `wall ${wallRatio.median.toFixed(2)}×, CPU ${cpuRatio.median.toFixed(2)}×`,
        met: wallRatio.median <= MAX_OVERHEAD_RATIO && cpuRatio.median <= MAX_OVERHEAD_RATIO,
      });
    }
  } finally {
    await exporter.close();
    await floor.close();
    await simulator.close();
  }

  const section: Section = {
    title: 'Walk overhead',
    blocks: [
      'A full refresh as `src/app.ts` builds it (ApiClient, walkPages with a budget too large to wait, SessionAggregator with the default labels, ' +
        'buildSnapshot) against the floor: the same pages fetched one after another with Node\'s `fetch` and `JSON.parse` and nothing else. ' +
        'Each runs in a child process of its own, timed there (`process.cpuUsage` for CPU), one after the other with the order alternating ' +
        'between runs; a walk leaves the V8 heap sized for itself, which slows a different walk run next in the same process. The simulator ' +
        'runs in a third process, so its work is inside both wall times and outside both CPU times. Both sides walk the account before ' +
        'the measured runs, 2,000 pages (at most 200 walks) per size, because their speed settles only after some thousand pages. ' +
        'Figures are medians with min–max; a ratio is the median of the per-run ratios.',
      table(['sessions', 'requests', 'runs', 'floor wall', 'exporter wall', 'wall ratio', 'floor CPU', 'exporter CPU', 'CPU ratio'], rows),
      'At 1,000 sessions a refresh is ten pages, so the work done once per refresh (creating the aggregator, folding and rendering the ' +
        'snapshot) weighs most against the floor, and runs of 10 to 20 ms scatter most when the machine is busy.',
    ],
    targets,
  };
  return { section, requests };
}
