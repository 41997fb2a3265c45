import { afterEach, describe, expect, it } from 'vitest';

import { TEST_API_KEY, startHarness, until, type Harness } from './support/harness.js';

let harness: Harness | undefined;

afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

/** Every form in which the key could leak: plain, percent-encoded, and each of its two parts. */
const LEAK_FORMS = [TEST_API_KEY, encodeURIComponent(TEST_API_KEY), ...TEST_API_KEY.split('_')];

function expectNoKey(text: string, where: string): void {
  for (const form of LEAK_FORMS) expect(text.includes(form), `${where} contains the key as ${form}`).toBe(false);
}

async function everyOutput(current: Harness): Promise<string[]> {
  const metrics = await current.scrape();
  const landing = (await current.get('/')).body;
  return [current.logs.text(), metrics, landing];
}

describe('API key', () => {
  it('stays out of logs, metrics and the landing page after a normal walk', async () => {
    harness = await startHarness({ simulator: { syntheticSessions: 150 } });
    await until(() => harness!.exporter.refresher.state().snapshot !== undefined);
    const [logs, metrics, landing] = await everyOutput(harness);
    expect(logs).toContain('refresh succeeded');
    expectNoKey(logs as string, 'logs');
    expectNoKey(metrics as string, 'metrics');
    expectNoKey(landing as string, 'landing page');
  });

  it('stays out of echoed error bodies', async () => {
    harness = await startHarness({ simulator: { syntheticSessions: 150 }, argv: ['--ngrok.max-retries=1', '--ngrok.retry-min-delay=0s'] });
    harness.simulator.injectFault({
      kind: 'respond',
      status: 502,
      body: { error_code: 'ERR_NGROK_202', status_code: 502, msg: `bad credential ${TEST_API_KEY} at https://api.example/?key=${encodeURIComponent(TEST_API_KEY)}`, details: { operation_id: 'op_1' } },
    });
    harness.simulator.injectFault({ kind: 'respond', status: 500, body: `<html>upstream error for ${TEST_API_KEY}</html>`, contentType: 'text/html' });
    await until(() => harness!.exporter.refresher.state().consecutiveFailures === 1);

    const [logs, metrics, landing] = await everyOutput(harness);
    expect(logs).toContain('<redacted>');
    expectNoKey(logs as string, 'logs');
    expectNoKey(metrics as string, 'metrics');
    expectNoKey(landing as string, 'landing page');
  });

  it('stays out of labels when a session attribute echoes it', async () => {
    harness = await startHarness({ simulator: { syntheticSessions: 20 }, argv: ['--sessions.labels=browser,public_url'] });
    harness.simulator.injectFault({
      kind: 'rewrite',
      rewrite: (page) => {
        const [first] = page.application_sessions;
        if (first !== undefined) {
          first.public_url = `https://app.example.com/?token=${encodeURIComponent(TEST_API_KEY)}`;
          first.browser_session.user_agent.browser_name = `Chrome ${TEST_API_KEY}`;
        }
        return page;
      },
    });
    await until(() => harness!.exporter.refresher.state().snapshot !== undefined);
    const metrics = await harness.scrape();
    expect(metrics).toContain('browser="Chrome <redacted>"');
    expectNoKey(metrics, 'metrics');
  });

  it('stays out when the key is rejected', async () => {
    const wrongKey = 'wrongFirstPart_wrongSecondPartSecret';
    harness = await startHarness({ simulator: { syntheticSessions: 10 }, exporterKey: wrongKey });
    await until(() => harness!.exporter.refresher.state().consecutiveFailures === 1);
    const metrics = await harness.scrape();
    const landing = (await harness.get('/')).body;
    for (const text of [harness.logs.text(), metrics, landing]) {
      expect(text).not.toContain(wrongKey);
      expect(text).not.toContain('wrongSecondPartSecret');
    }
  });
});
