/**
 * HTTP server that serves `GET /app/sessions` like the ngrok API: bearer authentication,
 * the `Ngrok-Version` header, `limit` and `before_id` paging with absolute
 * `next_page_uri` links, the account-wide rate limit and ngrok's error bodies.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Account } from './account.js';
import { FaultQueue, pageFaultReply, respondFaultReply, type FaultRequest } from './faults.js';
import { createOperationId } from './ids.js';
import type { RollingWindowLimit } from './rate-limit.js';
import {
  SUPPORTED_API_VERSION,
  internalError,
  invalidCredential,
  invalidPageSize,
  jsonTextReply,
  methodNotAllowed,
  missingApiVersion,
  missingAuthorization,
  notFound,
  rateLimited,
  unparsableAuthorization,
  unsupportedApiVersion,
  type Reply,
} from './responses.js';
import { StatsRecorder } from './stats.js';
import type { SessionPage } from './types.js';

const SESSIONS_PATH = '/app/sessions';
const MAX_PAGE_SIZE = 100;
/** ngrok API keys have the form FIRSTPART_SECONDPART (ngrok error reference, ERR_NGROK_207). */
const WELL_FORMED_API_KEY = /^[0-9A-Za-z]+_[0-9A-Za-z]+$/;

/** Compares two secrets in constant time, whatever their lengths. */
function secretsEqual(a: string, b: string): boolean {
  const digestA = createHash('sha256').update(a).digest();
  const digestB = createHash('sha256').update(b).digest();
  return timingSafeEqual(digestA, digestB);
}

/** Parses `limit`: the page size, or the invalid value and whether it was an integer at all. */
function parsePageSize(raw: string | null): { pageSize: number } | { invalid: string; isNumber: boolean } {
  if (raw === null || raw === '') {
    return { pageSize: MAX_PAGE_SIZE };
  }
  if (!/^[+-]?\d+$/.test(raw)) {
    return { invalid: raw, isNumber: false };
  }
  const pageSize = Number(raw);
  return pageSize >= 1 && pageSize <= MAX_PAGE_SIZE ? { pageSize } : { invalid: raw, isNumber: true };
}

interface PendingDelay {
  timer: NodeJS.Timeout;
  resolve: () => void;
}

/** Settings of one simulator server. */
export interface ServerSettings {
  apiKey: string;
  clock: () => number;
  rateLimit: RollingWindowLimit | null;
  latencyMs: number;
  trailingEmptyPage: boolean;
}

/** The request handling of one simulator instance. */
export class SimulatorServer {
  readonly server: Server;
  readonly stats = new StatsRecorder();
  readonly faults = new FaultQueue();
  origin = '';
  latencyMs: number;
  private closing = false;
  private readonly delays = new Set<PendingDelay>();

  constructor(
    private readonly account: Account,
    private readonly settings: ServerSettings,
  ) {
    this.latencyMs = settings.latencyMs;
    this.server = createServer((request, response) => {
      void this.handle(request, response);
    });
  }

  async listen(host: string, port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as AddressInfo;
    const hostInUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.origin = `http://${hostInUrl}:${address.port}`;
  }

  resetRateLimit(): void {
    this.settings.rateLimit?.reset();
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const delay of this.delays) {
      clearTimeout(delay.timer);
      delay.resolve();
    }
    this.delays.clear();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const arrivalMs = this.settings.clock();
    const operationId = createOperationId();
    const record = this.stats.recordArrival(arrivalMs, request);
    this.stats.inFlight += 1;
    this.stats.maxInFlight = Math.max(this.stats.maxInFlight, this.stats.inFlight);
    request.resume();

