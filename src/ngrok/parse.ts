/**
 * Tolerant parsing of one `GET /app/sessions` page. Missing values come both
 * as explicit null and as absent keys, and unknown fields may appear at any
 * time, so optional attributes of a wrong type count as missing. The page
 * itself (its array, its cursor, each session's id) must have the documented
 * shape, or counting could go wrong, so a bad page raises ApiError.
 */
import { ApiError } from '../errors.js';

/** The attributes of one application session that the exporter uses. */
export interface ParsedSession {
  id: string;
  /** Milliseconds since the epoch; undefined when absent or unparsable. */
  expiresAtMs: number | undefined;
  lastActiveMs: number | undefined;
  userId: string | undefined;
  country: string | undefined;
  deviceType: string | undefined;
  browser: string | undefined;
  os: string | undefined;
  routeId: string | undefined;
  endpointId: string | undefined;
  publicUrl: string | undefined;
}

export interface ParsedPage {
  sessions: ParsedSession[];
  /** Cursor to the next page as the API sent it, or null on the last page. */
  nextPageUri: string | null;
  /** Optional fields that were present with a wrong type or an unparsable value. */
  invalidFields: number;
}

const PAGE_FIELD = 'application_sessions';

/** Parses a page body. @throws ApiError (reason `invalid_response`) when the page shape is wrong. */
export function parsePage(body: unknown, url: string): ParsedPage {
  if (!isRecord(body)) {
    throw invalidPage(url, `the body is ${describeType(body)}, not an object`);
  }

  const items = body[PAGE_FIELD];
  if (items !== undefined && items !== null && !Array.isArray(items)) {
    throw invalidPage(url, `"${PAGE_FIELD}" is ${describeType(items)}, not an array`);
  }

  const cursor = body.next_page_uri;
  if (cursor !== undefined && cursor !== null && typeof cursor !== 'string') {
    throw invalidPage(url, `"next_page_uri" is ${describeType(cursor)}, not a string or null`);
  }

  const counter = { invalidFields: 0 };
  const sessions = (items ?? []).map((item: unknown, index: number) => parseSession(item, index, url, counter));
  return { sessions, nextPageUri: cursor === undefined || cursor === '' ? null : cursor, invalidFields: counter.invalidFields };
}

function parseSession(item: unknown, index: number, url: string, counter: { invalidFields: number }): ParsedSession {
  if (!isRecord(item)) {
    throw invalidPage(url, `session ${index} is ${describeType(item)}, not an object`);
  }
  const id = item.id;
  if (typeof id !== 'string' || id === '') {
    throw invalidPage(url, `session ${index} has no string "id"`);
  }

  const read = (value: unknown): string | undefined => optionalString(value, counter);
  const browserSession = optionalRecord(item.browser_session, counter);
  const userAgent = optionalRecord(browserSession?.user_agent, counter);
  const location = optionalRecord(browserSession?.location, counter);

  return {
    id,
    expiresAtMs: optionalTimestamp(item.expires_at, counter),
    lastActiveMs: optionalTimestamp(item.last_active, counter),
    userId: read(optionalRecord(item.application_user, counter)?.id),
    country: read(location?.country_code),
    deviceType: read(userAgent?.device_type),
    browser: read(userAgent?.browser_name),
    os: read(userAgent?.os_name),
    routeId: read(optionalRecord(item.route, counter)?.id),
    endpointId: read(optionalRecord(item.endpoint, counter)?.id),
    publicUrl: read(item.public_url),
  };
}

function optionalRecord(value: unknown, counter: { invalidFields: number }): Record<string, unknown> | undefined {
  if (value === undefined || value === null) return undefined;
  if (isRecord(value)) return value;
  counter.invalidFields++;
  return undefined;
}

function optionalString(value: unknown, counter: { invalidFields: number }): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'string') return value;
  counter.invalidFields++;
  return undefined;
}

/**
 * RFC 3339 date-time (section 5.6): `2025-11-18T09:42:17Z`, with an optional
 * fraction of any length and a `Z` or numeric offset. Anything looser is
 * rejected rather than guessed at.
 */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

/** Year 1 is Go's zero time, which an API written in Go sends for "not set". */
const ZERO_TIME_MS = Date.parse('0001-01-01T00:00:00Z');

function optionalTimestamp(value: unknown, counter: { invalidFields: number }): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const ms = typeof value === 'string' ? parseRfc3339(value) : undefined;
  if (ms === undefined) {
    counter.invalidFields++;
    return undefined;
  }
  return ms === ZERO_TIME_MS ? undefined : ms;
}

/**
 * Parses an RFC 3339 date-time into milliseconds since the epoch, or returns
 * undefined when it does not match or a field is out of range. Date.parse is
 * not used because it rolls February 30 over into March and reads hour 24.
 */
export function parseRfc3339(text: string): number | undefined {
  const plain = parsePlainUtc(text);
  if (plain !== null) return plain;

  const match = RFC3339.exec(text);
  if (match === null) return undefined;

  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const [sign, offsetHours, offsetMinutes] = [match[8], Number(match[9] ?? 0), Number(match[10] ?? 0)];
  // Second 60 is a leap second (RFC 3339, section 5.7), read as the first second of the next minute.
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 60 || offsetHours > 23 || offsetMinutes > 59) return undefined;

  const millis = Number(`${match[7] ?? ''}000`.slice(0, 3));
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, keeps years 0 to 99 as they are instead of adding 1900.
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, millis);
  const offsetMs = (offsetHours * 60 + offsetMinutes) * 60_000 * (sign === '-' ? -1 : 1);
  return date.getTime() - offsetMs;
}

const DIGIT_0 = 0x30;
const CHAR_DASH = 0x2d;
const CHAR_COLON = 0x3a;
const CHAR_T = 0x54;
const CHAR_Z = 0x5a;

/**
 * Reads `2025-11-18T09:42:17Z`, the form the API sends, with the checks of
 * {@link parseRfc3339} but without its regular expression and Date object,
 * which cost more than the rest of a session's parsing. Returns null for any
 * other form, and for years 0 to 99, which Date.UTC would move by 1900.
 */
function parsePlainUtc(text: string): number | undefined | null {
  if (text.length !== 20 || text.charCodeAt(10) !== CHAR_T || text.charCodeAt(19) !== CHAR_Z) return null;
  if (text.charCodeAt(4) !== CHAR_DASH || text.charCodeAt(7) !== CHAR_DASH || text.charCodeAt(13) !== CHAR_COLON || text.charCodeAt(16) !== CHAR_COLON) return null;
  const year = readDigits(text, 0, 4);
  const month = readDigits(text, 5, 2);
  const day = readDigits(text, 8, 2);
  const hour = readDigits(text, 11, 2);
  const minute = readDigits(text, 14, 2);
  const second = readDigits(text, 17, 2);
  if (year < 100 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return null;

  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 60) return undefined;
  return Date.UTC(year, month - 1, day, hour, minute, second);
}

/** Reads `length` ASCII digits at `start` as a number, or returns -1 when one is not a digit. */
function readDigits(text: string, start: number, length: number): number {
  let value = 0;
  for (let index = start; index < start + length; index++) {
    const digit = text.charCodeAt(index) - DIGIT_0;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

function invalidPage(url: string, problem: string): ApiError {
  return new ApiError(
    'INVALID_PAGE',
    `GET ${url} returned a page that cannot be parsed: ${problem}. Check that --ngrok.api-url points at the ngrok API.`,
    { reason: 'invalid_response', url },
  );
}
