import { randomBytes } from 'node:crypto';

import type { Random } from './random.js';

/**
 * ngrok resource ids are KSUIDs behind a type prefix (`ep_`, `au_`, `op_`): 20 bytes, a
 * 32-bit timestamp in seconds followed by 128 random bits, written as 27 base62 digits.
 * The digits are fixed-width and ordered 0-9A-Za-z, so comparing two ids as strings
 * compares their creation times, which is what keeps `before_id` cursors valid while
 * sessions come and go.
 */
const BASE62_DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const KSUID_EPOCH_SECONDS = 1_400_000_000;
const KSUID_LENGTH = 27;
const MAX_UINT32 = 0xffffffff;

/** Prefix of application session ids. ngrok has not published the real prefix, so `as_` is a placeholder. */
export const SESSION_ID_PREFIX = 'as_';

const BASE62_CODES = Buffer.from(BASE62_DIGITS, 'latin1');
/** Scratch space for encoding. Ids are built one at a time, so one buffer serves every call. */
const scratch = Buffer.alloc(64);

/**
 * Encodes a prefix, a timestamp and four random 32-bit words as `<prefix><27 base62 digits>`.
 * The result is one flat string, which keeps the many id comparisons of sorting cheap.
 */
function encodeKsuid(prefix: string, timeMs: number, w1: number, w2: number, w3: number, w4: number): string {
  const seconds = Math.min(Math.max(Math.floor(timeMs / 1000) - KSUID_EPOCH_SECONDS, 0), MAX_UINT32);
  const length = prefix.length + KSUID_LENGTH;
  if (length > scratch.length) {
    throw new RangeError(`id prefix ${prefix} is too long`);
  }
  scratch.write(prefix, 0, 'latin1');
  let w0 = seconds;

  // Long division of the 160-bit big-endian number w0..w4 by 62, one 32-bit word at a time.
  // remainder * 2^32 + word stays below 62 * 2^32, well inside exact double precision.
  for (let position = length - 1; position >= prefix.length; position--) {
    let value = w0;
    w0 = Math.floor(value / 62);
    let remainder = value - w0 * 62;
    value = remainder * 2 ** 32 + w1;
    w1 = Math.floor(value / 62);
    remainder = value - w1 * 62;
    value = remainder * 2 ** 32 + w2;
    w2 = Math.floor(value / 62);
    remainder = value - w2 * 62;
    value = remainder * 2 ** 32 + w3;
    w3 = Math.floor(value / 62);
    remainder = value - w3 * 62;
    value = remainder * 2 ** 32 + w4;
    w4 = Math.floor(value / 62);
    remainder = value - w4 * 62;
    scratch[position] = BASE62_CODES[remainder] as number;
  }
  return scratch.toString('latin1', 0, length);
}

/** Creates a time-ordered id such as `as_2pZvpzb8BsmXBrLLDv8fsFpMq5a` from a seeded generator. */
export function createId(prefix: string, timeMs: number, random: Random): string {
  return encodeKsuid(prefix, timeMs, random.uint32(), random.uint32(), random.uint32(), random.uint32());
}

/** Creates a random operation id (`op_...`) as ngrok returns in `ngrok-operation-id`. */
export function createOperationId(): string {
  const bytes = randomBytes(16);
  return encodeKsuid('op_', Date.now(), bytes.readUInt32BE(0), bytes.readUInt32BE(4), bytes.readUInt32BE(8), bytes.readUInt32BE(12));
}
