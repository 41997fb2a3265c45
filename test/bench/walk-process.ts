/**
 * Lists the simulated account in a process of its own and measures it
 * there. The lister is the exporter's refresh, the fetch + JSON.parse floor,
 * or the official `@ngrok/ngrok-api` client, as published or with its
 * paging parameter corrected. `walk` measures one listing, with the peak
 * resident memory over the idle process, so it runs in a fresh process.
 * `time` measures wall and CPU time alone and may repeat. Start with
 * `--expose-gc`.
 */
import { Ngrok } from '@ngrok/ngrok-api';

import { loadExporterBuild } from './build.js';
import { readSpec, runChild, serveCommands } from './child.js';
import { PeakTracker, residentBytes } from './memory.js';
import { BENCH_API_KEY, createExporterWalk, walkFloor } from './pipeline.js';

export type Lister = 'exporter' | 'floor' | 'peer' | 'peer-corrected';

export interface WalkSpec {
  lister: Lister;
  url: string;
  /** Sessions in the account; the official client is stopped after twice as many items. */
  accountSessions: number;
  /** Exporter flags, such as `--sessions.labels`. */
  argv?: string[];
  /** Measures the live heap after the last page, with a full collection inside the timed walk; exporter only. */
  probeLiveHeap?: boolean;
}

/** Result of the `time` command. */
export interface WalkTiming {
  wallMs: number;
  cpuMs: number;
  /** Sessions listed. */
  items: number;
}

/** Result of the `walk` command. */
export interface WalkMeasurement {
  wallMs: number;
  cpuMs: number;
  /** Resident set size at the start of the walk, after the warm-up page and a full collection. */
  idleRssBytes: number;
  peakRssBytes: number;
  idleHeapBytes: number;
  /** Whether the kernel's peak counter was reset, rather than sampling alone. */
  kernelPeak: boolean;
  /** Heap in use after a full collection, with the walk's result still referenced. */
  retainedHeapBytes: number;
  /** Heap in use after a full collection after the last page, while the aggregator contains the walk; when probed. */
  liveHeapBytes: number | undefined;
  /** Items the lister returned (sessions for the exporter). */
  items: number;
  distinctIds: number | undefined;
  /** False when the lister was stopped because it kept returning items. */
  finished: boolean;
  /** Series of ngrok_app_sessions_active, after folding; exporter only. */
  series: number | undefined;
  /** Label combinations the aggregator held, before folding; exporter only. */
  combinations: number | undefined;
}

interface Listing {
  result: unknown;
  liveHeapBytes: number | undefined;
  items: number;
  distinctIds: number | undefined;
  finished: boolean;
  series: number | undefined;
  combinations: number | undefined;
}

const collectGarbage = (): void => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('walk-process.ts needs node --expose-gc');
  gc();
};

/** The generator that `ApplicationSessions.list()` drains; private in the typings, so reached through a cast. */
interface PeerSessions {
  _asyncList(beforeId: string | undefined, limit?: string): AsyncGenerator<{ id: string }>;
  _pagedList(arg: { beforeId?: string; limit?: string }): Promise<unknown>;
}

function peerSessions(lister: Lister, url: string): PeerSessions {
  const client = new Ngrok({ apiToken: BENCH_API_KEY, baseUrl: url });
  const sessions = client.applicationSessions as unknown as PeerSessions;
  if (lister === 'peer-corrected') {
    // The client sends its cursor as `beforeId`, in camelCase; the API's parameter is `before_id`.
    const pagedList = sessions._pagedList.bind(sessions);
    sessions._pagedList = (arg) => pagedList((arg.beforeId === undefined ? { limit: arg.limit } : { before_id: arg.beforeId, limit: arg.limit }) as never);
  }
  return sessions;
}

/** Drains the official client's generator into an array, as `list()` does, stopping after `maxItems`. */
async function listWithPeer(sessions: PeerSessions, maxItems: number): Promise<Listing> {
  const items: { id: string }[] = [];
  let finished = true;
  for await (const item of sessions._asyncList(undefined, '100')) {
    items.push(item);
    if (items.length >= maxItems) {
      finished = false;
      break;
    }
  }
  return { result: items, liveHeapBytes: undefined, items: items.length, distinctIds: new Set(items.map((item) => item.id)).size, finished, series: undefined, combinations: undefined };
}

runChild(async () => {
  const spec = readSpec<WalkSpec>();
  const build = await loadExporterBuild();

  let list: (warmUp: boolean) => Promise<Listing>;
  if (spec.lister === 'exporter') {
    const walk = createExporterWalk(build, spec.url, spec.argv);
    list = async (warmUp) => {
      let liveHeapBytes: number | undefined;
      const probeLiveHeap = (): void => {
        collectGarbage();
        liveHeapBytes = process.memoryUsage().heapUsed;
      };
      const snapshot = await walk.run(warmUp ? 1 : undefined, spec.probeLiveHeap === true && !warmUp ? probeLiveHeap : undefined);
      return {
        result: snapshot,
        liveHeapBytes,
        items: snapshot.listed,
        distinctIds: snapshot.listed,
        finished: true,
        series: snapshot.activeSeries,
        combinations: walk.combinations,
      };
    };
  } else if (spec.lister === 'floor') {
    list = async (warmUp) => {
      const floor = await walkFloor(spec.url, warmUp ? 1 : undefined);
      return { result: floor, liveHeapBytes: undefined, items: floor.sessions, distinctIds: undefined, finished: true, series: undefined, combinations: undefined };
    };
  } else {
    const sessions = peerSessions(spec.lister, spec.url);
    // Twice the pages the account needs: a client that has not finished by then is repeating itself.
    const maxItems = 2 * Math.max(100, spec.accountSessions);
    list = (warmUp) => listWithPeer(sessions, warmUp ? 1 : maxItems);
  }

  // One page first, so that modules, sockets and compiled code are in place before the idle reading.
  await list(true);
  collectGarbage();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const idleRssBytes = residentBytes();
  const idleHeapBytes = process.memoryUsage().heapUsed;

  serveCommands({ idleRssBytes }, {
    // Without the peak sampling and the collections of `walk`: a full collection makes V8 shrink the heap, which slows the next run.
    time: async (): Promise<WalkTiming> => {
      const cpuStart = process.cpuUsage();
      const started = performance.now();
      const listing = await list(false);
      const wallMs = performance.now() - started;
      const cpu = process.cpuUsage(cpuStart);
      return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000, items: listing.items };
    },
    walk: async (): Promise<WalkMeasurement> => {
      const peak = new PeakTracker();
      const cpuStart = process.cpuUsage();
      const started = performance.now();
      const listing = await list(false);
      const wallMs = performance.now() - started;
      const cpu = process.cpuUsage(cpuStart);
      const peakRssBytes = peak.stop();

      collectGarbage();
      const retainedHeapBytes = process.memoryUsage().heapUsed;
      // Keeps the result reachable until the heap has been measured.
      if (listing.result === undefined) throw new Error('the listing returned nothing');
      return {
        wallMs,
        cpuMs: (cpu.user + cpu.system) / 1000,
        // The allocator may return memory between the reading at start-up and the walk, so the walk's own start is the baseline.
        idleRssBytes: peak.startBytes,
        peakRssBytes,
        idleHeapBytes,
        kernelPeak: peak.kernelPeak,
        retainedHeapBytes,
        liveHeapBytes: listing.liveHeapBytes,
        items: listing.items,
        distinctIds: listing.distinctIds,
        finished: listing.finished,
        series: listing.series,
        combinations: listing.combinations,
      };
    },
  }, async () => undefined);
});
