/**
 * --demo: a simulated ngrok account served from inside the process on
 * 127.0.0.1, so the exporter can be tried without an ngrok account. It is
 * used only when --demo is given; without it the exporter never falls back to
 * simulated data.
 */
import { randomBytes } from 'node:crypto';

import { Secret, type Config } from './config.js';
import type { Logger } from './logger.js';
import { startSimulator } from './simulator/index.js';

export interface DemoAccount {
  /** The given config pointed at the simulated account, with its generated key. */
  config: Config;
  close(): Promise<void>;
}

/** Starts the simulated account and returns the config that targets it. */
export async function startDemoAccount(config: Config, logger: Logger): Promise<DemoAccount> {
  const apiKey = `demo_${randomBytes(16).toString('hex')}`;
  const simulator = await startSimulator({
    apiKey,
    syntheticSessions: config.demoSessions,
    churn: true,
    // The same rolling limit as the real API, so the budget logic runs as in production.
    requestsPerMinute: 120,
  });
  logger.info({ api_url: simulator.url, sessions: config.demoSessions }, 'demo mode: serving a simulated ngrok account');

  const demoConfig: Config = Object.freeze({ ...config, apiUrl: new URL(simulator.url), apiKey: new Secret(apiKey) });
  return { config: demoConfig, close: () => simulator.close() };
}
