/**
 * Memory: peak resident memory of a refresh over the idle process, each
 * refresh in a fresh child process so the simulator's memory and earlier
 * runs stay out. Two sweeps separate the cost per session from the cost per
 * label combination: more sessions at the default labels, and more label
 * combinations at 100,000 sessions. Peak RSS follows the garbage collector's
 * timing, so the split uses the live heap after the last page instead.
 */
import { measureIsolatedWalk, repeat, startSimulatorProcess, type BenchContext, type IsolatedWalk } from '../context.js';
import { count, mebibytes, table, type Section } from '../report.js';
import { formatSummary, summarize } from '../stats.js';

/** Largest growth of resident memory during a walk of 100,000 sessions. */
const MAX_GROWTH_BYTES = 64 * 1024 * 1024;

const SIX_LABELS = 'country,device_type,browser,os,endpoint,public_url';
const DEFAULT_LABELS = 'country,device_type,browser,route';

/** Caps each semi-space of V8's young generation at 4 MiB. */
const SMALL_SEMI_SPACE = '--max-semi-space-size=4';

export interface MemoryCase {
  sessions: number;
  labels: string;
  /** Endpoints to spread the sessions over; the synthetic catalog when absent. */
  endpoints?: number;
  /** Options of the Node process that walks. */
  nodeOptions?: string[];
}

interface MemoryResult {
  memoryCase: MemoryCase;
  runs: IsolatedWalk[];
}

const growth = (run: IsolatedWalk): number => run.peakRssBytes - run.idleRssBytes;
const retained = (run: IsolatedWalk): number => run.retainedHeapBytes - run.idleHeapBytes;
const live = (run: IsolatedWalk): number => (run.liveHeapBytes ?? run.idleHeapBytes) - run.idleHeapBytes;

