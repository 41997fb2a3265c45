/**
 * Walks every page of `GET /app/sessions`, strictly one page after another.
 * Each attempt at a page first takes a token from the request budget. A
 * failed page is retried on its own, so the walk resumes where it stopped.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import pRetry from 'p-retry';

import type { RequestBudget } from '../budget.js';
import { ApiError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ApiClient } from './client.js';
import { parsePage, type ParsedPage } from './parse.js';

/** ngrok's largest page size. */
export const PAGE_SIZE = 100;

/** Counters that the walk updates; the exporter's self-metrics implement it. */
export interface WalkObserver {
  /** A response arrived with this status, or `error` when none did. */
  request(code: string): void;
  retry(): void;
  rateLimited(): void;
}

export interface WalkOptions {
  client: ApiClient;
  budget: RequestBudget;
  apiUrl: URL;
  maxPages: number;
  maxRetries: number;
  retryMinDelayMs: number;
  retryMaxDelayMs: number;
  observer: WalkObserver;
  logger: Logger;
  signal?: AbortSignal;
}

/** Returns the URL of the first page under the configured API URL, which may carry a path prefix. */
export function firstPageUrl(apiUrl: URL): URL {
  const base = new URL(apiUrl.href.endsWith('/') ? apiUrl.href : `${apiUrl.href}/`);
  const url = new URL('app/sessions', base);
  url.searchParams.set('limit', String(PAGE_SIZE));
  return url;
}

/**
 * Yields each page of the walk in order.
 *
 * Stops after a page with a null cursor or with no sessions. Raises ApiError
 * (reason `paging`) when the walk cannot tell that it has seen every session:
 * a cursor to another origin or path, a cursor already followed (in any order
 * of its query parameters), a page that repeats the sessions of an earlier
 * one, or more than `maxPages` pages.
 */
export async function* walkPages(options: WalkOptions): AsyncGenerator<ParsedPage> {
  // A cursor may carry anything the API put in it, the key included, so URLs in errors are redacted.
  const redact = (text: string): string => options.client.redact(text);
  const first = firstPageUrl(options.apiUrl);
  const followed = new Set<string>([cursorKey(first)]);
  const seenPages = new Set<string>();
  let url: URL = first;
  let pending: Promise<ParsedPage> | undefined = prefetch(first, 1, options);

  for (let pageNumber = 1; pending !== undefined; pageNumber++) {
    const page = await pending;
    checkProgress(page, seenPages, pageNumber, redact(url.href));
    pending = undefined;

    if (page.nextPageUri !== null && page.sessions.length > 0) {
      url = nextPageUrl(page.nextPageUri, url, first, redact);
      const key = cursorKey(url);
      if (followed.has(key)) {
        throw new ApiError(
          'CURSOR_LOOP',
          `the API returned next_page_uri ${redact(url.href)}, which this walk already followed; the cursor loops, so the walk stopped without a complete count.`,
          { reason: 'paging', url: redact(url.href) },
        );
      }
      followed.add(key);
      if (pageNumber + 1 > options.maxPages) {
        throw new ApiError(
          'TOO_MANY_PAGES',
          `the walk reached --ngrok.max-pages (${options.maxPages}) and the API still returned a next page; raise --ngrok.max-pages if the account really has more than ${options.maxPages * PAGE_SIZE} sessions.`,
          { reason: 'paging', url: redact(url.href) },
        );
      }
      // The next request starts now, after this response ended, so requests stay strictly
      // sequential while the caller counts this page during the network wait.
      pending = prefetch(url, pageNumber + 1, options);
    }
    yield page;
  }
}

/** Starts fetching a page; a failure is raised when the walk awaits the promise, not as an unhandled rejection before. */
function prefetch(url: URL, pageNumber: number, options: WalkOptions): Promise<ParsedPage> {
  const page = fetchPageWithRetries(url, pageNumber, options);
  page.catch(() => undefined);
  return page;
}

/** Returns the URL with its query parameters sorted, so a cursor that only reorders them counts as followed. */
function cursorKey(url: URL): string {
  const sorted = new URL(url.href);
  sorted.hash = '';
  sorted.searchParams.sort();
  return sorted.href;
}

/**
 * Raises CURSOR_LOOP when a page starts and ends with the same sessions as an
 * earlier page. A cursor that changes on every page, such as one with a
 * counter in it, would otherwise loop until --ngrok.max-pages.
 */
