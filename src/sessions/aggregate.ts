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

/** Reader of one label's value from a session. */
interface Extractor {
  read: (session: ParsedSession) => string | undefined;
  /** Applied to a present value before it is sanitised. */
  normalize?: (value: string) => string;
  missing: string;
}

const EXTRACTORS: Record<LabelName, Extractor> = {
  country: { read: (session) => session.country, normalize: (value) => value.toUpperCase(), missing: UNKNOWN_VALUE },
  device_type: { read: (session) => session.deviceType, missing: UNKNOWN_VALUE },
  browser: { read: (session) => session.browser, missing: UNKNOWN_VALUE },
  os: { read: (session) => session.os, missing: UNKNOWN_VALUE },
  public_url: { read: (session) => session.publicUrl, missing: UNKNOWN_VALUE },
  route: { read: (session) => session.routeId, missing: NO_REF_VALUE },
  endpoint: { read: (session) => session.endpointId, missing: NO_REF_VALUE },
};

/**
 * Raw values remembered per label with their label value. A few hundred
 * values repeat across every session, so most sessions skip the sanitising.
 * The cap keeps an attribute that differs per session from growing the cache
 * with the session count.
 */
const MAX_CACHED_VALUES_PER_LABEL = 4096;

/** Reads one label of a session, sanitising each distinct raw value once. */
class LabelReader {
  readonly #extractor: Extractor;
  readonly #maxLabelLength: number;
  readonly #redact: (text: string) => string;
  readonly #values = new Map<string, string>();

  constructor(extractor: Extractor, maxLabelLength: number, redact: (text: string) => string) {
    this.#extractor = extractor;
    this.#maxLabelLength = maxLabelLength;
    this.#redact = redact;
  }

  valueOf(session: ParsedSession): string {
    const extractor = this.#extractor;
    const raw = extractor.read(session);
    if (raw === undefined) return extractor.missing;

    const cached = this.#values.get(raw);
    if (cached !== undefined) return cached;
    const normalized = extractor.normalize === undefined ? raw : extractor.normalize(raw);
    const value = sanitizeLabelValue(this.#redact(normalized), this.#maxLabelLength, extractor.missing);
    if (this.#values.size < MAX_CACHED_VALUES_PER_LABEL) this.#values.set(raw, value);
    return value;
  }
}

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
  /** Removes secrets from a label value before it is cut to length; the API key if the API echoes it. */
  redact?: (text: string) => string;
}

/**
 * Session ids seen in one walk. The API lists sessions in id order, and
 * while each id continues that order no id can repeat, so the ids only go
 * into an array, which costs neither hashing nor hash table memory. The
 * first id out of order moves them into a Set, which then finds repeats.
 */
class SeenIds {
  #ordered: string[] = [];
  /** -1 while the ids descend, 1 while they ascend, 0 before the second id. */
  #direction = 0;
  #set: Set<string> | undefined;

  /** Adds an id and returns false when it was added before. */
  add(id: string): boolean {
    if (this.#set !== undefined) return addToSet(this.#set, id);

    const ordered = this.#ordered;
    const last = ordered[ordered.length - 1];
    if (last === undefined) {
      ordered.push(id);
      return true;
    }
    const direction = Math.sign(compareIds(id, last));
    if (direction !== 0 && (this.#direction === 0 || direction === this.#direction)) {
      this.#direction = direction;
      ordered.push(id);
      return true;
    }

    this.#set = new Set(ordered);
    this.#ordered = [];
    return addToSet(this.#set, id);
  }

  get size(): number {
    return this.#set?.size ?? this.#ordered.length;
  }
}

function compareIds(a: string, b: string): number {
  if (a < b) return -1;
  return a > b ? 1 : 0;
}

/** Adds `value` to `set` with one lookup and returns false when it was there. */
function addToSet(set: Set<string>, value: string): boolean {
  const sizeBefore = set.size;
  set.add(value);
  return set.size !== sizeBefore;
}

/** One level of the series lookup: label value to the next level, or to the counts at the last label. */
type SeriesLevel = Map<string, SeriesLevel | SeriesCounts>;

/** Accumulates the sessions of one walk. */
export class SessionAggregator {
  readonly #options: AggregatorOptions;
  readonly #labels: LabelReader[];
  readonly #seenIds = new SeenIds();
  readonly #activeUsers = new Set<string>();
  /** Counts by combination key, in the order the combinations first appeared. */
  readonly #series = new Map<string, SeriesCounts>();
  /**
   * The same counts looked up label by label. The label values come from the
   * readers' caches with their hashes already computed, so a session costs a
   * few map lookups instead of building and hashing a combination key.
   */
  readonly #lookup: SeriesLevel = new Map();
  #expired = 0;
  #active = 0;
  #recentlyActive = 0;
  #duplicates = 0;
  #invalidFields = 0;

  constructor(options: AggregatorOptions) {
    this.#options = options;
    this.#labels = options.labelNames.map((name) => new LabelReader(EXTRACTORS[name], options.maxLabelLength, options.redact ?? ((text) => text)));
  }

  /** Adds the sessions of one page; a session id seen before is skipped and counted as a duplicate. */
  addPage(sessions: readonly ParsedSession[], invalidFields = 0): void {
    this.#invalidFields += invalidFields;
    for (const session of sessions) {
      if (!this.#seenIds.add(session.id)) {
        this.#duplicates++;
        continue;
      }
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

    const counts = this.#countsOf(session);
    counts.active++;
    if (recent) counts.recentlyActive++;
  }

  #countsOf(session: ParsedSession): SeriesCounts {
    const labels = this.#labels;
    const last = labels.length - 1;
    let level = this.#lookup;
    for (let index = 0; index < last; index++) {
      const value = (labels[index] as LabelReader).valueOf(session);
      let next = level.get(value) as SeriesLevel | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(value, next);
      }
      level = next;
    }

    const value = last < 0 ? '' : (labels[last] as LabelReader).valueOf(session);
    let counts = level.get(value) as SeriesCounts | undefined;
    if (counts === undefined) {
      counts = { active: 0, recentlyActive: 0 };
      level.set(value, counts);
      this.#series.set(this.#keyOf(session), counts);
    }
    return counts;
  }

  #keyOf(session: ParsedSession): string {
    return this.#labels.map((label) => label.valueOf(session)).join(KEY_SEPARATOR);
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
