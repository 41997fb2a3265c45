/**
 * An immutable snapshot of one complete walk, with its session gauges
 * rendered once into exposition text. Scrapes serve that text as it is, so
 * every scrape of a snapshot shows the same series, and a label combination
 * that vanished from the API is gone from the next snapshot.
 *
 * The text is written directly, in the form prom-client 15 gives a registry
 * of these gauges, because prom-client's Gauge.set hashes a label object for
 * each of up to 20,000 series, which took longer than the walk itself.
 */

import { KEY_SEPARATOR, OVERFLOW_VALUE, type AggregateResult, type SeriesCounts } from './aggregate.js';

/** A complete walk, ready to serve. */
export interface Snapshot {
  /** End of the walk, in milliseconds since the epoch. */
  completedAtMs: number;
  pages: number;
  listed: number;
  active: number;
  expired: number;
  recentlyActive: number;
  activeUsers: number;
  /** Series of `ngrok_app_sessions_active` after folding. */
  activeSeries: number;
  /** Active sessions counted in the overflow series. */
  foldedSessions: number;
  duplicates: number;
  invalidFields: number;
  /** Exposition text of the session gauges (text format 0.0.4). */
  text: string;
}

const CACHED_NOTE = 'Cached: the value is from the last complete walk of the ngrok API, see ngrok_exporter_snapshot_age_seconds.';

/** Builds a snapshot, folding the rarest label combinations beyond `maxSeries` into one overflow series. */
export async function buildSnapshot(result: AggregateResult, options: { pages: number; completedAtMs: number; maxSeries: number }): Promise<Snapshot> {
  const labelNames = [...result.labelNames];
  const active = foldSeries(result.series, (counts) => counts.active, options.maxSeries);
  const recent = foldSeries(result.series, (counts) => counts.recentlyActive, options.maxSeries);

  const labeledHelp = (help: string): string => `${help} ${CACHED_NOTE}`;
  const families = [
    renderFamily('ngrok_app_sessions_active', labeledHelp('Application sessions that have not expired.'), seriesLines('ngrok_app_sessions_active', labelNames, active.series)),
    renderFamily(
      'ngrok_app_sessions_recently_active',
      labeledHelp('Sessions that have not expired and were active within the recent window (--sessions.recent-window).'),
      seriesLines('ngrok_app_sessions_recently_active', labelNames, recent.series),
    ),
    renderFamily('ngrok_app_sessions_expired', labeledHelp('Sessions still listed by the API whose expires_at has passed.'), [sampleLine('ngrok_app_sessions_expired', '', result.expired)]),
    renderFamily('ngrok_app_sessions_listed', labeledHelp('Sessions listed by the API, expired or not.'), [sampleLine('ngrok_app_sessions_listed', '', result.listed)]),
    renderFamily('ngrok_app_users_active', labeledHelp('Distinct application users with at least one session that has not expired.'), [
      sampleLine('ngrok_app_users_active', '', result.activeUsers),
    ]),
    renderFamily('ngrok_exporter_refresh_pages', labeledHelp('Pages walked by the last complete walk.'), [sampleLine('ngrok_exporter_refresh_pages', '', options.pages)]),
    renderFamily('ngrok_exporter_session_series', labeledHelp('Series of ngrok_app_sessions_active in the served snapshot.'), [
      sampleLine('ngrok_exporter_session_series', '', active.series.size),
    ]),
    renderFamily(
      'ngrok_exporter_sessions_folded',
      labeledHelp(`Sessions counted in the ${OVERFLOW_VALUE} series because the gauge reached --sessions.max-series.`),
      [
        sampleLine('ngrok_exporter_sessions_folded', '{metric="ngrok_app_sessions_active"}', active.foldedSessions),
        sampleLine('ngrok_exporter_sessions_folded', '{metric="ngrok_app_sessions_recently_active"}', recent.foldedSessions),
      ],
    ),
  ];

  return Object.freeze({
    completedAtMs: options.completedAtMs,
    pages: options.pages,
    listed: result.listed,
    active: result.active,
    expired: result.expired,
    recentlyActive: result.recentlyActive,
    activeUsers: result.activeUsers,
    activeSeries: active.series.size,
    foldedSessions: active.foldedSessions,
    duplicates: result.duplicates,
    invalidFields: result.invalidFields,
    // prom-client separates metric families with a blank line and ends the text with a newline.
    text: `${families.join('\n\n')}\n`,
  });
}

