/**
 * Runs the ngrok API simulator in a process of its own, so that the CPU time
 * and memory measured in the exporter's process leave the simulator out.
 * Commands: `account` (replace the sessions), `stats`, `resetStats`,
 * `latency`, `close`.
 */
import type { AppSession } from '../../src/simulator/index.js';
import { loadExporterBuild } from './build.js';
import { readSpec, runChild, serveCommands } from './child.js';

const { generateSessions, startSimulator } = (await loadExporterBuild()).simulator;

/** Start-up settings sent by the parent. */
export interface SimulatorSpec {
  apiKey: string;
  sessions: number;
  /** Number of distinct endpoints (public URL and endpoint id) to spread the sessions over; the synthetic catalog when absent. */
  endpoints?: number;
  latencyMs?: number;
  trailingEmptyPage?: boolean;
  seed?: number;
}

/** What the parent receives once the simulator listens. */
export interface SimulatorReady {
  url: string;
  listed: number;
  active: number;
}

/** Counters returned by the `stats` command. */
export interface SimulatorCounts {
  requests: number;
  byStatus: Record<string, number>;
  maxInFlight: number;
}

/** Builds the account: synthetic sessions, optionally moved onto `endpoints` numbered endpoints. */
export function benchAccount(count: number, endpoints: number | undefined, seed: number, nowMs: number): AppSession[] {
  const sessions = generateSessions(count, { seed, nowMs });
  if (endpoints === undefined) return sessions;

  sessions.forEach((session, index) => {
    // A multiplicative hash spreads consecutive sessions over the endpoints without a visible stride.
    const endpoint = Math.imul(index + 1, 2_654_435_761) >>> 0;
    const number = endpoint % endpoints;
    const id = `ep_bench${String(number).padStart(6, '0')}`;
    session.public_url = `https://app-${number}.example.com`;
    session.endpoint = { id, uri: `https://api.ngrok.com/endpoints/${id}` };
  });
  return sessions;
}

runChild(async () => {
  const spec = readSpec<SimulatorSpec>();
  const seed = spec.seed ?? 1;
  const simulator = await startSimulator({
    apiKey: spec.apiKey,
    sessions: benchAccount(spec.sessions, spec.endpoints, seed, Date.now()),
    requestsPerMinute: null,
    latencyMs: spec.latencyMs ?? 0,
    trailingEmptyPage: spec.trailingEmptyPage ?? false,
  });

  const ready: SimulatorReady = { url: simulator.url, listed: simulator.account.listedCount(), active: simulator.account.activeCount() };
  serveCommands(
    ready,
    {
      account: (message) => {
        simulator.account.set(benchAccount(Number(message.sessions), message.endpoints as number | undefined, seed, Date.now()));
        return { listed: simulator.account.listedCount(), active: simulator.account.activeCount() };
      },
      stats: (): SimulatorCounts => ({
        requests: simulator.stats.requests,
        byStatus: { ...simulator.stats.byStatus },
        maxInFlight: simulator.stats.maxInFlight,
      }),
      resetStats: () => {
        simulator.stats.reset();
        return null;
      },
      latency: (message) => {
        simulator.setLatency(Number(message.ms));
        return null;
      },
    },
    () => simulator.close(),
  );
});
