/**
 * Error responses in the layout of the ngrok API:
 * `{"error_code","status_code","msg","details":{"operation_id"}}`. The codes follow the
 * ngrok error reference (ngrok.com/docs/errors), and the messages paraphrase it.
 */
import { STATUS_CODES } from 'node:http';

/** Response that the simulator sends, before the operation id header is added. */
export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const JSON_CONTENT_TYPE = 'application/json';
const API_KEYS_PAGE = 'https://dashboard.ngrok.com/api-keys';
/** The only API version ngrok serves (header `Ngrok-Version`). */
export const SUPPORTED_API_VERSION = '2';

/** Returns a reply with a body that is already JSON text. */
export function jsonTextReply(status: number, body: string, headers: Record<string, string> = {}): Reply {
  return { status, headers: { 'content-type': JSON_CONTENT_TYPE, ...headers }, body };
}

/** Returns a JSON reply. */
export function jsonReply(status: number, value: unknown, headers: Record<string, string> = {}): Reply {
  return jsonTextReply(status, JSON.stringify(value), headers);
}

/** Returns an ngrok error reply. Without `errorCode` the key is left out, as on ngrok's 404 responses. */
export function errorReply(
  status: number,
  errorCode: string | undefined,
  message: string,
  operationId: string,
  headers: Record<string, string> = {},
): Reply {
  const body =
    errorCode === undefined
      ? { status_code: status, msg: message, details: { operation_id: operationId } }
      : { error_code: errorCode, status_code: status, msg: message, details: { operation_id: operationId } };
  return jsonReply(status, body, headers);
}

/** Returns the reason phrase of an HTTP status, such as `Service Unavailable`. */
export function reasonPhrase(status: number): string {
  return STATUS_CODES[status] ?? 'Error';
}

export function notFound(operationId: string): Reply {
  return errorReply(404, undefined, 'Not Found', operationId);
}

export function methodNotAllowed(operationId: string): Reply {
  return errorReply(405, undefined, 'Method Not Allowed', operationId, { allow: 'GET' });
}

export function missingAuthorization(operationId: string): Reply {
  return errorReply(
    401,
    'ERR_NGROK_200',
    `The ngrok API requires an Authorization header. Your API keys are listed on your dashboard: ${API_KEYS_PAGE}`,
    operationId,
  );
}

export function unparsableAuthorization(headerValue: string, operationId: string): Reply {
  return errorReply(
    401,
    'ERR_NGROK_201',
    `The ngrok API requires Basic or Bearer authentication in the Authorization header and could not parse this one. Authorization header: ${headerValue}. Your API keys are listed on your dashboard: ${API_KEYS_PAGE}`,
    operationId,
  );
}

/**
 * Returns the reply to a credential that is not the account's key. Like ngrok, the message
 * quotes the credential that was sent, so clients must redact `msg` before logging it.
 * ERR_NGROK_202 is for a credential that does not look like an API key and
 * ERR_NGROK_203 for a well-formed key that is not valid.
 */
export function invalidCredential(credential: string, wellFormed: boolean, operationId: string): Reply {
  const message = wellFormed
    ? `The API authentication you specified is properly formed, but it is invalid. Your credential: ${credential}. Your API keys are listed on your dashboard: ${API_KEYS_PAGE}`
    : `The API authentication you specified does not look like a valid credential. Your credential: ${credential}. Your API keys are listed on your dashboard: ${API_KEYS_PAGE}`;
  return errorReply(401, wellFormed ? 'ERR_NGROK_203' : 'ERR_NGROK_202', message, operationId);
}

export function missingApiVersion(operationId: string): Reply {
  return errorReply(
    400,
    'ERR_NGROK_218',
    `Your request has not specified an API version in the Ngrok-Version header. Supported versions: ${SUPPORTED_API_VERSION}.`,
    operationId,
  );
}

export function unsupportedApiVersion(version: string, operationId: string): Reply {
  return errorReply(
    400,
    'ERR_NGROK_217',
    `The API version ${version} is invalid or unsupported. Supported versions: ${SUPPORTED_API_VERSION}.`,
    operationId,
  );
}

/** Returns the reply to a `limit` that is a number out of range (ERR_NGROK_233) or not a number (ERR_NGROK_244). */
export function invalidPageSize(value: string, isNumber: boolean, maxPageSize: number, operationId: string): Reply {
  return isNumber
    ? errorReply(400, 'ERR_NGROK_233', `The page size limit must be between 1 and ${maxPageSize} but ${value} was provided.`, operationId)
    : errorReply(
        400,
        'ERR_NGROK_244',
        `The page size limit must be a number between 1 and ${maxPageSize} but ${value} was provided.`,
        operationId,
      );
}

/** Describes a window length the way ngrok's rate-limit message does: `minute`, `2 minutes`, `10 seconds`. */
function describeWindow(windowMs: number): string {
  if (windowMs === 60_000) {
    return 'minute';
  }
  if (windowMs % 60_000 === 0) {
    return `${windowMs / 60_000} minutes`;
  }
  return `${windowMs / 1000} seconds`;
}

/** Returns the 429 reply of the account-wide rate limit, without Retry-After because ngrok documents none. */
export function rateLimited(maxRequests: number, windowMs: number, operationId: string): Reply {
  return errorReply(
    429,
    'ERR_NGROK_226',
    `Your account is rate limited to ${maxRequests} API requests per ${describeWindow(windowMs)}.`,
    operationId,
  );
}

export function internalError(operationId: string): Reply {
  return errorReply(500, undefined, 'Internal Server Error', operationId);
}
