/**
 * Removal of the API key from text that leaves the process. The API may echo
 * the key back (ngrok reportedly does in ERR_NGROK_202 messages), plainly or
 * encoded inside a URL, a JSON string or an HTML page. Each character of the
 * key therefore matches in any of those encodings and in any letter case.
 */
import type { Secret } from './config.js';

export const REDACTED = '<redacted>';

/**
 * Parts of an ngrok key (FIRSTPART_SECONDPART) at least this long are removed
 * on their own too, so a message that quotes one part leaks nothing. Shorter
 * parts, such as `demo` in the keys of --demo, are common words.
 */
const MIN_PART_LENGTH = 16;

const patterns = new WeakMap<Secret, RegExp | null>();

/**
 * Returns `text` with every copy of the key, and of each long part of it,
 * replaced: plain, percent-encoded once or twice, JSON-escaped, as HTML
 * character references, or any mix of these, in any letter case.
 */
export function redactSecret(text: string, secret: Secret | undefined): string {
  if (secret === undefined) return text;
  const pattern = patternFor(secret);
  return pattern === null ? text : text.replace(pattern, REDACTED);
}

function patternFor(secret: Secret): RegExp | null {
  const cached = patterns.get(secret);
  if (cached !== undefined) return cached;

  const key = secret.reveal();
  const forms = key === '' ? [] : [key, ...key.split('_').filter((part) => part.length >= MIN_PART_LENGTH && part !== key)];
  // The whole key comes first in the alternation, so it becomes one marker rather than one per part.
  const pattern = forms.length === 0 ? null : new RegExp(forms.map((form) => Array.from(form, characterPattern).join('')).join('|'), 'gi');
  patterns.set(secret, pattern);
  return pattern;
}

/** Matches one character of the key in each encoding. */
function characterPattern(character: string): string {
  const codePoint = character.codePointAt(0) as number;
  const percent = Array.from(Buffer.from(character, 'utf8'), (byte) => `%(?:25)?${hex(byte, 2)}`).join('');
  const json = Array.from({ length: character.length }, (_, index) => `\\\\u${hex(character.charCodeAt(index), 4)}`).join('');
  const html = `&#0*${codePoint};|&#x0*${codePoint.toString(16)};`;
  return `(?:${escapeRegExp(character)}|${percent}|${json}|${html})`;
}

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, '0');
}

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}
