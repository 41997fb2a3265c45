/**
 * A real Prometheus server for tests, from Debian's `prometheus` package,
 * bound to 127.0.0.1 with its data in a temporary folder.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Set in CI, where a missing Prometheus is a failure rather than a reason to skip. */
export const PROMETHEUS_REQUIRED = process.env.REQUIRE_PROMETHEUS === '1';

/** Returns why Prometheus tests cannot run here, or undefined when they can. */
export function prometheusMissingReason(): string | undefined {
  for (const binary of ['prometheus', 'promtool']) {
    const probe = spawnSync(binary, ['--version'], { encoding: 'utf8' });
    if (probe.error !== undefined || probe.status !== 0) {
      return `${binary} is not installed (apt-get install prometheus)`;
    }
  }
  return undefined;
}

/** Finds a free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface PrometheusServer {
  url: string;
  /** Runs an instant query; returns the result vector. */
  query(expression: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  /** Waits until the expression returns at least one sample. */
  waitFor(expression: string, timeoutMs: number): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  stop(): Promise<void>;
  logs(): string;
}

export interface PrometheusOptions {
  /** Full prometheus.yml text. */
  config: string;
  /** Extra files written beside the config, by name. */
  files?: Record<string, string>;
}

/** Starts Prometheus and resolves once it is ready. */
export async function startPrometheus(options: PrometheusOptions): Promise<PrometheusServer> {
  const folder = mkdtempSync(join(tmpdir(), 'prometheus-test-'));
  writeFileSync(join(folder, 'prometheus.yml'), options.config);
  for (const [name, text] of Object.entries(options.files ?? {})) writeFileSync(join(folder, name), text);

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  const child: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${join(folder, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(folder, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));

  const stop = async (): Promise<void> => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(folder, { recursive: true, force: true });
  };

  const query = async (expression: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
    const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expression)}`);
    const body = (await response.json()) as { status: string; error?: string; data?: { resultType: string; result: unknown } };
    if (body.status !== 'success') throw new Error(`query ${expression} failed: ${body.error ?? response.status}`);
    const result = body.data?.result;
    if (body.data?.resultType === 'scalar') return [{ metric: {}, value: result as [number, string] }];
    return result as { metric: Record<string, string>; value: [number, string] }[];
  };

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}:\n${output}`);
    try {
      const response = await fetch(`${url}/-/ready`);
      if (response.ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus did not become ready within 30 s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  return {
    url,
    query,
    waitFor: async (expression, timeoutMs) => {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const result = await query(expression);
        if (result.length > 0) return result;
        if (Date.now() > until) throw new Error(`no result for ${expression} within ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    },
    stop,
    logs: () => output,
  };
}
