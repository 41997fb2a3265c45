/** The machine and the source revision of a benchmark run, as BENCHMARKS.md reports them. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';

export interface MachineDescription {
  cpu: string;
  cores: number;
  memory: string;
  node: string;
  os: string;
  date: string;
}

function readOsName(): string {
  try {
    const match = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'));
    return match?.[1] ?? process.platform;
  } catch {
    return process.platform;
  }
}

function readCpuModel(): string {
  try {
    const match = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (match?.[1] !== undefined) return match[1].trim();
  } catch {
    // Not Linux: fall back to what Node reports.
  }
  return cpus()[0]?.model ?? 'unknown';
}

/** Describes this machine; `cores` is what nproc prints, the CPUs this process may use. */
export function describeMachine(): MachineDescription {
  return {
    cpu: readCpuModel(),
    cores: availableParallelism(),
    memory: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    node: process.version,
    os: `${readOsName()}, Linux ${release()}`,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  };
}

/** Returns the commit of the checkout, marked when src/ or test/bench/ has uncommitted changes; `unknown` outside git. */
export function describeRevision(repository: string): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: repository, encoding: 'utf8' }).trim();
    const changes = execFileSync('git', ['status', '--porcelain', '--', 'src', 'test/bench'], { cwd: repository, encoding: 'utf8' }).trim();
    return changes === '' ? commit : `${commit} with uncommitted changes`;
  } catch {
    return 'unknown';
  }
}

/** Load averages over 1, 5 and 15 minutes: other work on the machine skews every figure. */
export function loadAverages(): number[] {
  return loadavg();
}
