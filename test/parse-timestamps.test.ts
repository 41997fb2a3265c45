import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { parseRfc3339 } from '../src/ngrok/parse.js';

const digits = (length: number): fc.Arbitrary<string> => fc.stringMatching(new RegExp(`^[0-9]{${length}}$`));

/** `YYYY-MM-DDTHH:MM:SSZ` with any digits, so out-of-range fields occur as often as valid ones. */
const plainUtc = fc
  .tuple(digits(4), digits(2), digits(2), digits(2), digits(2), digits(2))
  .map(([year, month, day, hour, minute, second]) => `${year}-${month}-${day}T${hour}:${minute}:${second}Z`);

describe('parseRfc3339', () => {
  it('reads the plain UTC form as the general form', () => {
    fc.assert(
      fc.property(plainUtc, (text) => {
        // A lowercase "t" is valid RFC 3339 and takes the general path.
        expect(parseRfc3339(text)).toBe(parseRfc3339(text.replace('T', 't')));
      }),
      { numRuns: 5000 },
    );
  });

  it.each([
    ['2025-11-18T09:42:17Z', Date.UTC(2025, 10, 18, 9, 42, 17)],
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
    ['2016-12-31T23:59:60Z', Date.UTC(2017, 0, 1)],
    ['0001-01-01T00:00:00Z', Date.parse('0001-01-01T00:00:00Z')],
    ['2025-02-29T00:00:00Z', undefined],
    ['2025-04-31T10:00:00Z', undefined],
    ['2025-12-01T24:00:00Z', undefined],
    ['2025-13-01T00:00:00Z', undefined],
    ['2025-1x-01T00:00:00Z', undefined],
  ])('reads %s as %s', (text, expected) => {
    expect(parseRfc3339(text)).toBe(expected);
  });
});
