/**
 * One HTTP request to the ngrok API: the documented headers, a deadline that
 * covers the body, a cap on the bytes read, and ngrok's error bodies turned
 * into an ApiError that names the status, the ngrok error code and the
 * operation id.
 */
import type { Secret } from '../config.js';
import { ApiError, type FailureReason } from '../errors.js';
import { redactSecret } from '../redact.js';

/** ngrok API version this client speaks; a missing or wrong header is ERR_NGROK_218 or ERR_NGROK_217. */
export const NGROK_API_VERSION = '2';

export interface ApiClientOptions {
  apiKey: Secret;
  userAgent: string;
  /** Deadline of one request, from sending it to the end of the body. */
  timeoutMs: number;
  /** Largest body read; a larger one fails the request. */
  maxBodyBytes: number;
}

/** A successful response: its parsed JSON body and the operation id. */
export interface ApiResponse {
  body: unknown;
  status: number;
  operationId: string | undefined;
}

/** Sends GET requests to the ngrok API with the key and version headers. */
export class ApiClient {
  readonly #options: ApiClientOptions;

  constructor(options: ApiClientOptions) {
    this.#options = options;
  }

  /**
   * Fetches `url` and parses its JSON body.
   * @throws ApiError with `reason` set for the retry decision and the failure counter.
   */
  async get(url: URL, signal?: AbortSignal): Promise<ApiResponse> {
    // One controller per request instead of AbortSignal.any(): on Node 20 every
    // signal that AbortSignal.any() derives from the long-lived shutdown signal
    // stays in that signal's list of dependants, so memory grows with each request.
    const controller = new AbortController();
    const deadline = { expired: false };
    const timer = setTimeout(() => {
      deadline.expired = true;
      controller.abort(new DOMException(`deadline of ${this.#options.timeoutMs} ms expired`, 'TimeoutError'));
    }, this.#options.timeoutMs);
    const cancel = (): void => controller.abort(signal?.reason);
    signal?.addEventListener('abort', cancel, { once: true });
    if (signal?.aborted === true) cancel();

    try {
      return await this.#send(url, controller.signal, () => deadline.expired, signal);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', cancel);
    }
  }

  /** Returns `text` without the API key in any form, for messages built from what the API sent. */
  redact(text: string): string {
    return redactSecret(text, this.#options.apiKey);
  }

  async #send(url: URL, requestSignal: AbortSignal, deadlineExpired: () => boolean, signal: AbortSignal | undefined): Promise<ApiResponse> {
    const target = this.redact(url.href);
    const failed = (error: unknown, step: string): ApiError => this.#transportError(error, target, deadlineExpired(), signal, step);

    let response: Response;
    try {
      response = await fetch(url, {
        method: 'GET',
        headers: {
          authorization: `Bearer ${this.#options.apiKey.reveal()}`,
          'ngrok-version': NGROK_API_VERSION,
          accept: 'application/json',
          'user-agent': this.#options.userAgent,
        },
        redirect: 'manual',
        signal: requestSignal,
      });
    } catch (error) {
      throw failed(error, 'sending the request');
    }

    const operationIdHeader = response.headers.get('ngrok-operation-id');
    const operationId = operationIdHeader === null ? undefined : this.#clip(operationIdHeader);
    let text: string;
    try {
      text = await readBodyText(response, this.#options.maxBodyBytes, target);
    } catch (error) {
      if (error instanceof ApiError) throw error;
      throw failed(error, 'reading the response body');
    }

    if (response.status < 200 || response.status > 299) {
      throw this.#statusError(response, text, target, operationId);
    }

    try {
      return { body: JSON.parse(text) as unknown, status: response.status, operationId };
    } catch {
      // No cause: V8's SyntaxError quotes the body around the error, which may hold the key cut in two.
      throw new ApiError(
        'INVALID_RESPONSE',
        `GET ${target} returned HTTP ${response.status} with a body that is not JSON (${this.#describeBody(text, response)}); check that --ngrok.api-url points at the ngrok API.`,
        { reason: 'invalid_response', status: response.status, operationId, url: target },
      );
    }
  }

  #transportError(error: unknown, target: string, deadlineExpired: boolean, signal: AbortSignal | undefined, step: string): ApiError {
    if (signal?.aborted === true) {
      return new ApiError('ABORTED', `GET ${target} was cancelled because the exporter is shutting down.`, { reason: 'network', url: target }, { cause: error });
    }
    if (deadlineExpired) {
      return new ApiError(
        'TIMEOUT',
        `GET ${target} timed out after ${this.#options.timeoutMs} ms while ${step}; the API is slow or unreachable, raise --ngrok.timeout if this persists.`,
        { reason: 'timeout', url: target },
        { cause: error },
      );
    }
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
    const detail = cause instanceof Error ? `${(cause as NodeJS.ErrnoException).code ?? cause.name}: ${cause.message}` : String(cause);
    return new ApiError(
      'NETWORK_ERROR',
      `GET ${target} failed while ${step}: ${this.#clip(detail)}; check network access to the ngrok API.`,
      { reason: 'network', url: target },
      { cause: error },
    );
  }

  #statusError(response: Response, text: string, target: string, operationIdHeader: string | undefined): ApiError {
    const status = response.status;
    const errorBody = parseErrorBody(text);
    const ngrokCode = errorBody?.errorCode === undefined ? undefined : this.#clip(errorBody.errorCode);
    const operationId = errorBody?.operationId === undefined ? operationIdHeader : this.#clip(errorBody.operationId);
    const reason = reasonForStatus(status);
    const retryAfterSeconds = parseRetryAfter(response.headers.get('retry-after'));

    const parts = [`GET ${target} failed: HTTP ${status}`];
    if (ngrokCode !== undefined) parts.push(ngrokCode);
    if (operationId !== undefined) parts.push(`(operation ${operationId})`);
    let message = parts.join(' ');
    if (errorBody?.message !== undefined) message += `: ${this.#clip(errorBody.message)}`;
    else if (errorBody === undefined) message += `: ${this.#describeBody(text, response)}`;
    message += `. ${hintFor(status, ngrokCode)}`;

    return new ApiError(`HTTP_${status}`, message, { reason, status, ngrokCode, operationId, url: target, retryAfterSeconds });
  }

