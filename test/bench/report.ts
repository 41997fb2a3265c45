/** Sections of BENCHMARKS.md and their rendering as Markdown. */
import { writeFileSync } from 'node:fs';

import type { MachineDescription } from './machine.js';

/** A target of the benchmark and whether the measurement meets it. */
export interface TargetCheck {
  target: string;
  measured: string;
  /** Undefined when the run could not decide, such as a figure the machine cannot produce. */
  met: boolean | undefined;
}

/** One scenario's results. */
export interface Section {
  title: string;
  /** Markdown blocks: paragraphs and tables, in order. */
  blocks: string[];
  targets: TargetCheck[];
}

/** Renders a Markdown table; cells must not contain `|`. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Formats a byte count in MiB with one decimal. */
export function mebibytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Formats an integer with thousands separators. */
export function count(value: number): string {
  return value.toLocaleString('en-US');
}

function verdict(met: boolean | undefined): string {
  if (met === undefined) return 'not decided';
  return met ? 'met' : '**missed**';
}

export interface Report {
  machine: MachineDescription;
  revision: string;
  command: string;
  durationSeconds: number;
  loadBefore: readonly number[];
  loadAfter: readonly number[];
  sections: readonly Section[];
  /** Paragraphs after the summary: method notes that apply to every section. */
  notes: readonly string[];
}

/** Writes the report as Markdown to `path`. */
export function writeReport(path: string, report: Report): void {
  const { machine } = report;
  const load = (values: readonly number[]): string => values.map((value) => value.toFixed(2)).join(' / ');
  const lines: string[] = [
    '# Benchmarks',
    '',
    `Measured with \`${report.command}\` at revision ${report.revision} on ${machine.date} (${Math.round(report.durationSeconds)} s for the whole run).`,
    '',
    table(
      ['machine', ''],
      [
        ['CPU', machine.cpu],
        ['cores (nproc)', String(machine.cores)],
        ['memory', machine.memory],
        ['Node.js', machine.node],
        ['OS', machine.os],
        ['load average (1/5/15 min) before / after', `${load(report.loadBefore)}, ${load(report.loadAfter)}`],
      ],
    ),
    '',
    '## Summary',
    '',
    table(
      ['scenario', 'target', 'measured', 'verdict'],
      report.sections.flatMap((section) => section.targets.map((check) => [section.title, check.target, check.measured, verdict(check.met)])),
    ),
    '',
    ...report.notes.flatMap((note) => [note, '']),
  ];
  for (const section of report.sections) {
    lines.push(`## ${section.title}`, '');
    for (const block of section.blocks) lines.push(block, '');
  }
  writeFileSync(path, `${lines.join('\n').trimEnd()}\n`);
}
