import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { startSimulator, type AppSession, type Simulator } from '../../src/simulator/index.js';
import { sumOf, valueOf } from '../support/harness.js';
import { PROMETHEUS_REQUIRED, prometheusMissingReason, startPrometheus, type PrometheusServer } from '../support/prometheus.js';
import { startRawServer, writeResponse, type RawServer } from '../support/raw-server.js';
import { parseExposition, promtoolCheck, seriesKey, withoutRuntimeMetrics, type Sample } from './exposition.js';
import { TEST_API_KEY, activeSessions, manualClock, startTestExporter, type TestExporter } from './exporter.js';

const START_MS = Date.parse('2026-03-01T12:00:00Z');
const ALL_LABELS = '--sessions.labels=country,device_type,browser,os,route,endpoint,public_url';
const missing = prometheusMissingReason();
const skipPrometheus = missing !== undefined && !PROMETHEUS_REQUIRED;

/** Strings that break naive exposition writers, terminals or dashboards. */
const HOSTILE_VALUES: string[] = [
  'say "hi"',
  'back\\slash',
  'trailing backslash\\',
  'literal \\n and \\"',
  'new\nline',
  'carriage\rreturn',
  'tab\there',
  'nul\u0000byte',
  'bell\u0007',
  'escape\u001b[31mred',
  'delete\u007f',
  'next line\u0085c1',
  'csi\u009b',
  'right-to-left mark\u200f',
  '\u202Eoverride to the left',
  'isolate\u2066inside\u2069',
  'arabic letter mark\u061c',
  'lone high \ud800',
  'lone low \udc00',
  'reversed pair \udc00\ud800',
  'emoji 👩‍💻 and 🇩🇪',
  'combining e\u0301',
  '\ufeffbyte order mark',
  'line\u2028separator\u2029paragraph',
  'noncharacters \uffff\ufffe',
  'private use \ue000',
  '} 1\nfake_metric{a="b"} 2',
  '# HELP ngrok_up lies',
  'a=b,c="d"',
  '__overflow__',
  'unknown',
  '   ',
  '',
  'x'.repeat(10_000),
  '🙂'.repeat(5_000),
  `${'y'.repeat(126)}\n${'z'.repeat(10)}`,
  `${'w'.repeat(127)}\ud83d`,
];

/** Returns one session per hostile value, with the value in every attribute that can become a label. */
function hostileSessions(): AppSession[] {
  return activeSessions(HOSTILE_VALUES.length, START_MS).map((session, index) => {
    const value = HOSTILE_VALUES[index] as string;
    return {
      ...session,
      public_url: value,
      browser_session: {
        ...session.browser_session,
        user_agent: { raw: value, browser_name: value, device_type: value, os_name: value },
        location: { country_code: value },
      },
      route: { id: value, uri: 'https://api.ngrok.com/x' },
      endpoint: { id: value, uri: 'https://api.ngrok.com/x' },
    };
  });
}

const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

function expectSafeLabelValues(samples: Sample[], maxLength: number): void {
  for (const sample of samples) {
    for (const [label, value] of Object.entries(sample.labels)) {
      const where = `${sample.name} ${label}=${JSON.stringify(value)}`;
      expect(value.isWellFormed(), `${where} is well-formed`).toBe(true);
      expect(UNSAFE.test(value), `${where} has no control or bidirectional characters`).toBe(false);
      // --sessions.max-label-length caps the session labels; the runtime metrics have fixed labels of their own.
      if (sample.name.startsWith('ngrok_app_')) expect(Array.from(value).length, `${where} length`).toBeLessThanOrEqual(maxLength);
      expect(value, `${where} is not empty`).not.toBe('');
    }
  }
}

let simulator: Simulator | undefined;
let server: RawServer | undefined;
let exporter: TestExporter | undefined;

afterEach(async () => {
  await exporter?.close();
  await simulator?.close();
  await server?.close();
  exporter = undefined;
  simulator = undefined;
  server = undefined;
});