    try {
      const url = new URL(request.url ?? '/', 'http://simulator.invalid');
      const faultRequest: FaultRequest = { method: request.method ?? '', path: url.pathname, query: url.searchParams };
      const fault = this.faults.take('request', faultRequest);
      if (fault?.kind === 'destroy' && fault.afterBytes === undefined) {
        this.stats.recordStatus(record, 'destroyed');
        request.socket.destroy();
        return;
      }

      const reply =
        fault?.kind === 'respond'
          ? respondFaultReply(fault, operationId)
          : this.answer(request, url, faultRequest, arrivalMs, operationId);

      const delayMs = this.latencyMs + (fault?.kind === 'delay' ? fault.delayMs : 0);
      if (delayMs > 0) {
        await this.sleep(delayMs);
      }
      if (this.closing) {
        this.stats.recordStatus(record, 'destroyed');
        response.destroy();
        return;
      }

      this.stats.recordStatus(record, fault?.kind === 'destroy' ? 'destroyed' : reply.status);
      this.send(response, reply, operationId, fault?.kind === 'destroy' ? fault.afterBytes : undefined);
    } catch {
      if (!response.headersSent) {
        this.stats.recordStatus(record, 500);
        this.send(response, internalError(operationId), operationId, undefined);
      }
    } finally {
      this.stats.inFlight -= 1;
    }
  }

  /**
   * Builds the API's response to a request, checking rate limit, route, credentials,
   * version and query in that order.
   * NOTE: ngrok does not document the order of its own checks.
   */
  private answer(request: IncomingMessage, url: URL, faultRequest: FaultRequest, nowMs: number, operationId: string): Reply {
    const { rateLimit } = this.settings;
    if (rateLimit !== null && !rateLimit.tryAdmit(nowMs)) {
      return rateLimited(rateLimit.maxRequests, rateLimit.windowMs, operationId);
    }
    if (url.pathname !== SESSIONS_PATH) {
      return notFound(operationId);
    }
    if (request.method !== 'GET') {
      return methodNotAllowed(operationId);
    }

    const authFailure = this.checkAuthorization(request.headers.authorization, operationId);
    if (authFailure !== undefined) {
      return authFailure;
    }
    const version = request.headers['ngrok-version'];
    if (version === undefined || version === '') {
      return missingApiVersion(operationId);
    }
    if (version !== SUPPORTED_API_VERSION) {
      return unsupportedApiVersion(String(version), operationId);
    }

    const pageSize = parsePageSize(url.searchParams.get('limit'));
    if ('invalid' in pageSize) {
      return invalidPageSize(pageSize.invalid, pageSize.isNumber, MAX_PAGE_SIZE, operationId);
    }
    const beforeId = url.searchParams.get('before_id') || undefined;

    this.account.advanceTo(nowMs);
    const reply = jsonTextReply(200, this.pageJson(beforeId, pageSize.pageSize));
    const pageFault = this.faults.take('page', faultRequest);
    if (pageFault?.kind === 'corrupt' || pageFault?.kind === 'rewrite') {
      return pageFaultReply(pageFault, reply, JSON.parse(reply.body) as SessionPage);
    }
    return reply;
  }

  /** Returns the 401 reply for a missing, unparsable or wrong credential, or undefined when it is the key. */
  private checkAuthorization(header: string | undefined, operationId: string): Reply | undefined {
    if (header === undefined || header.trim() === '') {
      return missingAuthorization(operationId);
    }
    const match = /^(Bearer|Basic)\s+(\S+)\s*$/i.exec(header);
    if (match === null) {
      return unparsableAuthorization(header, operationId);
    }

    let credential = match[2] as string;
    if ((match[1] as string).toLowerCase() === 'basic') {
      // Basic authentication carries the key as the user name, with an empty password.
      const decoded = Buffer.from(credential, 'base64').toString('utf8');
      credential = decoded.split(':')[0] ?? '';
    }
    if (secretsEqual(credential, this.settings.apiKey)) {
      return undefined;
    }
    return invalidCredential(credential, WELL_FORMED_API_KEY.test(credential), operationId);
  }

  /** Returns the JSON text of a page, joined from the stored JSON of its sessions. */
  private pageJson(beforeId: string | undefined, pageSize: number): string {
    const slice = this.account.page(beforeId, pageSize);
    const isFullLastPage = this.settings.trailingEmptyPage && slice.sessionsJson.length === pageSize;
    const nextPageUri =
      slice.lastId !== undefined && (slice.hasMore || isFullLastPage) ? this.nextPageUri(slice.lastId, pageSize) : null;
    return (
      `{"application_sessions":[${slice.sessionsJson.join(',')}],` +
      `"uri":${JSON.stringify(this.origin + SESSIONS_PATH)},"next_page_uri":${JSON.stringify(nextPageUri)}}`
    );
  }

  /**
   * Builds the absolute link to the page after `lastId`. ngrok varies the order of the query
   * parameters, so the order here depends on the id; clients must follow the link as given.
   */
  private nextPageUri(lastId: string, pageSize: number): string {
    const beforeId = `before_id=${encodeURIComponent(lastId)}`;
    const limit = `limit=${pageSize}`;
    const query = lastId.charCodeAt(lastId.length - 1) % 2 === 0 ? `${beforeId}&${limit}` : `${limit}&${beforeId}`;
    return `${this.origin}${SESSIONS_PATH}?${query}`;
  }

  private send(response: ServerResponse, reply: Reply, operationId: string, afterBytes: number | undefined): void {
    const body = Buffer.from(reply.body, 'utf8');
    response.writeHead(reply.status, {
      'ngrok-operation-id': operationId,
      ...reply.headers,
      'content-length': String(body.length),
    });
    if (afterBytes === undefined) {
      response.end(body);
      return;
    }
    response.write(body.subarray(0, afterBytes), () => response.destroy());
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const delay: PendingDelay = {
        timer: setTimeout(() => {
          this.delays.delete(delay);
          resolve();
        }, ms),
        resolve,
      };
      this.delays.add(delay);
    });
  }
}