interface FoldedSeries {
  /** Value by combination key, zero values left out. */
  series: Map<string, number>;
  foldedSessions: number;
}

/**
 * Keeps the `maxSeries - 1` largest combinations and sums the rest into one
 * overflow series, so the sum over all series stays exact. Ties are broken by
 * key, so the same input always folds the same way.
 */
function foldSeries(all: Map<string, SeriesCounts>, valueOf: (counts: SeriesCounts) => number, maxSeries: number): FoldedSeries {
  const entries: [string, number][] = [];
  for (const [key, counts] of all) {
    const value = valueOf(counts);
    if (value > 0) entries.push([key, value]);
  }
  if (entries.length <= maxSeries) return { series: new Map(entries), foldedSessions: 0 };

  entries.sort(byValueThenKey);
  const kept = entries.slice(0, Math.max(0, maxSeries - 1));
  const foldedSessions = entries.slice(kept.length).reduce((sum, [, value]) => sum + value, 0);
  const series = new Map(kept);
  series.set(OVERFLOW_KEY, foldedSessions);
  return { series, foldedSessions };
}

/** The key whose every label value is {@link OVERFLOW_VALUE}; its length is fixed when used. */
const OVERFLOW_KEY = '\u0001overflow';

/** Renders the HELP and TYPE lines and the samples of one gauge. */
function renderFamily(name: string, help: string, samples: readonly string[]): string {
  const header = `# HELP ${name} ${escapeText(help)}\n# TYPE ${name} gauge`;
  return samples.length === 0 ? header : `${header}\n${samples.join('\n')}`;
}

function seriesLines(name: string, labelNames: readonly string[], series: Map<string, number>): string[] {
  // A gauge without labels has one series even when nothing was counted, as a prom-client Gauge has.
  if (labelNames.length === 0) return [sampleLine(name, '', series.get('') ?? series.get(OVERFLOW_KEY) ?? 0)];

  // Label values repeat across many series, so each distinct value is escaped once.
  const escaped = new Map<string, string>();
  const pair = (labelName: string, value: string): string => {
    let text = escaped.get(value);
    if (text === undefined) {
      text = escapeLabelValue(value);
      escaped.set(value, text);
    }
    return `${labelName}="${text}"`;
  };

  const lines: string[] = [];
  for (const [key, value] of series) {
    const values = key === OVERFLOW_KEY ? labelNames.map(() => OVERFLOW_VALUE) : key.split(KEY_SEPARATOR);
    const labels = labelNames.map((labelName, index) => pair(labelName, values[index] as string));
    lines.push(sampleLine(name, `{${labels.join(',')}}`, value));
  }
  return lines;
}

/** Formats one sample; the counts are whole numbers, printed as JavaScript and prom-client print them. */
function sampleLine(name: string, labels: string, value: number): string {
  return `${name}${labels} ${value}`;
}

/** Escapes a HELP text: backslash and line feed (text format 0.0.4). */
function escapeText(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Escapes a label value: backslash, line feed and double quote (text format 0.0.4). */
function escapeLabelValue(value: string): string {
  return escapeText(value).replace(/"/g, '\\"');
}

/** Orders combinations by descending value, then by key, so folding is deterministic. */
function byValueThenKey(a: [string, number], b: [string, number]): number {
  if (a[1] !== b[1]) return b[1] - a[1];
  if (a[0] === b[0]) return 0;
  return a[0] < b[0] ? -1 : 1;
}
