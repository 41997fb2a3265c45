/**
 * The exporter's share of the ngrok API rate limit. ngrok counts requests per
 * rolling minute, so the budget keeps the start times of the requests inside
 * the current window (a sliding log) instead of refilling tokens: no
 * 60-second span, wherever it starts, ever contains more than `limit` requests.
 * A request leaves the window only after 1/50 of the window more (1.2 s of a
 * minute), so differing network delays between two requests cannot make the
 * server count them inside one window.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface RequestBudgetOptions {
  /** Requests allowed in any window. */
  limit: number;
  /** Window length in milliseconds; 60,000 for the ngrok rate limit. */
  windowMs?: number;
  /** Clock in milliseconds, replaceable in tests. */
  now?: () => number;
}

/** Sliding-window request budget shared by every request the exporter sends. */
export class RequestBudget {
  readonly limit: number;
  readonly windowMs: number;
  /** Window length plus the margin for network delay. */
  readonly #effectiveWindowMs: number;
  readonly #now: () => number;
  /** Start times of the requests inside the window, oldest first. */
  readonly #starts: number[] = [];
  /** Serialises waiters so tokens are granted in request order. */
  #queue: Promise<void> = Promise.resolve();

  constructor({ limit, windowMs = 60_000, now = Date.now }: RequestBudgetOptions) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`budget limit must be a positive integer, got ${limit}`);
    this.limit = limit;
    this.windowMs = windowMs;
    this.#effectiveWindowMs = windowMs + windowMs / 50;
    this.#now = now;
  }

  /** Requests that may still start now without waiting. */
  remaining(): number {
    this.#expire(this.#now());
    return this.limit - this.#starts.length;
  }

  /** Milliseconds until the next request may start; 0 when one may start now. */
  waitTimeMs(): number {
    const now = this.#now();
    this.#expire(now);
    if (this.#starts.length < this.limit) return 0;
    return (this.#starts[0] as number) + this.#effectiveWindowMs - now;
  }

  /**
   * Waits until a request may start and records it.
   * @throws the signal's reason when `signal` aborts first.
   */
  async take(signal?: AbortSignal): Promise<void> {
    const turn = this.#queue.then(() => this.#takeInTurn(signal));
    // A waiter that aborts must not stall those queued behind it.
    this.#queue = turn.catch(() => undefined);
    return turn;
  }

  async #takeInTurn(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const waitMs = this.waitTimeMs();
      if (waitMs <= 0) break;
      await sleep(waitMs, undefined, { signal });
    }
    this.#starts.push(this.#now());
  }

  #expire(now: number): void {
    while (this.#starts.length > 0 && (this.#starts[0] as number) <= now - this.#effectiveWindowMs) this.#starts.shift();
  }
}
