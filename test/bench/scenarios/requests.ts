/**
 * Requests per walk: with nothing failing, a walk of N sessions sends
 * exactly ceil(N / 100) requests, counted where they arrive, at the
 * simulator. An empty account still needs its one request.
 */
import { startSimulatorProcess, type BenchContext } from '../context.js';
import { createExporterWalk } from '../pipeline.js';
import { count, table, type Section } from '../report.js';
import type { WalkRequests } from './walk-overhead.js';

const SIZES = [0, 1, 99, 100, 101, 250, 1000, 1001, 10_000];

/** Sizes checked again with a last page that points to an empty one, as ngrok may send. */
const TRAILING_EMPTY_PAGE_SIZES = [100, 1000];

function expectedRequests(sessions: number, trailingEmptyPage: boolean): number {
  if (trailingEmptyPage && sessions % 100 === 0) return sessions / 100 + 1;
  return Math.max(1, Math.ceil(sessions / 100));
}

async function countRequests(context: BenchContext, sizes: readonly number[], trailingEmptyPage: boolean): Promise<WalkRequests[]> {
  const simulator = await startSimulatorProcess({ sessions: 0, trailingEmptyPage });
  const walk = createExporterWalk(context.build, simulator.url);
  try {
    const results: WalkRequests[] = [];
    for (const sessions of sizes) {
      await simulator.setAccount(sessions);
      await simulator.resetStats();
      const snapshot = await walk.run();
      if (snapshot.listed !== sessions) throw new Error(`requests per walk: listed ${snapshot.listed} of ${sessions} sessions`);
      results.push({ sessions, requests: [(await simulator.stats()).requests] });
    }
    return results;
  } finally {
    await simulator.close();
  }
}

export async function runRequestsPerWalk(context: BenchContext, measuredWalks: readonly WalkRequests[]): Promise<Section> {
  context.log('requests per walk');
  const plain = [...(await countRequests(context, SIZES, false)), ...measuredWalks];
  const trailing = await countRequests(context, TRAILING_EMPTY_PAGE_SIZES, true);

  const rows = [
    ...plain.map((walk) => ({ walk, trailingEmptyPage: false })),
    ...trailing.map((walk) => ({ walk, trailingEmptyPage: true })),
  ].map(({ walk, trailingEmptyPage }) => {
    const expected = expectedRequests(walk.sessions, trailingEmptyPage);
    return {
      cells: [
        count(walk.sessions),
        trailingEmptyPage ? 'yes' : 'no',
        String(walk.requests.length),
        walk.requests.map(String).join(', '),
        String(expected),
      ],
      exact: walk.requests.every((requests) => requests === expected),
    };
  });
  const exact = rows.filter((row) => row.exact).length;

  return {
    title: 'Requests per walk',
    blocks: [
      'Requests counted by the simulator (`stats.requests`) for each walk, with no fault injected. The largest sizes are the measured walks ' +
        'of the walk-overhead runs. "Trailing empty page" means the simulator sets `next_page_uri` on a full last page too, so the walk ' +
        'ends on an empty page and needs one request more; the ngrok Go client stops on empty pages, which suggests ngrok may do this.',
      table(['sessions', 'trailing empty page', 'walks', 'requests per walk', 'expected'], rows.map((row) => [...row.cells])),
    ],
    targets: [
      {
        target: 'requests per walk = ceil(N / 100) (one for an empty account), with nothing failing',
        measured: `${exact} of ${rows.length} sizes exact`,
        met: exact === rows.length,
      },
    ],
  };
}
