/** Counters of the requests that reach the simulator, for tests and the benchmark. */
import type { IncomingMessage } from 'node:http';

/** Number of recent requests kept in `requestTimesMs` and `requestLog`, so a long demo run stays bounded. */
const MAX_RECORDED_REQUESTS = 10_000;

/** One request as the simulator recorded it. */
export interface RequestRecord {
  /** Clock reading at arrival, in ms. */
  atMs: number;
  method: string;
  /** Path and query as received. */
  url: string;
  /** Response status, `destroyed` when the connection was destroyed, undefined while in progress. */
  status?: number | 'destroyed';
  userAgent?: string;
}

/** Request counters. `requestTimesMs` and `requestLog` keep the latest 10,000 requests. */
export interface SimulatorStats {
  /** Number of requests that reached the server. */
  readonly requests: number;
  /** Clock reading at the arrival of each request, in ms. */
  readonly requestTimesMs: readonly number[];
  /** Responses by status (`"200"`, `"429"` ...) plus `"destroyed"` for destroyed connections. */
  readonly byStatus: Readonly<Record<string, number>>;
  /** Highest number of requests in progress at the same time. */
  readonly maxInFlight: number;
  readonly requestLog: readonly RequestRecord[];
  /** Clears every counter. The rate-limit window is separate (see `resetRateLimit`). */
  reset(): void;
}

/** Records requests as they arrive and complete. */
export class StatsRecorder implements SimulatorStats {
  requests = 0;
  requestTimesMs: number[] = [];
  byStatus: Record<string, number> = {};
  maxInFlight = 0;
  requestLog: RequestRecord[] = [];
  inFlight = 0;

  recordArrival(atMs: number, request: IncomingMessage): RequestRecord {
    const record: RequestRecord = { atMs, method: request.method ?? '', url: request.url ?? '' };
    if (typeof request.headers['user-agent'] === 'string') {
      record.userAgent = request.headers['user-agent'];
    }
    this.requests += 1;
    this.requestTimesMs.push(atMs);
    this.requestLog.push(record);
    if (this.requestLog.length > 2 * MAX_RECORDED_REQUESTS) {
      this.requestTimesMs = this.requestTimesMs.slice(-MAX_RECORDED_REQUESTS);
      this.requestLog = this.requestLog.slice(-MAX_RECORDED_REQUESTS);
    }
    return record;
  }

  recordStatus(record: RequestRecord, status: number | 'destroyed'): void {
    record.status = status;
    const key = String(status);
    this.byStatus[key] = (this.byStatus[key] ?? 0) + 1;
  }

  reset(): void {
    this.requests = 0;
    this.requestTimesMs = [];
    this.byStatus = {};
    this.maxInFlight = this.inFlight;
    this.requestLog = [];
  }
}
