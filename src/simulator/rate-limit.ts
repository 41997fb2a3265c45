/**
 * Rolling-window request limit as the ngrok API applies it: at most `maxRequests` in any
 * window of `windowMs`. ngrok allows 120 requests per 60 s on every account, shared by
 * all API clients of the account. Only admitted requests are recorded, so rejected ones
 * do not extend the lockout.
 * NOTE: ngrok does not document whether rejected requests count against the window.
 */
export class RollingWindowLimit {
  readonly maxRequests: number;
  readonly windowMs: number;
  /** Admission times in ms, oldest first, starting at `head`. */
  private admissions: number[] = [];
  private head = 0;

  constructor(maxRequests: number, windowMs: number) {
    this.maxRequests = maxRequests;
    this.windowMs = windowMs;
  }

  /** Admits and records a request at `nowMs`, or returns false when the window is full. */
  tryAdmit(nowMs: number): boolean {
    this.evictBefore(nowMs - this.windowMs);
    if (this.admissions.length - this.head >= this.maxRequests) {
      return false;
    }
    this.admissions.push(nowMs);
    return true;
  }

  /** Forgets every admitted request. */
  reset(): void {
    this.admissions = [];
    this.head = 0;
  }

  private evictBefore(cutoffMs: number): void {
    while (this.head < this.admissions.length && (this.admissions[this.head] as number) <= cutoffMs) {
      this.head += 1;
    }
    // Compact now and then so the array does not grow without bound.
    if (this.head > 1024 && this.head * 2 > this.admissions.length) {
      this.admissions = this.admissions.slice(this.head);
      this.head = 0;
    }
  }
}
