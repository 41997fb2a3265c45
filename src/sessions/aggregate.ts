/**
 * Page-by-page aggregation of sessions into label combinations. Only the
 * selected labels are computed, and a page's sessions are dropped once
 * counted, so memory grows with the number of label combinations plus one
 * id string per session (kept to count each session once).
 */
import type { LabelName } from '../config.js';
import type { ParsedSession } from '../ngrok/parse.js';

/** Label value of an attribute that is missing, null or empty. */
export const UNKNOWN_VALUE = 'unknown';
/** Label value of a missing reference such as `route` on an endpoint session. */
export const NO_REF_VALUE = 'none';
/** Label value of every label of the series that gathers folded label combinations. */
export const OVERFLOW_VALUE = '__overflow__';

type Extractor = (session: ParsedSession) => string | undefined;

const EXTRACTORS: Record<LabelName, { read: Extractor; missing: string }> = {
  country: { read: (session) => session.country?.toUpperCase(), missing: UNKNOWN_VALUE },
  device_type: { read: (session) => session.deviceType, missing: UNKNOWN_VALUE },
  browser: { read: (session) => session.browser, missing: UNKNOWN_VALUE },
  os: { read: (session) => session.os, missing: UNKNOWN_VALUE },
  public_url: { read: (session) => session.publicUrl, missing: UNKNOWN_VALUE },
  route: { read: (session) => session.routeId, missing: NO_REF_VALUE },
  endpoint: { read: (session) => session.endpointId, missing: NO_REF_VALUE },
};

/** Counts of one label combination. */
export interface SeriesCounts {
  active: number;
  recentlyActive: number;
}

/** Totals of one complete walk, before series are capped. */
export interface AggregateResult {
  labelNames: readonly LabelName[];
  /** Label values by combination key; the key joins the values with {@link KEY_SEPARATOR}. */
  series: Map<string, SeriesCounts>;
  listed: number;
  active: number;
  expired: number;
  recentlyActive: number;
  activeUsers: number;
  duplicates: number;
  invalidFields: number;
}

/** Separator of label values in a combination key; label values never contain it. */
export const KEY_SEPARATOR = '\u0000';

export interface AggregatorOptions {
  labelNames: readonly LabelName[];
  /** The refresh time: a session is active when it expires after it. */
  nowMs: number;
  recentWindowMs: number;
  maxLabelLength: number;
}

/** Accumulates the sessions of one walk. */
export class SessionAggregator {
  readonly #options: AggregatorOptions;
  readonly #extractors: { read: Extractor; missing: string }[];
  readonly #seenIds = new Set<string>();
  readonly #activeUsers = new Set<string>();
  readonly #series = new Map<string, SeriesCounts>();
  #expired = 0;
  #active = 0;
  #recentlyActive = 0;
  #duplicates = 0;
  #invalidFields = 0;

  constructor(options: AggregatorOptions) {
    this.#options = options;
    this.#extractors = options.labelNames.map((name) => EXTRACTORS[name]);
  }

  /** Adds the sessions of one page; a session id seen before is skipped and counted as a duplicate. */
  addPage(sessions: readonly ParsedSession[], invalidFields = 0): void {
    this.#invalidFields += invalidFields;
    for (const session of sessions) {
      if (this.#seenIds.has(session.id)) {
        this.#duplicates++;
        continue;
      }
      this.#seenIds.add(session.id);
      this.#addSession(session);
    }
  }

  #addSession(session: ParsedSession): void {
    const { nowMs, recentWindowMs } = this.#options;
    if (session.expiresAtMs !== undefined && session.expiresAtMs <= nowMs) {
      this.#expired++;
      return;
    }

    this.#active++;
    if (session.userId !== undefined) this.#activeUsers.add(session.userId);
    const recent = session.lastActiveMs !== undefined && session.lastActiveMs > nowMs - recentWindowMs;
    if (recent) this.#recentlyActive++;

    const key = this.#keyOf(session);
    let counts = this.#series.get(key);
    if (counts === undefined) {
      counts = { active: 0, recentlyActive: 0 };
      this.#series.set(key, counts);
    }
    counts.active++;
    if (recent) counts.recentlyActive++;
  }

  #keyOf(session: ParsedSession): string {
    let key = '';
    for (let index = 0; index < this.#extractors.length; index++) {
      const extractor = this.#extractors[index] as { read: Extractor; missing: string };
      const raw = extractor.read(session);
      const value = raw === undefined ? extractor.missing : sanitizeLabelValue(raw, this.#options.maxLabelLength, extractor.missing);
      key = index === 0 ? value : key + KEY_SEPARATOR + value;
    }
    return key;
  }

  /** Returns the totals; the aggregator must not be used afterwards. */
  finish(): AggregateResult {
    return {
      labelNames: this.#options.labelNames,
      series: this.#series,
      listed: this.#seenIds.size,
      active: this.#active,
      expired: this.#expired,
      recentlyActive: this.#recentlyActive,
      activeUsers: this.#activeUsers.size,
      duplicates: this.#duplicates,
      invalidFields: this.#invalidFields,
    };
  }
}

/**
 * Control characters and bidirectional formatting marks, which would make a
 * label value print misleadingly in terminals and dashboards.
 */
const UNSAFE_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Returns a label value that any Prometheus parser accepts: well-formed
 * UTF-8, no control characters, at most `maxLength` code points (a cut value
 * ends with "…"). A value left empty becomes `missing`, and a value equal to
 * {@link OVERFLOW_VALUE} gets a U+FFFD suffix before the cut, so the result
 * never equals it.
 */
export function sanitizeLabelValue(raw: string, maxLength: number, missing: string): string {
  let value = raw.toWellFormed().replace(UNSAFE_CHARACTERS, '\uFFFD').trim();
  if (value === '') return missing;
  // The overflow series owns this value; a session that sends it must not merge into that series.
  if (value === OVERFLOW_VALUE) value = `${value}\uFFFD`;

  if (value.length > maxLength) {
    const codePoints = Array.from(value);
    if (codePoints.length > maxLength) value = `${codePoints.slice(0, maxLength - 1).join('')}…`;
  }
  return value;
}