  /**
   * Returns one line of at most 300 characters without the key. The key is
   * removed before the cut, or a copy cut in two would no longer match.
   */
  #clip(text: string, maxLength = 300): string {
    return oneLine(this.redact(text)).slice(0, maxLength);
  }

  #describeBody(text: string, response: Response): string {
    const type = response.headers.get('content-type') ?? 'no content type';
    if (text.trim() === '') return `empty body, ${type}`;
    return `${this.#clip(type, 100)}, starts with ${JSON.stringify(this.#clip(text, 80))}`;
  }
}

/** Reads the body as UTF-8 text, failing once more than `maxBytes` arrive. */
async function readBodyText(response: Response, maxBytes: number, target: string): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw bodyTooLarge(response, maxBytes, target);
  }
  if (response.body === null) return '';

  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.byteLength;
    // Leaving the loop cancels the stream, which closes the connection.
    if (total > maxBytes) throw bodyTooLarge(response, maxBytes, target);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total).toString('utf8');
}

function bodyTooLarge(response: Response, maxBytes: number, target: string): ApiError {
  return new ApiError(
    'BODY_TOO_LARGE',
    `GET ${target} returned a body larger than ${maxBytes} bytes, far more than a page of 100 sessions; check --ngrok.api-url, or raise --ngrok.max-body-bytes.`,
    { reason: 'invalid_response', status: response.status, url: target },
  );
}

interface ErrorBody {
  errorCode: string | undefined;
  message: string | undefined;
  operationId: string | undefined;
}

/** Reads `{"error_code", "msg", "details": {"operation_id"}}`; returns undefined for other bodies. */
function parseErrorBody(text: string): ErrorBody | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;

  const record = body as Record<string, unknown>;
  const details = typeof record.details === 'object' && record.details !== null ? (record.details as Record<string, unknown>) : {};
  return {
    errorCode: nonEmptyString(record.error_code),
    message: nonEmptyString(record.msg),
    operationId: nonEmptyString(details.operation_id),
  };
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Replaces control characters, so a hostile body cannot turn one log line into several. */
function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
}

function reasonForStatus(status: number): FailureReason {
  // HTTP status codes end at 599 (RFC 9110, section 15); a larger one is not an HTTP server speaking.
  if (status > 599) return 'invalid_response';
  if (status === 401 || status === 403) return 'auth';
  if (status === 429) return 'rate_limited';
  if (status >= 500) return 'server_error';
  if (status === 408) return 'timeout';
  return 'client_error';
}

function hintFor(status: number, ngrokCode: string | undefined): string {
  if (status === 401 || status === 403) {
    return 'Check that NGROK_API_KEY holds a valid ngrok API key (not an agent authtoken or a key id) and that it has not been revoked.';
  }
  if (ngrokCode === 'ERR_NGROK_217' || ngrokCode === 'ERR_NGROK_218') {
    return 'The server did not accept the Ngrok-Version header that the exporter sends; check that --ngrok.api-url points at the ngrok API.';
  }
  if (status === 404) return 'Check that --ngrok.api-url points at the ngrok API, without a path.';
  if (status > 599) return 'The status is not a valid HTTP status; check that --ngrok.api-url points at the ngrok API.';
  if (status === 429) return 'The account exceeded its API rate limit, shared by every API client of the account; lower --ngrok.requests-per-minute or the use of other clients.';
  if (status >= 500) return 'The ngrok API failed; the exporter retries.';
  return 'The request was rejected; check --ngrok.api-url.';
}

/** Parses `Retry-After` as delay seconds or an HTTP date (RFC 9110, section 10.2.3); returns seconds. */
export function parseRetryAfter(value: string | null, nowMs: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);

  const dateMs = Date.parse(trimmed);
  if (Number.isNaN(dateMs)) return undefined;
  return Math.max(0, Math.ceil((dateMs - nowMs) / 1000));
}
