/**
 * Removal of the API key from text that leaves the process. The API may echo
 * the key back (ngrok reportedly does in ERR_NGROK_202 messages), plainly or
 * percent-encoded inside a URL, so every form is replaced.
 */
import type { Secret } from './config.js';

export const REDACTED = '<redacted>';

/** Returns `text` with every plain, percent-encoded and JSON-escaped copy of the key replaced. */
export function redactSecret(text: string, secret: Secret | undefined): string {
  if (secret === undefined) return text;
  const key = secret.reveal();
  if (key.length === 0) return text;

  let result = text;
  for (const form of new Set([key, encodeURIComponent(key), JSON.stringify(key).slice(1, -1)])) {
    result = result.split(form).join(REDACTED);
  }
  return result;
}
