/**
 * Network floor: with a fixed delay before every response, a walk can take
 * no less than pages × delay, because it requests one page after another.
 * The exporter's refresh is compared with that product, and the fetch +
 * JSON.parse walk is shown beside it as the floor Node itself reaches.
 */
import { repeat, startSimulatorProcess, startWalker, type BenchContext } from '../context.js';
import { count, table, type Section } from '../report.js';
import { formatSummary, summarize } from '../stats.js';

/** Delay of the simulator before each response, in ms. */
const LATENCY_MS = 50;

/** Largest share by which a refresh may exceed pages × latency. */
const MAX_OVERHEAD = 0.05;

/** Walks of 10,000 sessions each side makes without the delay first, to reach its steady speed. */
const WARM_UP_WALKS = 15;

export async function runNetworkFloor(context: BenchContext): Promise<Section> {
  const sizes = context.quick ? [{ sessions: 1000, runs: 2 }] : [
    { sessions: 1000, runs: 5 },
    { sessions: 10_000, runs: 3 },
  ];
  const simulator = await startSimulatorProcess({ sessions: 10_000 });
  const exporter = await startWalker(simulator, 'exporter');
  const floor = await startWalker(simulator, 'floor');
  for (let walk = 0; walk < (context.quick ? 2 : WARM_UP_WALKS); walk++) {
    await exporter.time();
    await floor.time();
  }
  await simulator.setLatency(LATENCY_MS);
  const rows: string[][] = [];
  const targets: Section['targets'] = [];

  try {
    for (const size of sizes) {
      context.log(`network floor: ${size.sessions} sessions, ${size.runs} runs at ${LATENCY_MS} ms per page`);
      await simulator.setAccount(size.sessions);

      const runs = await repeat(size.runs, async () => ({ exporter: await exporter.time(), floor: await floor.time() }));
      const pages = Math.max(1, Math.ceil(size.sessions / 100));
      const networkMs = pages * LATENCY_MS;
      const exporterOverhead = summarize(runs.map((run) => run.exporter.wallMs / networkMs - 1));
      const floorOverhead = summarize(runs.map((run) => run.floor.wallMs / networkMs - 1));
      const percent = (value: number): string => `${(value * 100).toFixed(1)} %`;
      rows.push([
        count(size.sessions),
        count(pages),
        String(size.runs),
        `${count(networkMs)} ms`,
        formatSummary(summarize(runs.map((run) => run.exporter.wallMs)), 0, 'ms'),
        `${percent(exporterOverhead.median)} (${percent(exporterOverhead.min)}–${percent(exporterOverhead.max)})`,
        formatSummary(summarize(runs.map((run) => run.floor.wallMs)), 0, 'ms'),
        `${percent(floorOverhead.median)} (${percent(floorOverhead.min)}–${percent(floorOverhead.max)})`,
      ]);
      targets.push({
        target: `refresh of ${count(size.sessions)} sessions at ${LATENCY_MS} ms per page within ${MAX_OVERHEAD * 100} % of pages × latency`,
        measured: `+${percent(exporterOverhead.median)} (fetch + JSON.parse alone: +${percent(floorOverhead.median)})`,
        met: exporterOverhead.median <= MAX_OVERHEAD,
      });
    }
  } finally {
    await exporter.close();
    await floor.close();
    await simulator.close();
  }

  return {
    title: 'Network floor',
    blocks: [
      `The simulator waits ${LATENCY_MS} ms (a timer) before each response. Both sides, each in a process of its own as in the walk ` +
        `overhead, first walk ${WARM_UP_WALKS} times 10,000 sessions without the delay. A refresh requests its pages strictly one after another, ` +
        'as the budget and the ngrok rate limit require, so pages × latency is the least it can take. The overhead is the share by which the ' +
        'refresh exceeds that; the fetch + JSON.parse walk shows how close Node itself comes. Medians with min–max.',
      table(['sessions', 'pages', 'runs', 'pages × latency', 'exporter', 'exporter overhead', 'fetch + JSON.parse', 'floor overhead'], rows),
      'Each page costs more than its delay even for the fetch + JSON.parse walk: the simulator renders the page, the body crosses the ' +
        'socket and JSON.parse reads it, and none of that overlaps the delay of the next page, which can only be requested with the cursor ' +
        'from this one. The exporter adds its parsing and counting on top: walkPages requests the next page only when the consumer asks ' +
        'for it, after it has counted the current page, so that work does not overlap the next delay either.',
    ],
    targets,
  };
}
