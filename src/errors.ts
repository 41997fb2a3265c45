/**
 * Error classes with stable `code` fields. Callers and tests branch on `code`,
 * never on message text; the original error, if any, is kept as `cause`.
 */

/** Base class of every error the exporter raises on purpose. */
export class ExporterError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An invalid flag, environment variable or configuration file; start-up stops. */
export class ConfigError extends ExporterError {
  /** The flag or variable at fault, such as `--refresh.interval`. */
  readonly setting: string;

  constructor(setting: string, message: string, options?: { cause?: unknown }) {
    super('INVALID_CONFIG', message, options);
    this.setting = setting;
  }
}

/** Causes of a failed refresh, as exported in the `reason` label of the failure counter. */
export const FAILURE_REASONS = [
  'auth',
  'client_error',
  'rate_limited',
  'server_error',
  'timeout',
  'network',
  'invalid_response',
  'paging',
] as const;

/** Cause of a failed refresh. */
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** Details of a failed request to the ngrok API. */
export interface ApiErrorDetails {
  /** Failure class, used for the retry decision and the failure counter. */
  reason: FailureReason;
  /** HTTP status, absent when no response arrived. */
  status?: number;
  /** ngrok error code such as `ERR_NGROK_226`, when the body had one. */
  ngrokCode?: string;
  /** ngrok operation id (`op_...`) to quote to ngrok support. */
  operationId?: string;
  /** Request URL, which never carries credentials because the key travels in a header. */
  url?: string;
  /** Seconds to wait before the next attempt, from a `Retry-After` header. */
  retryAfterSeconds?: number;
}

/** A request to the ngrok API failed, or its response could not be used. */
export class ApiError extends ExporterError {
  readonly reason: FailureReason;
  readonly status?: number;
  readonly ngrokCode?: string;
  readonly operationId?: string;
  readonly url?: string;
  readonly retryAfterSeconds?: number;

  constructor(code: string, message: string, details: ApiErrorDetails, options?: { cause?: unknown }) {
    super(code, message, options);
    this.reason = details.reason;
    this.status = details.status;
    this.ngrokCode = details.ngrokCode;
    this.operationId = details.operationId;
    this.url = details.url;
    this.retryAfterSeconds = details.retryAfterSeconds;
  }

  /** Reports whether a later attempt at the same request can succeed; a cancelled request is not retried. */
  get retryable(): boolean {
    return this.code !== 'ABORTED' && ['rate_limited', 'server_error', 'timeout', 'network'].includes(this.reason);
  }
}
