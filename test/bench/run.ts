/**
 * `npm run bench`: measures how close the exporter comes to the limits of
 * its job and writes the figures to BENCHMARKS.md.
 *
 *   npm run bench                    every scenario, the runs published in BENCHMARKS.md
 *   npm run bench -- --quick --output=/tmp/bench.md
 *                                    fewer and shorter runs, to try a change out
 *   npm run bench -- --only=scrape   one scenario (walk, network, requests, memory, peer, scrape)
 *
 * The requests scenario also reports the walks of the walk scenario, when
 * that one runs too.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { compileExporter, loadExporterBuild } from './build.js';
import type { BenchContext } from './context.js';
import { describeMachine, describeRevision, loadAverages } from './machine.js';
import { writeReport, type Section } from './report.js';
import { runMemoryGrowth } from './scenarios/memory-growth.js';
import { runNetworkFloor } from './scenarios/network-floor.js';
import { runPeer } from './scenarios/peer.js';
import { runRequestsPerWalk } from './scenarios/requests.js';
import { runScrape } from './scenarios/scrape.js';
import { runWalkOverhead, type WalkRequests } from './scenarios/walk-overhead.js';

const SCENARIOS = ['walk', 'network', 'requests', 'memory', 'peer', 'scrape'] as const;
type Scenario = (typeof SCENARIOS)[number];

const NOTES = [
  'The exporter is measured as `npm run build` compiles it into dist/ (the benchmark compiles first), which is what `npm start` and the ' +
    'image run; tsx\'s on-the-fly transform wraps every named closure in a helper call and would double the cost of page parsing. ' +
    'The simulator (`src/simulator`, rate limit off) runs as a real HTTP server on 127.0.0.1 in a child process of its own. ' +
    'The machine was shared with other work while it ran, as the load averages show; figures with wide ranges are the ones it disturbed.',
];

function parseCommandLine(): { quick: boolean; output: string; only: Set<Scenario> } {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      output: { type: 'string', default: fileURLToPath(new URL('../../BENCHMARKS.md', import.meta.url)) },
      only: { type: 'string' },
    },
  });
  const only = values.only === undefined ? [...SCENARIOS] : values.only.split(',');
  const unknown = only.filter((name) => !(SCENARIOS as readonly string[]).includes(name));
  if (unknown.length > 0) throw new Error(`--only names unknown scenario ${JSON.stringify(unknown[0])}; choose from ${SCENARIOS.join(', ')}`);
  return { quick: values.quick, output: values.output, only: new Set(only as Scenario[]) };
}

async function main(): Promise<void> {
  const options = parseCommandLine();
  const started = performance.now();
  const loadBefore = loadAverages();
  const log = (message: string): void => {
    process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}\n`);
  };

  log('compiling src/ into dist/');
  compileExporter();
  const context: BenchContext = { build: await loadExporterBuild(), quick: options.quick, log };

  const sections: Section[] = [];
  let walkRequests: WalkRequests[] = [];
  if (options.only.has('walk')) {
    const walk = await runWalkOverhead(context);
    sections.push(walk.section);
    walkRequests = walk.requests;
  }
  if (options.only.has('network')) sections.push(await runNetworkFloor(context));
  if (options.only.has('requests')) sections.push(await runRequestsPerWalk(context, walkRequests));
  if (options.only.has('memory')) sections.push(await runMemoryGrowth(context));
  if (options.only.has('peer')) sections.push(await runPeer(context));
  if (options.only.has('scrape')) sections.push(await runScrape(context));

  const argv = process.argv.slice(2);
  writeReport(options.output, {
    machine: describeMachine(),
    revision: describeRevision(fileURLToPath(new URL('../../', import.meta.url))),
    command: argv.length === 0 ? 'npm run bench' : `npm run bench -- ${argv.join(' ')}`,
    durationSeconds: (performance.now() - started) / 1000,
    loadBefore,
    loadAfter: loadAverages(),
    sections,
    notes: NOTES,
  });
  log(`wrote ${options.output}`);
}

await main();
