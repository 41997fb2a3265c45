import type { DestinationStream } from 'pino';

/** A pino destination that keeps every log line, parsed, for assertions. */
export class LogCapture implements DestinationStream {
  readonly lines: string[] = [];

  write(line: string): void {
    this.lines.push(line);
  }

  records(): Record<string, unknown>[] {
    return this.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  /** Records whose message matches. */
  withMessage(pattern: RegExp): Record<string, unknown>[] {
    return this.records().filter((record) => typeof record.msg === 'string' && pattern.test(record.msg));
  }

  text(): string {
    return this.lines.join('');
  }
}
