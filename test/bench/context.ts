/** What every scenario shares: the compiled exporter, the run size, timing and the child processes it starts. */
import type { ExporterBuild } from './build.js';
import { BenchChild } from './child.js';
import { BENCH_API_KEY } from './pipeline.js';
import type { SimulatorCounts, SimulatorReady, SimulatorSpec } from './simulator-process.js';
import type { Lister, WalkMeasurement, WalkSpec, WalkTiming } from './walk-process.js';

export interface BenchContext {
  build: ExporterBuild;
  /** Fewer runs and shorter load, for trying the benchmark out; its figures are not for publishing. */
  quick: boolean;
  log(message: string): void;
}

/** A simulator in its own process. */
export interface SimulatorProcess {
  url: string;
  child: BenchChild;
  /** Replaces the account; `endpoints` spreads the sessions over that many numbered endpoints. */
  setAccount(sessions: number, endpoints?: number): Promise<void>;
  resetStats(): Promise<void>;
  /** Changes the delay before each response, in ms. */
  setLatency(ms: number): Promise<void>;
  stats(): Promise<SimulatorCounts>;
  close(): Promise<void>;
}

/** Starts the simulator in a child process, rate limit off. */
export async function startSimulatorProcess(spec: Omit<SimulatorSpec, 'apiKey'>): Promise<SimulatorProcess> {
  const { child, ready } = await BenchChild.start<SimulatorReady>('./simulator-process.ts', { apiKey: BENCH_API_KEY, ...spec });
  return {
    url: ready.url,
    child,
    setAccount: async (sessions, endpoints) => {
      await child.request('account', { sessions, endpoints });
    },
    resetStats: async () => {
      await child.request('resetStats');
    },
    setLatency: async (ms) => {
      await child.request('latency', { ms });
    },
    stats: () => child.request<SimulatorCounts>('stats'),
    close: () => child.close(),
  };
}

/** A measurement of one listing in a fresh process, with the requests that reached the simulator. */
export interface IsolatedWalk extends WalkMeasurement {
  requests: number;
}

/** Runs one listing in a fresh child process against `simulator` and measures it there; `nodeOptions` go to that process. */
export async function measureIsolatedWalk(simulator: SimulatorProcess, spec: Omit<WalkSpec, 'url'>, nodeOptions: string[] = []): Promise<IsolatedWalk> {
  const { child } = await BenchChild.start<unknown>('./walk-process.ts', { ...spec, url: simulator.url }, { nodeOptions: ['--expose-gc', ...nodeOptions] });
  try {
    await simulator.resetStats();
    const measurement = await child.request<WalkMeasurement>('walk');
    const { requests } = await simulator.stats();
    return { ...measurement, requests };
  } finally {
    await child.close();
  }
}

/** A lister in a process of its own that times one listing per call. */
export interface Walker {
  time(): Promise<WalkTiming>;
  close(): Promise<void>;
}

/**
 * Starts a lister in a child process for repeated timing. Each lister gets a
 * process of its own because a walk leaves the V8 heap sized for itself,
 * which changes the speed of a different walk run next in the same process.
 */
export async function startWalker(simulator: SimulatorProcess, lister: Lister, argv: string[] = []): Promise<Walker> {
  const { child } = await BenchChild.start<unknown>('./walk-process.ts', { lister, url: simulator.url, accountSessions: 0, argv }, { nodeOptions: ['--expose-gc'] });
  return {
    time: () => child.request<WalkTiming>('time'),
    close: () => child.close(),
  };
}

/** Repeats `run` `times` times, in order. */
export async function repeat<T>(times: number, run: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let index = 0; index < times; index++) results.push(await run(index));
  return results;
}
