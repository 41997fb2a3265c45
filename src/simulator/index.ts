/**
 * Simulator of the ngrok Application Sessions API (`GET /app/sessions`) with a synthetic
 * account, for demo mode, tests and the benchmark. Apart from the error classes of
 * src/errors.ts it uses only Node built-ins.
 */
export { startSimulator } from './simulator.js';
export type { ChurnOptions, Simulator, SimulatorAccount, SimulatorOptions } from './simulator.js';
export type { RequestRecord, SimulatorStats } from './stats.js';
export { generateSessions, formatTime, API_ORIGIN, DEFAULT_EXPIRED_RETENTION_MS, DEFAULT_SEED } from './generate.js';
export type { GenerateOptions } from './generate.js';
export { isActiveAt } from './account.js';
export { SESSION_ID_PREFIX } from './ids.js';
export type {
  CorruptFault,
  DelayFault,
  DestroyFault,
  Fault,
  FaultRequest,
  RespondFault,
  RewriteFault,
} from './faults.js';
export type { AppSession, BrowserSession, Ref, SessionLocation, SessionPage, UserAgent } from './types.js';
