/** Summary statistics of repeated measurements. */

/** Median and spread of a set of runs. */
export interface Summary {
  runs: number;
  median: number;
  min: number;
  max: number;
  q1: number;
  q3: number;
}

/** Summarises `values`; the quartiles use linear interpolation between the sorted values. */
export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) throw new Error('cannot summarise an empty set of runs');
  const sorted = [...values].sort((a, b) => a - b);
  return {
    runs: sorted.length,
    median: quantile(sorted, 0.5),
    min: sorted[0] as number,
    max: sorted[sorted.length - 1] as number,
    q1: quantile(sorted, 0.25),
    q3: quantile(sorted, 0.75),
  };
}

function quantile(sorted: readonly number[], q: number): number {
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const above = Math.ceil(position);
  const low = sorted[below] as number;
  const high = sorted[above] as number;
  return low + (high - low) * (position - below);
}

/** Formats a summary as `median (min–max)` with `digits` decimals and a unit. */
export function formatSummary(summary: Summary, digits: number, unit = ''): string {
  const format = (value: number): string => value.toFixed(digits);
  const suffix = unit === '' ? '' : ` ${unit}`;
  if (summary.runs === 1) return `${format(summary.median)}${suffix}`;
  return `${format(summary.median)}${suffix} (${format(summary.min)}–${format(summary.max)})`;
}