function checkProgress(page: ParsedPage, seenPages: Set<string>, pageNumber: number, url: string): void {
  const { sessions } = page;
  if (sessions.length === 0) return;

  const pageKey = JSON.stringify([sessions.length, sessions[0]?.id, sessions[sessions.length - 1]?.id]);
  if (seenPages.has(pageKey)) {
    throw new ApiError(
      'CURSOR_LOOP',
      `page ${pageNumber} of the walk repeats the sessions of an earlier page; the cursor loops, so the walk stopped without a complete count.`,
      { reason: 'paging', url },
    );
  }
  seenPages.add(pageKey);
}

/**
 * Resolves a cursor and checks that it stays on the API's origin and path, so
 * the Authorization header never goes to another host. A relative cursor is
 * resolved against the page it came from, as a browser would.
 */
function nextPageUrl(cursor: string, current: URL, first: URL, redact: (text: string) => string): URL {
  let next: URL;
  try {
    next = new URL(cursor, current);
  } catch {
    // No cause: the TypeError of the URL parser carries the whole cursor in its `input` field.
    throw new ApiError('INVALID_CURSOR', `the API returned next_page_uri ${JSON.stringify(redact(cursor).slice(0, 200))}, which is not a URL.`, {
      reason: 'paging',
      url: redact(current.href),
    });
  }

  if (next.origin !== first.origin || next.username !== '' || next.password !== '') {
    throw new ApiError(
      'FOREIGN_CURSOR',
      `the API returned next_page_uri on origin ${JSON.stringify(redact(next.origin).slice(0, 200))}, not ${first.origin}; the exporter does not send the API key to another origin, so the walk stopped.`,
      { reason: 'paging', url: redact(current.href) },
    );
  }
  if (next.pathname !== first.pathname) {
    throw new ApiError(
      'FOREIGN_CURSOR',
      `the API returned next_page_uri with path ${JSON.stringify(redact(next.pathname).slice(0, 200))}, not ${first.pathname}; the walk stopped.`,
      { reason: 'paging', url: redact(current.href) },
    );
  }
  return next;
}

async function fetchPageWithRetries(url: URL, pageNumber: number, options: WalkOptions): Promise<ParsedPage> {
  const log = options.logger.child({ page: pageNumber });

  return pRetry(
    async () => {
      await options.budget.take(options.signal);
      const response = await requestPage(url, options);
      return parsePage(response.body, options.client.redact(url.href));
    },
    {
      retries: options.maxRetries,
      factor: 2,
      minTimeout: options.retryMinDelayMs,
      maxTimeout: options.retryMaxDelayMs,
      randomize: true,
      signal: options.signal,
      shouldRetry: ({ error }) => error instanceof ApiError && error.retryable && !exceedsMaxDelay(error, options),
      onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
        if (!(error instanceof ApiError) || !error.retryable || retriesLeft === 0) return;
        if (exceedsMaxDelay(error, options)) return;

        options.observer.retry();
        log.warn(
          { err: error, attempt: attemptNumber, retries_left: retriesLeft, retry_after_seconds: error.retryAfterSeconds },
          'API request failed, retrying',
        );
        // p-retry's own exponential delay with jitter follows; Retry-After comes first when sent.
        if (error.retryAfterSeconds !== undefined && error.retryAfterSeconds > 0) {
          await sleep(error.retryAfterSeconds * 1000, undefined, { signal: options.signal });
        }
      },
    },
  );
}

/** Reports whether a Retry-After exceeds the maximum retry delay; such an error ends the walk, and the next refresh waits it out. */
function exceedsMaxDelay(error: ApiError, options: WalkOptions): boolean {
  return error.retryAfterSeconds !== undefined && error.retryAfterSeconds * 1000 > options.retryMaxDelayMs;
}

async function requestPage(url: URL, options: WalkOptions): Promise<{ body: unknown }> {
  try {
    const response = await options.client.get(url, options.signal);
    options.observer.request(String(response.status));
    return response;
  } catch (error) {
    if (error instanceof ApiError) {
      options.observer.request(error.status === undefined ? 'error' : String(error.status));
      if (error.status === 429) options.observer.rateLimited();
    }
    throw error;
  }
}
