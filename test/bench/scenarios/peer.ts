/**
 * Peer: the same accounts listed with the official `@ngrok/ngrok-api`
 * client for Node (0.11.0) and with the exporter, each listing in a fresh
 * process as in the memory scenario, requests counted at the simulator.
 */
import { measureIsolatedWalk, repeat, startSimulatorProcess, type BenchContext, type IsolatedWalk } from '../context.js';
import type { Lister } from '../walk-process.js';
import { count, table, type Section } from '../report.js';
import { formatSummary, summarize } from '../stats.js';

const DEFAULT_LABELS = 'country,device_type,browser,route';

interface PeerCase {
  sessions: number;
  lister: Lister;
  runs: number;
}

const LISTER_NAMES: Record<Lister, string> = {
  exporter: 'ngrok-sessions-exporter (refresh, default labels)',
  floor: 'fetch + JSON.parse',
  peer: '@ngrok/ngrok-api `applicationSessions.list()` as published',
  'peer-corrected': '@ngrok/ngrok-api with `before_id` corrected',
};

export async function runPeer(context: BenchContext): Promise<Section> {
  const runs = context.quick ? 1 : 3;
  const largest = context.quick ? 10_000 : 100_000;
  const cases: PeerCase[] = [
    { sessions: 100, lister: 'exporter', runs },
    { sessions: 100, lister: 'peer', runs },
    { sessions: 100, lister: 'peer-corrected', runs },
    { sessions: 10_000, lister: 'exporter', runs },
    { sessions: 10_000, lister: 'peer', runs: 1 },
    { sessions: 10_000, lister: 'peer-corrected', runs },
    { sessions: largest, lister: 'exporter', runs: Math.min(runs, 2) },
    { sessions: largest, lister: 'peer-corrected', runs: Math.min(runs, 2) },
  ];

  const simulator = await startSimulatorProcess({ sessions: 0 });
  const measured: { peerCase: PeerCase; runs: IsolatedWalk[] }[] = [];
  try {
    for (const peerCase of cases) {
      context.log(`peer: ${peerCase.lister}, ${peerCase.sessions} sessions, ${peerCase.runs} runs`);
      await simulator.setAccount(peerCase.sessions);
      const caseRuns = await repeat(peerCase.runs, () =>
        measureIsolatedWalk(simulator, { lister: peerCase.lister, accountSessions: peerCase.sessions, argv: ['--sessions.labels', DEFAULT_LABELS] }),
      );
      measured.push({ peerCase, runs: caseRuns });
    }
  } finally {
    await simulator.close();
  }


  const rows = measured.map(({ peerCase, runs: caseRuns }) => {
    const first = caseRuns[0];
    const outcome = caseRuns.every((run) => run.finished && run.distinctIds === peerCase.sessions)
      ? 'listed all'
      : `stopped by the benchmark: ${count(first?.items ?? 0)} items, ${count(first?.distinctIds ?? 0)} distinct`;
    return [
      count(peerCase.sessions),
      LISTER_NAMES[peerCase.lister],
      String(caseRuns.length),
      outcome,
      caseRuns.map((run) => count(run.requests)).join(', '),
      formatSummary(summarize(caseRuns.map((run) => run.wallMs)), 0, 'ms'),
      formatSummary(summarize(caseRuns.map((run) => run.cpuMs)), 0, 'ms'),
      formatSummary(summarize(caseRuns.map((run) => (run.peakRssBytes - run.idleRssBytes) / 2 ** 20)), 1, 'MiB'),
      formatSummary(summarize(caseRuns.map((run) => (run.retainedHeapBytes - run.idleHeapBytes) / 2 ** 20)), 1, 'MiB'),
    ];
  });

  return {
    title: 'Peer: the official Node client',
    blocks: [
      '`@ngrok/ngrok-api` 0.11.0, `new Ngrok({ apiToken, baseUrl })`, listing through the async generator behind ' +
        '`applicationSessions.list()` and collecting the sessions into an array as `list()` does. The client sends its cursor as ' +
        '`?beforeId=<id>`, in camelCase (its `Paging` type is passed to the query string as it is), while the API documents `before_id`. ' +
        'The simulator ignores the unknown parameter (what the real API does with it is not documented) and returns the first page ' +
        'again. The client reads `next_page_uri` only to decide whether to go on and takes its next cursor from the last session of the ' +
        'page, so on an account of more than 100 sessions it requests the first page forever: `list()` would loop until memory runs out. ' +
        'The benchmark stops it after twice the items the account holds. The corrected row renames the parameter to ' +
        '`before_id` before the client\'s own request code runs, to compare the cost of a listing that works. The client returns the ' +
        'sessions themselves (converted to camelCase), where the exporter keeps only counts, so its memory grows with the account.',
      table(['sessions', 'client', 'runs', 'outcome', 'requests', 'wall', 'CPU', 'peak RSS growth', 'retained heap'], rows),
    ],
    targets: [],
  };
}
