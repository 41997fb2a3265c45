/**
 * An immutable snapshot of one complete walk, with its session gauges
 * rendered once into exposition text. Scrapes serve that text as it is, so
 * every scrape of a snapshot shows the same series, and a label combination
 * that vanished from the API is gone from the next snapshot.
 */
import { Gauge, Registry } from 'prom-client';

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

  const registry = new Registry();
  const gauge = (name: string, help: string, withLabels: boolean): Gauge =>
    new Gauge({ name, help: `${help} ${CACHED_NOTE}`, labelNames: withLabels ? labelNames : [], registers: [registry] });

  const activeGauge = gauge('ngrok_app_sessions_active', 'Application sessions that have not expired.', true);
  setSeries(activeGauge, labelNames, active.series);
  const recentGauge = gauge(
    'ngrok_app_sessions_recently_active',
    'Sessions that have not expired and were active within the recent window (--sessions.recent-window).',
    true,
  );
  setSeries(recentGauge, labelNames, recent.series);
  gauge('ngrok_app_sessions_expired', 'Sessions still listed by the API whose expires_at has passed.', false).set(result.expired);
  gauge('ngrok_app_sessions_listed', 'Sessions listed by the API, expired or not.', false).set(result.listed);
  gauge('ngrok_app_users_active', 'Distinct application users with at least one session that has not expired.', false).set(result.activeUsers);
  gauge('ngrok_exporter_refresh_pages', 'Pages walked by the last complete walk.', false).set(options.pages);
  gauge('ngrok_exporter_session_series', 'Series of ngrok_app_sessions_active in the served snapshot.', false).set(active.series.size);

  const folded = new Gauge({
    name: 'ngrok_exporter_sessions_folded',
    help: `Sessions counted in the ${OVERFLOW_VALUE} series because the gauge reached --sessions.max-series. ${CACHED_NOTE}`,
    labelNames: ['metric'],
    registers: [registry],
  });
  folded.set({ metric: 'ngrok_app_sessions_active' }, active.foldedSessions);
  folded.set({ metric: 'ngrok_app_sessions_recently_active' }, recent.foldedSessions);

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
    text: await registry.metrics(),
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

  entries.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const kept = entries.slice(0, Math.max(0, maxSeries - 1));
  const foldedSessions = entries.slice(kept.length).reduce((sum, [, value]) => sum + value, 0);
  const series = new Map(kept);
  series.set(OVERFLOW_KEY, foldedSessions);
  return { series, foldedSessions };
}

/** The key whose every label value is {@link OVERFLOW_VALUE}; its length is fixed when used. */
const OVERFLOW_KEY = '\u0001overflow';

function setSeries(gauge: Gauge, labelNames: string[], series: Map<string, number>): void {
  for (const [key, value] of series) {
    const values = key === OVERFLOW_KEY ? labelNames.map(() => OVERFLOW_VALUE) : key.split(KEY_SEPARATOR);
    const labels: Record<string, string> = {};
    labelNames.forEach((name, index) => {
      labels[name] = values[index] as string;
    });
    gauge.set(labels, value);
  }
}
