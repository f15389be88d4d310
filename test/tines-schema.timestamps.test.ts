// Timestamps are normalised to UTC ISO 8601 with milliseconds, exactly as
// new Date(v).toISOString() would, including on the fast path for canonical
// UTC strings; what a Date cannot read becomes null.
import { describe, expect, it } from 'vitest';
import { toTimestamp } from '../src/tines/schema.js';

const viaDate = (v: string | number) => {
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
};

describe('toTimestamp', () => {
  it.each([
    '2024-01-02T03:04:05Z',
    '2024-01-02T03:04:05.7Z',
    '2024-01-02T03:04:05.78Z',
    '2024-01-02T03:04:05.789Z',
    '2024-02-29T23:59:59.999Z', // leap year
    '2000-02-29T00:00:00Z', // divisible by 400
    '0001-01-01T00:00:00Z',
    '9999-12-31T23:59:59Z',
    '2024-02-03T04:05:06.789+01:00',
    '2024-02-03 04:05:06',
    '2024-02-03',
    1700000000000,
    // A day past the month's end (up to 31) rolls over in a Date; the fast path leaves those to it.
    '2023-02-29T00:00:00Z',
    '1900-02-29T00:00:00Z',
    '2024-04-31T00:00:00Z',
  ])('%s reads as a Date would', (v) => {
    expect(toTimestamp(v)).toBe(viaDate(v));
  });

  it.each([
    '2024-02-32T00:00:00Z',
    '2024-13-01T00:00:00Z',
    '2024-00-10T00:00:00Z',
    '2024-01-00T00:00:00Z',
    '2024-01-01T25:00:00Z',
    '2024-01-01T00:60:00Z',
    '2024-01-01T00:00:60Z',
    'not a date',
  ])('%s is not a valid instant: null, as a Date says', (v) => {
    expect(viaDate(v)).toBeNull();
    expect(toTimestamp(v)).toBeNull();
  });

  it('24:00 rolls over to the next day, as a Date does', () => {
    expect(toTimestamp('2024-01-01T24:00:00Z')).toBe(viaDate('2024-01-01T24:00:00Z'));
  });

  it('empty and missing are null', () => {
    expect(toTimestamp('')).toBeNull();
    expect(toTimestamp(null)).toBeNull();
    expect(toTimestamp(undefined)).toBeNull();
  });
});
