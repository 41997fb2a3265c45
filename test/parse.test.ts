import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { ApiError } from '../src/errors.js';
import { parsePage } from '../src/ngrok/parse.js';

const URL_TEXT = 'https://api.ngrok.com/app/sessions?limit=100';
const fixture = JSON.parse(readFileSync(new URL('./fixtures/app_sessions_page.json', import.meta.url), 'utf8')) as Record<string, unknown>;

function parseError(body: unknown): ApiError {
  try {
    parsePage(body, URL_TEXT);
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error('expected an ApiError');
}

describe('parsePage', () => {
  it('reads the documented page layout', () => {
    const page = parsePage(fixture, URL_TEXT);
    expect(page.sessions).toHaveLength(3);
    expect(page.nextPageUri).toBe('https://api.ngrok.com/app/sessions?before_id=as_2pXZGNcIZMEz9y8oe5cToGoQLPE&limit=3');
    expect(page.invalidFields).toBe(0);

    const [first, , edge] = page.sessions;
    expect(first).toEqual({
      id: 'as_2pZvpzb8BsmXBrLLDv8fsFpMq5a',
      expiresAtMs: Date.parse('2025-11-21T09:42:17Z'),
      lastActiveMs: Date.parse('2025-11-18T10:05:51Z'),
      userId: 'au_2nMBJbmBF7HJ5SBPIjFl2yh1tx6',
      country: 'US',
      deviceType: 'Desktop',
      browser: 'Chrome',
      os: 'MacOS',
      routeId: undefined,
      endpointId: 'ep_2oQIIJjsOlmtFeRIKeEOuC40oKw',
      publicUrl: 'https://dashboard.example.com',
    });
    expect(edge?.routeId).toBe('edghtsrt_2kTJfAQW9m9VA6mWc70RGWYiAUJ');
  });

  it('treats null and absent values as missing', () => {
    const page = parsePage(
      {
        application_sessions: [
          { id: 'as_1', browser_session: null, application_user: null, expires_at: null, route: null, endpoint: null, public_url: null },
          { id: 'as_2' },
          { id: 'as_3', browser_session: { user_agent: { browser_name: '', device_type: null }, location: {} } },
        ],
        next_page_uri: null,
      },
      URL_TEXT,
    );
    expect(page.invalidFields).toBe(0);
    for (const session of page.sessions) {
      expect(session.country).toBeUndefined();
      expect(session.browser).toBeUndefined();
      expect(session.deviceType).toBeUndefined();
      expect(session.expiresAtMs).toBeUndefined();
      expect(session.userId).toBeUndefined();
    }
  });

  it('ignores unknown extra fields', () => {
    const page = parsePage({ application_sessions: [{ id: 'as_1', surprise: { deep: [1, 2] } }], next_page_uri: null, extra: true }, URL_TEXT);
    expect(page.sessions.map((session) => session.id)).toEqual(['as_1']);
  });

  it.each([
    [{ application_sessions: null, next_page_uri: null }, 0],
    [{ next_page_uri: null }, 0],
    [{ application_sessions: [] }, 0],
  ])('reads an empty page %j', (body, count) => {
    const page = parsePage(body, URL_TEXT);
    expect(page.sessions).toHaveLength(count);
    expect(page.nextPageUri).toBeNull();
  });

  it('counts optional fields of the wrong type as missing', () => {
    const page = parsePage(
      {
        application_sessions: [
          {
            id: 'as_1',
            expires_at: 12345,
            last_active: 'yesterday',
            public_url: ['x'],
            route: 'edghtsrt_1',
            browser_session: { user_agent: { browser_name: 7, device_type: { a: 1 } }, location: 'US' },
          },
        ],
        next_page_uri: null,
      },
      URL_TEXT,
    );
    const [session] = page.sessions;
    expect(session?.expiresAtMs).toBeUndefined();
    expect(session?.lastActiveMs).toBeUndefined();
    expect(session?.publicUrl).toBeUndefined();
    expect(session?.routeId).toBeUndefined();
    expect(session?.browser).toBeUndefined();
    expect(session?.country).toBeUndefined();
    expect(page.invalidFields).toBe(7);
  });

  it.each([
    ['2025-11-18T09:42:17Z', Date.parse('2025-11-18T09:42:17Z')],
    ['2025-11-18T09:42:17.123456789Z', Date.parse('2025-11-18T09:42:17.123Z')],
    ['2025-11-18T10:42:17+01:00', Date.parse('2025-11-18T09:42:17Z')],
    ['0001-01-01T00:00:00Z', undefined],
    ['2025-11-18', undefined],
    ['2025-13-45T99:99:99Z', undefined],
    ['Tue, 18 Nov 2025 09:42:17 GMT', undefined],
  ])('reads expires_at %j', (text, expected) => {
    const page = parsePage({ application_sessions: [{ id: 'as_1', expires_at: text }] }, URL_TEXT);
    expect(page.sessions[0]?.expiresAtMs).toBe(expected);
  });

  it.each([
    ['a string body', 'not json'],
    ['an array body', []],
    ['null', null],
    ['sessions as an object', { application_sessions: { id: 'as_1' } }],
    ['a cursor of the wrong type', { application_sessions: [], next_page_uri: 42 }],
    ['a session that is not an object', { application_sessions: ['as_1'] }],
    ['a session without id', { application_sessions: [{ uri: 'x' }] }],
    ['a numeric id', { application_sessions: [{ id: 7 }] }],
  ])('rejects %s', (_name, body) => {
    const error = parseError(body);
    expect(error.code).toBe('INVALID_PAGE');
    expect(error.reason).toBe('invalid_response');
    expect(error.message).toContain(URL_TEXT);
  });
});
