/**
 * The pino logger: JSON lines on standard output, fields first and a short
 * event phrase as the message, errors under `err`. Every line passes through
 * a final filter that removes the API key, whatever field it reached.
 */
import { destination as pinoDestination, pino, type DestinationStream, type Logger } from 'pino';

import type { LogLevel, Secret } from './config.js';
import { redactSecret } from './redact.js';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level: LogLevel;
  secret?: Secret;
  /** Destination of the lines; standard output by default. Tests pass a stream to read them. */
  destination?: DestinationStream;
}

/** Creates the process logger. */
export function createLogger({ level, secret, destination }: LoggerOptions): Logger {
  const options = {
    level,
    base: { service: 'ngrok-sessions-exporter' },
    redact: { paths: ['apiKey', '*.apiKey', 'authorization', '*.authorization', 'headers.authorization'], censor: '<redacted>' },
    hooks: {
      streamWrite: (line: string): string => redactSecret(line, secret),
    },
  };
  return pino(options, destination ?? standardOutput());
}

/**
 * Standard output, written synchronously. pino's default asynchronous
 * destination retries a write that failed with EPIPE without end when it
 * flushes at exit, so a closed pipe (a log collector that died) would hang
 * the shutdown. Here a broken pipe drops the lines instead.
 */
function standardOutput(): DestinationStream {
  const stream = pinoDestination({ dest: 1, sync: true });
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') process.stderr.write(`log output failed: ${error.message}\n`);
  });
  return stream;
}
