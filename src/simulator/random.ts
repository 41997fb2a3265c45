/**
 * Seeded pseudo-random numbers for the synthetic account, so that one seed always
 * produces the same sessions. The generator is sfc32 (Chris Doty-Humphrey's Small Fast
 * Counting generator from PractRand) seeded through splitmix32. It is fast and not for
 * cryptography.
 */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let state = (Math.trunc(seed) >>> 0) ^ (Math.trunc(seed / 2 ** 32) >>> 0);
    const nextSeedWord = (): number => {
      state = (state + 0x9e3779b9) >>> 0;
      let z = state;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };

    this.a = nextSeedWord();
    this.b = nextSeedWord();
    this.c = nextSeedWord();
    this.d = nextSeedWord();

    // Discard the first outputs, which still correlate with the seed words.
    for (let i = 0; i < 12; i++) {
      this.uint32();
    }
  }

  /** Returns the next unsigned 32-bit integer. */
  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Returns a float in [0, 1). */
  float(): number {
    return this.uint32() / 2 ** 32;
  }

  /** Returns an integer in [0, maxExclusive). */
  int(maxExclusive: number): number {
    return Math.floor(this.float() * maxExclusive);
  }

  /** Returns a float in [min, max). */
  between(min: number, max: number): number {
    return min + this.float() * (max - min);
  }

  /** Returns true with probability `probability`. */
  chance(probability: number): boolean {
    return this.float() < probability;
  }

  /** Returns one element of a non-empty array, each with the same probability. */
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) {
      throw new RangeError('cannot pick from an empty array');
    }
    return item;
  }

  /** Returns an exponentially distributed float with the given mean. */
  exponential(mean: number): number {
    return -Math.log(1 - this.float()) * mean;
  }

  /** Creates an independent generator whose sequence depends on this one's state and `stream`. */
  fork(stream: number): Random {
    return new Random((this.uint32() ^ Math.imul(stream, 0x27d4eb2d)) >>> 0);
  }
}

/** Fixed set of values with relative weights, for picking values with a realistic skew. */
export class WeightedChoice<T> {
  private readonly values: T[];
  private readonly cumulativeWeights: number[];
  private readonly totalWeight: number;

  constructor(entries: ReadonlyArray<readonly [T, number]>) {
    this.values = [];
    this.cumulativeWeights = [];
    let total = 0;
    for (const [value, weight] of entries) {
      if (!(weight > 0)) {
        throw new RangeError(`weights must be positive, got ${weight}`);
      }
      total += weight;
      this.values.push(value);
      this.cumulativeWeights.push(total);
    }
    if (this.values.length === 0) {
      throw new RangeError('a weighted choice needs at least one entry');
    }
    this.totalWeight = total;
  }

  /** Returns one value, each with a probability proportional to its weight. */
  pick(random: Random): T {
    const target = random.float() * this.totalWeight;
    let low = 0;
    let high = this.cumulativeWeights.length - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((this.cumulativeWeights[middle] ?? Infinity) > target) {
        high = middle;
      } else {
        low = middle + 1;
      }
    }
    return this.values[low] as T;
  }
}
