import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it, onTestFinished } from 'vitest';

import { startSimulator } from '../src/simulator/index.js';
import { TEST_API_KEY, until } from './support/harness.js';
import { freePort } from './support/prometheus.js';

const MAIN = new URL('../dist/main.js', import.meta.url).pathname;

function run(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env }, timeout: 20_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('command line', () => {
  it.each([
    [['--refresh.interval=soon'], {}, /--refresh\.interval must be a duration such as .* got "soon"/],
    [[], { NGROK_EXPORTER_LOG_LEVEL: 'loud' }, /NGROK_EXPORTER_LOG_LEVEL must be one of debug, info, warn, error, got "loud"/],
    [['--ngrok.requests-per-minute=121'], {}, /from 1 to 120, got "121"/],
    [['--bogus'], {}, /Unknown option '--bogus'.*--help/],
    [['--web.config.file=/nonexistent/web.yml'], {}, /--web\.config\.file/],
  ])('exits 2 on %j %j', (args, env, message) => {
    const result = run(args, { NGROK_API_KEY: TEST_API_KEY, ...env });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toContain(TEST_API_KEY);
  });

  it('exits 2 without a key and says how to set one', () => {
    const result = run([]);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/missing ngrok API key: set NGROK_API_KEY/);
  });

  it('prints help and version', () => {
    const help = run(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--web.listen-address=HOST:PORT');
    const version = run(['--version']);
    expect(version.status).toBe(0);
    expect(version.stdout).toMatch(/^ngrok-sessions-exporter \d+\.\d+\.\d+/);
  });

  it('checks a configuration without starting', () => {
    const folder = mkdtempSync(join(tmpdir(), 'cli-test-'));
    onTestFinished(() => rmSync(folder, { recursive: true, force: true }));
    writeFileSync(join(folder, 'key'), TEST_API_KEY);
    const result = run(['--config.check', '--ngrok.api-key-file', join(folder, 'key')]);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('configuration is valid');
    expect(result.stdout).toContain('"api_key": "<redacted>"');
    expect(result.stdout).not.toContain(TEST_API_KEY);
  });

  it('exits 2 when the port is taken', async () => {
    const port = await freePort();
    const blocker = (await import('node:net')).createServer().listen(port, '127.0.0.1');
    await once(blocker, 'listening');
    try {
      const child = spawn(process.execPath, [MAIN, '--demo', `--web.listen-address=127.0.0.1:${port}`], { env: { PATH: process.env.PATH ?? '' } });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const [code] = (await once(child, 'exit')) as [number];
      expect(code).toBe(2);
      expect(output).toMatch(/cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
    } finally {
      blocker.close();
    }
  });

  it('stops on SIGTERM during a walk with status 0', async () => {
    const simulator = await startSimulator({ apiKey: TEST_API_KEY, syntheticSessions: 1000, latencyMs: 300, requestsPerMinute: null });
    const port = await freePort();
    const child = spawn(process.execPath, [MAIN, `--ngrok.api-url=${simulator.url}`, `--web.listen-address=127.0.0.1:${port}`], {
      env: { PATH: process.env.PATH ?? '', NGROK_API_KEY: TEST_API_KEY },
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      await until(() => simulator.stats.requests >= 2, 15_000);
      // A scrape in flight while the signal arrives must still get its response.
      const scrape = fetch(`http://127.0.0.1:${port}/metrics`, { headers: { 'x-prometheus-scrape-timeout-seconds': '1.5' } });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const response = await scrape;
      expect(response.status).toBe(200);
      expect(await response.text()).toContain('ngrok_up 0');

      const [code] = (await exited) as [number];
      expect(code).toBe(0);
      expect(output).toContain('"msg":"shutting down"');
      expect(output).toContain('"msg":"stopped"');
      expect(output).not.toContain(TEST_API_KEY);
      await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
    } finally {
      child.kill('SIGKILL');
      await simulator.close();
    }
  });
});
