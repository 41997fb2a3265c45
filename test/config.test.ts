import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';

import { describe, expect, it, onTestFinished } from 'vitest';

import { ConfigError } from '../src/errors.js';
import { describeConfig, envNameOf, formatDuration, helpText, parseCommandLine, parseConfig, parseDuration } from '../src/config.js';

const KEY = 'test_key_2pZvpzb8BsmXBrLLDv8fsFpMq5a';
const env = { NGROK_API_KEY: KEY };

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('parseConfig', () => {
  it('applies the documented defaults', () => {
    const config = parseConfig([], env);
    expect(config.apiUrl.href).toBe('https://api.ngrok.com/');
    expect(config.requestsPerMinute).toBe(60);
    expect(config.refreshIntervalMs).toBe(60_000);
    expect(config.maxStalenessMs).toBe(15 * 60_000);
    expect(config.recentWindowMs).toBe(5 * 60_000);
    expect(config.labels).toEqual(['country', 'device_type', 'browser', 'route']);
    expect(config.listenAddress).toEqual({ host: '', port: 10119 });
    expect(config.telemetryPath).toBe('/metrics');
    expect(config.apiKey?.reveal()).toBe(KEY);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('takes flags over environment variables', () => {
    const config = parseConfig(['--refresh.interval=2m'], { ...env, NGROK_EXPORTER_REFRESH_INTERVAL: '90s', NGROK_API_URL: 'http://127.0.0.1:8080' });
    expect(config.refreshIntervalMs).toBe(120_000);
    expect(config.apiUrl.href).toBe('http://127.0.0.1:8080/');
  });

  it('reads the key from a file', () => {
    const folder = mkdtempSync(join(tmpdir(), 'config-test-'));
    onTestFinished(() => rmSync(folder, { recursive: true, force: true }));
    const file = join(folder, 'key');
    writeFileSync(file, `${KEY}\n`);
    expect(parseConfig(['--ngrok.api-key-file', file], {}).apiKey?.reveal()).toBe(KEY);
    expect(parseConfig([], { NGROK_API_KEY_FILE: file }).apiKey?.reveal()).toBe(KEY);
  });

  it.each([
    [['--refresh.interval=soon'], {}, '--refresh.interval', /duration such as/],
    [[], { NGROK_EXPORTER_REFRESH_INTERVAL: '10 minutes' }, 'NGROK_EXPORTER_REFRESH_INTERVAL', /got "10 minutes"/],
    [['--ngrok.requests-per-minute=500'], {}, '--ngrok.requests-per-minute', /from 1 to 120, got "500"/],
    [['--ngrok.requests-per-minute=0'], {}, '--ngrok.requests-per-minute', /from 1 to 120/],
    [['--ngrok.api-url=ftp://example.com'], {}, '--ngrok.api-url', /http or https/],
    [['--ngrok.api-url=not a url'], {}, '--ngrok.api-url', /absolute http or https URL/],
    [['--ngrok.api-url=https://user:pw@api.ngrok.com'], {}, '--ngrok.api-url', /credentials/],
    [['--sessions.labels=country,city'], {}, '--sessions.labels', /unknown label "city"/],
    [['--sessions.labels=country,country'], {}, '--sessions.labels', /twice/],
    [['--web.listen-address=10119'], {}, '--web.listen-address', /HOST:PORT/],
    [['--web.listen-address=:99999'], {}, '--web.listen-address', /0 to 65535/],
    [['--web.telemetry-path=metrics'], {}, '--web.telemetry-path', /path such as \/metrics/],
    [['--log.level=verbose'], {}, '--log.level', /debug, info, warn, error/],
    [['--refresh.interval=20m'], {}, '--refresh.max-staleness', /must not be shorter than --refresh.interval/],
    [['--ngrok.retry-min-delay=2m'], {}, '--ngrok.retry-max-delay', /must not be shorter than --ngrok.retry-min-delay/],
    [['--no-such-flag'], {}, 'command line', /--help/],
    [['--ngrok.timeout=1000h'], {}, '--ngrok.timeout', /from 100ms to 10m, got "1000h"/],
    [['--refresh.interval=25h'], {}, '--refresh.interval', /from 1s to 24h/],
    [['--ngrok.retry-max-delay=2h'], {}, '--ngrok.retry-max-delay', /to 1h/],
  ])('rejects %j %j naming %s', (argv, extraEnv, setting, message) => {
    const error = configError(() => parseConfig(argv, { ...env, ...extraEnv }));
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.setting).toBe(setting);
    expect(error.message).toMatch(message);
  });

  it('rejects a missing key with the fix', () => {
    const error = configError(() => parseConfig([], {}));
    expect(error.setting).toBe('NGROK_API_KEY');
    expect(error.message).toMatch(/NGROK_API_KEY_FILE/);
    expect(error.message).toMatch(/--demo/);
  });

  it('needs no key in demo mode', () => {
    expect(parseConfig(['--demo'], {}).apiKey).toBeUndefined();
  });

  it('rejects both key sources at once', () => {
    const error = configError(() => parseConfig([], { NGROK_API_KEY: KEY, NGROK_API_KEY_FILE: '/nonexistent' }));
    expect(error.message).toMatch(/set only one/);
  });

  it('rejects an unreadable key file without showing contents', () => {
    const error = configError(() => parseConfig([], { NGROK_API_KEY_FILE: '/nonexistent/key' }));
    expect(error.setting).toBe('NGROK_API_KEY_FILE');
    expect(error.message).toMatch(/ENOENT/);
  });

  it('rejects a short key without echoing it', () => {
    const error = configError(() => parseConfig([], { NGROK_API_KEY: 'tiny_key0' }));
    expect(error.message).toMatch(/9 characters, too short/);
    expect(error.message).not.toContain('tiny_key0');
  });

  it('ignores config.check from the environment', () => {
    expect(parseConfig([], { ...env, NGROK_EXPORTER_CONFIG_CHECK: 'true' }).checkOnly).toBe(false);
  });

  it('rejects a key with white space without echoing it', () => {
    const error = configError(() => parseConfig([], { NGROK_API_KEY: 'abcdefghij klmnop-secret' }));
    expect(error.message).toMatch(/white space/);
    expect(error.message).not.toContain('def-secret');
  });
});

describe('Secret', () => {
  it('never prints the key', () => {
    const config = parseConfig([], env);
    expect(String(config.apiKey)).toBe('<redacted>');
    expect(JSON.stringify(config)).not.toContain(KEY);
    expect(inspect(config, { depth: 5 })).not.toContain(KEY);
    expect(JSON.stringify(describeConfig(config))).not.toContain(KEY);
  });
});

describe('durations', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['1m30s250ms', 90_250],
  ])('parses %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
    expect(parseDuration(formatDuration(ms))).toBe(ms);
  });

  it.each(['', '5', '1.5s', '-1s', 's', '5 m', '1s1m'])('rejects %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe('command line', () => {
  it('prints help that lists every flag with its variable', () => {
    const result = parseCommandLine(['--help'], {}, '1.2.3');
    expect(result.kind).toBe('exit');
    const output = result.kind === 'exit' ? result.output : '';
    expect(output).toContain('--ngrok.api-url=URL');
    expect(output).toContain('[NGROK_API_URL]');
    expect(output).toContain('[NGROK_EXPORTER_REFRESH_INTERVAL]');
    expect(output).toBe(helpText('1.2.3'));
  });

  it('prints the version', () => {
    const result = parseCommandLine(['--version'], {}, '1.2.3');
    expect(result.kind).toBe('exit');
    expect(result.kind === 'exit' ? result.output : '').toMatch(/^ngrok-sessions-exporter 1\.2\.3 /);
  });

  it('maps flags to variables', () => {
    expect(envNameOf('ngrok.api-url')).toBe('NGROK_API_URL');
    expect(envNameOf('web.listen-address')).toBe('NGROK_EXPORTER_WEB_LISTEN_ADDRESS');
  });
});
