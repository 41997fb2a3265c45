/**
 * Reading the text exposition format (version 0.0.4) back into samples with
 * unescaped label values, and linting it with promtool, for tests whose
 * claims are about what Prometheus receives.
 */
import { spawnSync } from 'node:child_process';

/** One sample line: metric name, label values as Prometheus reads them, value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parses the sample lines of an exposition. Label values are unescaped as
 * the format defines (`\\`, `\"` and `\n`). Any other escape or a line that
 * does not parse throws, so a broken exposition fails the test that reads it.
 */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    samples.push(parseSampleLine(line));
  }
  return samples;
}

function parseSampleLine(line: string): Sample {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (nameMatch === null) throw new Error(`no metric name in ${JSON.stringify(line)}`);
  const name = nameMatch[0];
  let position = name.length;
  const labels: Record<string, string> = {};

  if (line[position] === '{') {
    position++;
    while (line[position] !== '}') {
      const labelMatch = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(line.slice(position));
      if (labelMatch === null) throw new Error(`invalid label at ${position} in ${JSON.stringify(line)}`);
      position += labelMatch[0].length;
      let value = '';
      for (;;) {
        const character = line[position];
        if (character === undefined) throw new Error(`unterminated label value in ${JSON.stringify(line)}`);
        position++;
        if (character === '"') break;
        if (character !== '\\') {
          value += character;
          continue;
        }
        const escaped = line[position++];
        if (escaped === 'n') value += '\n';
        else if (escaped === '\\' || escaped === '"') value += escaped;
        else throw new Error(`invalid escape \\${escaped} in ${JSON.stringify(line)}`);
      }
      if (labels[labelMatch[1] as string] !== undefined) throw new Error(`label ${labelMatch[1]} twice in ${JSON.stringify(line)}`);
      labels[labelMatch[1] as string] = value;
      if (line[position] === ',') position++;
    }
    position++;
  }

  if (line[position] !== ' ') throw new Error(`no space before the value in ${JSON.stringify(line)}`);
  const text = line.slice(position + 1);
  // Prometheus parses values with Go's ParseFloat, which accepts NaN in any letter case; prom-client prints "Nan".
  const value = /^nan$/i.test(text) ? Number.NaN : Number(text);
  if (Number.isNaN(value) && !/^nan$/i.test(text)) throw new Error(`invalid value in ${JSON.stringify(line)}`);
  return { name, labels, value };
}

/** Returns the sample key `name{a="x",...}` with labels sorted, for comparing sets of series. */
export function seriesKey(sample: Pick<Sample, 'name' | 'labels'>): string {
  const labels = Object.keys(sample.labels)
    .filter((label) => label !== '__name__')
    .sort()
    .map((label) => `${label}=${JSON.stringify(sample.labels[label])}`);
  return `${sample.name}{${labels.join(',')}}`;
}

/**
 * Removes the families of prom-client's process and Node.js metrics, which
 * promtool 2.42 lints (`nodejs_active_handles_total` is a gauge with a
 * `_total` suffix) and which no API response can change.
 */
export function withoutRuntimeMetrics(text: string): string {
  const kept: string[] = [];
  for (const line of text.split('\n')) {
    const name = /^(?:# (?:HELP|TYPE) )?([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line)?.[1] ?? '';
    if (!name.startsWith('process_') && !name.startsWith('nodejs_')) kept.push(line);
  }
  return kept.join('\n');
}

/** Runs `promtool check metrics` on `text`; returns its exit status and output. */
export function promtoolCheck(text: string): { status: number | null; output: string } {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (result.error !== undefined) throw result.error;
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}