describe('hostile label values', () => {
  it.each([
    ['the default length', [], 128],
    ['a 16-character cap', ['--sessions.max-label-length=16'], 16],
  ])('keep the exposition valid at %s', async (_name, argv, maxLength) => {
    simulator = await startSimulator({ apiKey: TEST_API_KEY, sessions: hostileSessions(), now: () => START_MS, requestsPerMinute: null });
    exporter = await startTestExporter(simulator.url, { clock: manualClock(START_MS), argv: [ALL_LABELS, ...argv] });
    const text = await exporter.waitForRefresh();

    expect(valueOf(text, 'ngrok_up')).toBe(1);
    expect(sumOf(text, 'ngrok_app_sessions_active')).toBe(HOSTILE_VALUES.length);
    const samples = parseExposition(text);
    expectSafeLabelValues(samples, maxLength);
    expect(new Set(samples.map(seriesKey)).size).toBe(samples.length);
    expect(samples.filter((sample) => sample.name === 'fake_metric')).toEqual([]);

    const lint = promtoolCheck(withoutRuntimeMetrics(text));
    expect(lint.output).toBe('');
    expect(lint.status).toBe(0);
  });

  it('keep invalid UTF-8 bytes out of the exposition', async () => {
    const session = activeSessions(1, START_MS)[0] as AppSession;
    const json = JSON.stringify({ application_sessions: [{ ...session, browser_session: { user_agent: { raw: 'x', browser_name: 'BROWSER' }, location: { country_code: 'COUNTRY' } } }], next_page_uri: null });
    // Bytes that are not UTF-8: a stray continuation byte, an overlong NUL, an encoded surrogate and 0xFF.
    const body = Buffer.concat([
      Buffer.from(json.slice(0, json.indexOf('BROWSER'))),
      Buffer.from([0x80, 0x41, 0xc0, 0x80, 0xed, 0xa0, 0x80, 0xff]),
      Buffer.from(json.slice(json.indexOf('BROWSER') + 'BROWSER'.length, json.indexOf('COUNTRY'))),
      Buffer.from([0xf0, 0x9f, 0x98]),
      Buffer.from(json.slice(json.indexOf('COUNTRY') + 'COUNTRY'.length)),
    ]);
    server = await startRawServer((_request, socket) => writeResponse(socket, { status: 200, headers: [['content-type', 'application/json']], body }));
    exporter = await startTestExporter(server.url, { clock: manualClock(START_MS), argv: [ALL_LABELS] });
    const text = await exporter.waitForRefresh();

    expect(valueOf(text, 'ngrok_up')).toBe(1);
    expect(sumOf(text, 'ngrok_app_sessions_active')).toBe(1);
    const samples = parseExposition(text);
    expectSafeLabelValues(samples, 128);
    const [series] = samples.filter((sample) => sample.name === 'ngrok_app_sessions_active');
    expect(series?.labels.browser).toMatch(/^\uFFFD+A\uFFFD+$/);
    expect(series?.labels.country).toMatch(/^\uFFFD+$/);

    const lint = promtoolCheck(withoutRuntimeMetrics(text));
    expect(lint.output).toBe('');
    expect(lint.status).toBe(0);
  });
});

describe.skipIf(skipPrometheus)(`hostile label values in a real Prometheus${missing === undefined ? '' : ` (skipped: ${missing})`}`, () => {
  let prometheusSimulator: Simulator;
  let prometheusExporter: TestExporter;
  let prometheus: PrometheusServer;
  let exposition: Sample[];

  beforeAll(async () => {
    prometheusSimulator = await startSimulator({ apiKey: TEST_API_KEY, sessions: hostileSessions(), now: () => START_MS, requestsPerMinute: null });
    prometheusExporter = await startTestExporter(prometheusSimulator.url, { clock: manualClock(START_MS), argv: [ALL_LABELS] });
    exposition = parseExposition(await prometheusExporter.waitForRefresh());

    const target = prometheusExporter.exporter.url.replace(/^http:\/\//, '');
    prometheus = await startPrometheus({
      config: ['global:', '  scrape_interval: 1s', '  scrape_timeout: 900ms', 'scrape_configs:', '  - job_name: hostile', '    static_configs:', `      - targets: ["${target}"]`, ''].join('\n'),
    });
  });

  afterAll(async () => {
    await prometheus?.stop();
    await prometheusExporter?.close();
    await prometheusSimulator?.close();
  });

  it('scrapes the target without errors', async () => {
    const [up] = await prometheus.waitFor('up{job="hostile"} == 1', 30_000);
    expect(up?.value[1]).toBe('1');
    expect(prometheus.logs()).not.toMatch(/level=(warn|error)/);
  });

  it('stores every session series with its label values unchanged', async () => {
    const stored = await prometheus.waitFor('ngrok_app_sessions_active', 30_000);
    const expected = exposition.filter((sample) => sample.name === 'ngrok_app_sessions_active');
    const storedKeys = stored.map((sample) => {
      const { __name__: name, instance: _instance, job: _job, ...labels } = sample.metric;
      return seriesKey({ name: name as string, labels });
    });
    expect(storedKeys.sort()).toEqual(expected.map(seriesKey).sort());

    const [sum] = await prometheus.query('sum(ngrok_app_sessions_active)');
    expect(Number(sum?.value[1])).toBe(HOSTILE_VALUES.length);
  });
});
