#!/usr/bin/env node
/**
 * Entry point: parses the command line, starts the exporter (and, with
 * --demo, the in-process simulated account) and handles signals.
 */
import { startExporter, type RunningExporter } from './app.js';
import { describeConfig, parseCommandLine, type Config } from './config.js';
import { startDemoAccount, type DemoAccount } from './demo.js';
import { ConfigError } from './errors.js';
import { createLogger, type Logger } from './logger.js';
import { VERSION } from './version.js';
import { loadWebConfig } from './web/web-config.js';

/** Exit status for an invalid command line or configuration. */
const EXIT_CONFIG_ERROR = 2;

/** Time allowed for requests in flight to finish after SIGTERM before the process exits anyway. */
const SHUTDOWN_GRACE_MS = 10_000;

async function main(): Promise<void> {
  let config: Config;
  try {
    const parsed = parseCommandLine(process.argv.slice(2), process.env, VERSION);
    if (parsed.kind === 'exit') {
      process.stdout.write(parsed.output);
      return;
    }
    config = parsed.config;
    if (config.webConfigFile !== undefined) await loadWebConfig(config.webConfigFile);
  } catch (error) {
    exitOnConfigError(error);
    return;
  }

  if (config.checkOnly) {
    process.stdout.write(`configuration is valid\n${JSON.stringify(describeConfig(config), null, 2)}\n`);
    return;
  }

  const logger = createLogger({ level: config.logLevel, secret: config.apiKey });
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));

  let demo: DemoAccount | undefined;
  if (config.demo) {
    demo = await startDemoAccount(config, logger);
    config = demo.config;
  }

  logger.info({ version: VERSION, node_version: process.version, ...describeConfig(config) }, 'starting ngrok-sessions-exporter');
  let exporter: RunningExporter;
  try {
    exporter = await startExporter(config, { logger });
  } catch (error) {
    await demo?.close();
    exitOnConfigError(error, logger);
    return;
  }

  handleSignals(exporter, demo, logger);
}

function handleSignals(exporter: RunningExporter, demo: DemoAccount | undefined, logger: Logger): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;

    // Armed before anything that could block, such as a log write.
    const force = setTimeout(() => {
      logger.warn({ grace_seconds: SHUTDOWN_GRACE_MS / 1000 }, 'requests still open after the grace period; exiting anyway');
      process.exit(0);
    }, SHUTDOWN_GRACE_MS);
    force.unref();
    logger.info({ signal }, 'shutting down');

    void exporter
      .close()
      .then(() => demo?.close())
      .then(() => {
        logger.info('stopped');
        process.exit(0);
      });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function exitOnConfigError(error: unknown, logger?: Logger): void {
  if (error instanceof ConfigError) {
    if (logger === undefined) process.stderr.write(`ngrok-sessions-exporter: error: ${error.message}\n`);
    else logger.error({ setting: error.setting }, error.message);
    process.exitCode = EXIT_CONFIG_ERROR;
    return;
  }
  throw error;
}

await main();
