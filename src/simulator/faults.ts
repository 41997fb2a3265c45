/**
 * One-shot faults for tests: a queue of scripted misbehaviours that the next matching
 * requests receive in place of, or on top of, the normal API response.
 */
import { errorReply, jsonReply, reasonPhrase, type Reply } from './responses.js';
import type { SessionPage } from './types.js';

/** Request fields that a fault's `match` predicate receives. */
export interface FaultRequest {
  method: string;
  /** Path without the query, such as `/app/sessions`. */
  path: string;
  query: URLSearchParams;
}

interface FaultBase {
  /** Selects the requests the fault applies to (default: every request). */
  match?: (request: FaultRequest) => boolean;
  /** Number of matching requests that receive the fault (default 1). */
  times?: number;
}

/**
 * Responds with this status in place of the API. Without `body` the response is an ngrok
 * error body with `errorCode` (or no `error_code` key). A string body is sent as it is
 * (`contentType` defaults to text/plain), any other body as JSON. The request does not
 * count toward the rate limit, as if a proxy in front of the API had answered.
 */
export interface RespondFault extends FaultBase {
  kind: 'respond';
  status: number;
  errorCode?: string;
  body?: unknown;
  contentType?: string;
  /** Extra response headers, such as `{ 'retry-after': '3' }`. */
  headers?: Record<string, string>;
}

/** Waits `delayMs` longer before sending the normal response. */
export interface DelayFault extends FaultBase {
  kind: 'delay';
  delayMs: number;
}

/**
 * Destroys the connection. Without `afterBytes` no response is sent at all. With it, the
 * normal status line, headers and that many body bytes are sent first, so the body ends
 * short of its Content-Length.
 */
export interface DestroyFault extends FaultBase {
  kind: 'destroy';
  afterBytes?: number;
}

/**
 * Breaks the body of the next successful page: `invalid-json` sends the first half of the
 * JSON text, `wrong-shape` sends valid JSON that is a bare array of sessions instead of a page.
 */
export interface CorruptFault extends FaultBase {
  kind: 'corrupt';
  corruption: 'invalid-json' | 'wrong-shape';
}

/**
 * Replaces the body of the next successful page by what `rewrite` returns: a string is sent
 * as it is, undefined as an empty body, any other value as JSON. The page passed in may be
 * changed in place.
 */
export interface RewriteFault extends FaultBase {
  kind: 'rewrite';
  rewrite: (page: SessionPage) => unknown;
}

/** Scripted misbehaviour for the next matching request(s). */
export type Fault = RespondFault | DelayFault | DestroyFault | CorruptFault | RewriteFault;

/** When a fault is taken: on arrival of a request, or once a page response is ready. */
export type FaultPhase = 'request' | 'page';

interface QueuedFault {
  fault: Fault;
  remaining: number;
}

function phaseOf(fault: Fault): FaultPhase {
  return fault.kind === 'corrupt' || fault.kind === 'rewrite' ? 'page' : 'request';
}

function validateFault(fault: Fault): void {
  const times = fault.times ?? 1;
  if (!Number.isSafeInteger(times) || times < 1) {
    throw new RangeError(`fault times must be a positive integer, got ${times}`);
  }
  if (fault.kind === 'respond' && !(Number.isInteger(fault.status) && fault.status >= 100 && fault.status <= 599)) {
    throw new RangeError(`respond fault status must be an HTTP status between 100 and 599, got ${fault.status}`);
  }
  if (fault.kind === 'delay' && !(Number.isFinite(fault.delayMs) && fault.delayMs >= 0)) {
    throw new RangeError(`delay fault delayMs must be a non-negative number, got ${fault.delayMs}`);
  }
  if (fault.kind === 'destroy' && fault.afterBytes !== undefined && !(Number.isSafeInteger(fault.afterBytes) && fault.afterBytes >= 0)) {
    throw new RangeError(`destroy fault afterBytes must be a non-negative integer, got ${fault.afterBytes}`);
  }
}

/** Faults waiting for their requests, applied in the order they were queued. */
export class FaultQueue {
  private queued: QueuedFault[] = [];

  /** Queues a fault after validating it. */
  push(fault: Fault): void {
    validateFault(fault);
    this.queued.push({ fault, remaining: fault.times ?? 1 });
  }

  /** Removes and returns the first queued fault of `phase` that matches the request. */
  take(phase: FaultPhase, request: FaultRequest): Fault | undefined {
    const index = this.queued.findIndex(
      (entry) => phaseOf(entry.fault) === phase && (entry.fault.match?.(request) ?? true),
    );
    const entry = this.queued[index];
    if (entry === undefined) {
      return undefined;
    }
    entry.remaining -= 1;
    if (entry.remaining === 0) {
      this.queued.splice(index, 1);
    }
    return entry.fault;
  }

  /** Number of requests the queued faults still apply to. */
  get pending(): number {
    return this.queued.reduce((sum, entry) => sum + entry.remaining, 0);
  }

  clear(): void {
    this.queued = [];
  }
}

/** Builds the response of a respond fault. */
export function respondFaultReply(fault: RespondFault, operationId: string): Reply {
  const headers = fault.headers ?? {};
  if (fault.body === undefined) {
    const reply = errorReply(fault.status, fault.errorCode, reasonPhrase(fault.status), operationId, headers);
    return withContentType(reply, fault.contentType);
  }
  if (typeof fault.body === 'string') {
    return {
      status: fault.status,
      headers: { 'content-type': fault.contentType ?? 'text/plain; charset=utf-8', ...headers },
      body: fault.body,
    };
  }
  return withContentType(jsonReply(fault.status, fault.body, headers), fault.contentType);
}

function withContentType(reply: Reply, contentType: string | undefined): Reply {
  return contentType === undefined ? reply : { ...reply, headers: { ...reply.headers, 'content-type': contentType } };
}

/** Builds the broken page response of a corrupt or rewrite fault from the normal one. */
export function pageFaultReply(fault: CorruptFault | RewriteFault, reply: Reply, page: SessionPage): Reply {
  if (fault.kind === 'rewrite') {
    const rewritten = fault.rewrite(page);
    const body = typeof rewritten === 'string' ? rewritten : (JSON.stringify(rewritten) ?? '');
    return { ...reply, body };
  }
  if (fault.corruption === 'invalid-json') {
    // No proper prefix of a JSON object is valid JSON: its closing brace is missing.
    return { ...reply, body: reply.body.slice(0, Math.floor(reply.body.length / 2)) };
  }
  return { ...reply, body: JSON.stringify(page.application_sessions) };
}