export async function runMemoryGrowth(context: BenchContext): Promise<Section> {
  const runs = context.quick ? 1 : 3;
  const sessionSweep: MemoryCase[] = (context.quick ? [10_000] : [10_000, 50_000, 100_000]).map((sessions) => ({ sessions, labels: DEFAULT_LABELS }));
  const largest = sessionSweep[sessionSweep.length - 1]?.sessions ?? 0;
  const seriesSweep: MemoryCase[] = [
    { sessions: largest, labels: 'country' },
    { sessions: largest, labels: SIX_LABELS },
    { sessions: largest, labels: SIX_LABELS, endpoints: 50 },
  ];
  // V8 in Node 20 grows each semi-space of the young generation up to 16 MiB while garbage arrives as fast as during a walk.
  const smallYoungGeneration: MemoryCase = { sessions: largest, labels: DEFAULT_LABELS, nodeOptions: [SMALL_SEMI_SPACE] };

  const simulator = await startSimulatorProcess({ sessions: 0 });
  const results: MemoryResult[] = [];
  try {
    for (const memoryCase of [...sessionSweep, ...seriesSweep, smallYoungGeneration]) {
      context.log(`memory: ${memoryCase.sessions} sessions, labels ${memoryCase.labels}${memoryCase.endpoints === undefined ? '' : `, ${memoryCase.endpoints} endpoints`} ${memoryCase.nodeOptions?.join(' ') ?? ''}`);
      await simulator.setAccount(memoryCase.sessions, memoryCase.endpoints);
      const spec = { lister: 'exporter' as const, accountSessions: memoryCase.sessions, argv: ['--sessions.labels', memoryCase.labels], probeLiveHeap: true };
      const caseRuns = await repeat(runs, () => measureIsolatedWalk(simulator, spec, memoryCase.nodeOptions));
      results.push({ memoryCase, runs: caseRuns });
    }
  } finally {
    await simulator.close();
  }

  const rows = results.map(({ memoryCase, runs: caseRuns }) => [
    count(memoryCase.sessions),
    memoryCase.labels.replaceAll(',', ', ') +
      (memoryCase.endpoints === undefined ? '' : ` (${memoryCase.endpoints} endpoints)`) +
      (memoryCase.nodeOptions === undefined ? '' : `, node ${memoryCase.nodeOptions.join(' ')}`),
    count(caseRuns[0]?.combinations ?? 0),
    count(caseRuns[0]?.series ?? 0),
    String(caseRuns.length),
    formatSummary(summarize(caseRuns.map((run) => run.idleRssBytes / 2 ** 20)), 1, 'MiB'),
    formatSummary(summarize(caseRuns.map((run) => growth(run) / 2 ** 20)), 1, 'MiB'),
    formatSummary(summarize(caseRuns.map((run) => live(run) / 2 ** 20)), 2, 'MiB'),
    formatSummary(summarize(caseRuns.map((run) => retained(run) / 2 ** 20)), 2, 'MiB'),
    formatSummary(summarize(caseRuns.map((run) => run.wallMs)), 0, 'ms'),
  ]);

  const median = (memoryCase: MemoryCase | undefined, measureOf: (run: IsolatedWalk) => number): number =>
    summarize(results.find((result) => result.memoryCase === memoryCase)?.runs.map(measureOf) ?? [0]).median;
  const combinationsOf = (memoryCase: MemoryCase | undefined): number => results.find((result) => result.memoryCase === memoryCase)?.runs[0]?.combinations ?? 0;
  const smallest = sessionSweep[0];
  const biggest = sessionSweep[sessionSweep.length - 1];
  const fewSeries = seriesSweep[0];
  const manySeries = seriesSweep[seriesSweep.length - 1];

  // Slopes between the ends of each sweep; the other quantity changes little within a sweep.
  const perSession = (median(biggest, live) - median(smallest, live)) / Math.max(1, (biggest?.sessions ?? 0) - (smallest?.sessions ?? 0));
  const perCombination = (median(manySeries, live) - median(fewSeries, live)) / Math.max(1, combinationsOf(manySeries) - combinationsOf(fewSeries));
  const sessionShare = perSession * (biggest?.sessions ?? 0);
  const combinationShare = perCombination * combinationsOf(biggest);
  const growthAtLargest = median(biggest, growth);

  return {
      title: 'Memory',
      blocks: [
        'Each refresh runs in a fresh child process (`test/bench/walk-process.ts`, started with `--expose-gc`) against the simulator in another. ' +
          'The child walks one page to load its code and collects garbage; then it reads its idle RSS, resets the kernel\'s peak counter ' +
          '(`/proc/self/clear_refs`, VmHWM), also sampling RSS every 5 ms, and walks every page. Growth is peak RSS minus idle RSS. Retained ' +
          'is the V8 heap in use after a full collection with the snapshot still referenced, minus the idle heap: what stays between refreshes. ' +
          'Live at the last page is the same after the last page, while the aggregator still holds the whole walk (that collection runs ' +
          'inside the walk, so these walls include it). ' +
          '"Combinations" are the label combinations the aggregator held; "series" are those of `ngrok_app_sessions_active` after folding ' +
          'at `--sessions.max-series` (10,000). Medians with min–max.',
        table(['sessions', 'labels', 'combinations', 'series', 'runs', 'idle RSS', 'peak growth', 'live at the last page', 'retained heap', 'wall'], rows),
        `From the ends of the two sweeps: about ${Math.round(perSession)} bytes of live heap per session (default labels, ` +
          `${count(smallest?.sessions ?? 0)} to ${count(biggest?.sessions ?? 0)} sessions) and about ${Math.round(perCombination)} bytes per ` +
          `label combination (${count(combinationsOf(fewSeries))} to ${count(combinationsOf(manySeries))} combinations at ` +
          `${count(biggest?.sessions ?? 0)} sessions). At ${count(biggest?.sessions ?? 0)} sessions with the default labels that is ` +
          `${mebibytes(sessionShare)} for the sessions against ${mebibytes(combinationShare)} for the ${count(combinationsOf(biggest))} combinations. ` +
          'Peak RSS depends on when V8 collects garbage, so single runs scatter by several MiB, and the peak growth is mostly garbage of ' +
          'pages already counted that the collector has not reclaimed yet: V8 in Node 20 lets its new space grow to two semi-spaces of ' +
          `16 MiB (32 MiB, read from v8.getHeapSpaceStatistics) while a walk allocates, which the last row caps with \`node ${SMALL_SEMI_SPACE}\`. The live heap per session is the session ` +
          'id, kept to count each session once, and a share of the application user ids, kept to count distinct users.',
      ],
      targets: [
        {
          target: `peak RSS growth during a walk of ${count(biggest?.sessions ?? 0)} sessions < 64 MiB`,
          measured: mebibytes(growthAtLargest),
          met: growthAtLargest < MAX_GROWTH_BYTES,
        },
        {
          target: 'cost per series, not per session, dominates the memory a walk holds',
          measured: `${mebibytes(sessionShare)} for sessions vs ${mebibytes(combinationShare)} for combinations at ${count(biggest?.sessions ?? 0)} sessions`,
          met: combinationShare > sessionShare,
        },
      ],
  };
}
