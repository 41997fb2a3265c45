/**
 * The exporter as `npm run build` compiles it into dist/, which is what
 * `npm start` and the image run. The benchmark measures that build rather
 * than tsx's on-the-fly transform, because tsx keeps function names by
 * wrapping every named closure in a helper call, which doubles the cost of
 * page parsing.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The compiled modules the benchmark uses, typed by their sources. */
export interface ExporterBuild {
  app: typeof import('../../src/app.js');
  budget: typeof import('../../src/budget.js');
  config: typeof import('../../src/config.js');
  logger: typeof import('../../src/logger.js');
  selfMetrics: typeof import('../../src/metrics/self.js');
  client: typeof import('../../src/ngrok/client.js');
  pages: typeof import('../../src/ngrok/pages.js');
  aggregate: typeof import('../../src/sessions/aggregate.js');
  snapshot: typeof import('../../src/sessions/snapshot.js');
  version: typeof import('../../src/version.js');
  simulator: typeof import('../../src/simulator/index.js');
}

const REPOSITORY = fileURLToPath(new URL('../../', import.meta.url));

/** Compiles src/ into dist/ with the project's tsconfig.json, as `npm run build` does. */
export function compileExporter(): void {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: REPOSITORY, stdio: 'inherit' });
}

async function load<T>(path: string): Promise<T> {
  return (await import(new URL(`../../dist/${path}`, import.meta.url).href)) as T;
}

/** Imports the compiled modules from dist/; {@link compileExporter} must have run first. */
export async function loadExporterBuild(): Promise<ExporterBuild> {
  return {
    app: await load('app.js'),
    budget: await load('budget.js'),
    config: await load('config.js'),
    logger: await load('logger.js'),
    selfMetrics: await load('metrics/self.js'),
    client: await load('ngrok/client.js'),
    pages: await load('ngrok/pages.js'),
    aggregate: await load('sessions/aggregate.js'),
    snapshot: await load('sessions/snapshot.js'),
    version: await load('version.js'),
    simulator: await load('simulator/index.js'),
  };
}
