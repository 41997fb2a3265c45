/**
 * Resident memory of the current process, read from /proc/self/status on
 * Linux: VmRSS now and VmHWM, the peak since start or since the last reset.
 */
import { readFileSync, writeFileSync } from 'node:fs';

function readStatusKilobytes(field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
    return match === null ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** Current resident set size in bytes. */
export function residentBytes(): number {
  return readStatusKilobytes('VmRSS') ?? process.memoryUsage().rss;
}

/**
 * Tracks the peak resident set size from now on. The kernel's own peak
 * (VmHWM) is reset through /proc/self/clear_refs where the kernel allows it,
 * and sampling every few milliseconds covers the case where it does not.
 */
export class PeakTracker {
  readonly kernelPeak: boolean;
  /** Resident set size when tracking started, in bytes. */
  readonly startBytes: number;
  #sampledPeak: number;
  readonly #timer: NodeJS.Timeout;

  constructor(sampleIntervalMs = 5) {
    this.kernelPeak = resetKernelPeak();
    this.startBytes = residentBytes();
    this.#sampledPeak = this.startBytes;
    this.#timer = setInterval(() => {
      this.#sampledPeak = Math.max(this.#sampledPeak, residentBytes());
    }, sampleIntervalMs);
  }

  /** Stops sampling and returns the peak in bytes. */
  stop(): number {
    clearInterval(this.#timer);
    const sampled = Math.max(this.#sampledPeak, residentBytes());
    const kernel = this.kernelPeak ? readStatusKilobytes('VmHWM') : undefined;
    return Math.max(sampled, kernel ?? 0);
  }
}

/** Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0 and later). */
function resetKernelPeak(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}
