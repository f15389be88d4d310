// A running sync's pages_total: what Tines says, or (older tenants send no
// meta.pages) what meta.count and the page size imply.
import { describe, expect, it } from 'vitest';
import { pagesTotalOf } from '../src/sync/run.js';

describe('pages_total of a running sync', () => {
  it('is meta.pages when Tines sends it, but never fewer than the pages read', () => {
    expect(pagesTotalOf({ pages: 7, count: 1, per_page: 500 }, 500, 1)).toBe(7);
    expect(pagesTotalOf({ pages: 0, count: 0, per_page: 500 }, 500, 1)).toBe(1);
  });

  it('comes from meta.count over meta.per_page when meta.pages is missing', () => {
    expect(pagesTotalOf({ count: 1001, per_page: 500 }, 20, 1)).toBe(3);
    expect(pagesTotalOf({ count: 1000, per_page: 500 }, 20, 1)).toBe(2);
  });

  it('uses the configured page size when meta.per_page is missing too', () => {
    expect(pagesTotalOf({ count: 45 }, 20, 1)).toBe(3);
  });

  it('is never fewer than the pages already read (an empty tenant still has its one page)', () => {
    expect(pagesTotalOf({ count: 0, per_page: 500 }, 500, 1)).toBe(1);
    expect(pagesTotalOf({ count: 10, per_page: 5 }, 5, 4)).toBe(4);
  });

  it('is unknown when Tines says more pages than the column holds (a display figure must not fail the sync)', () => {
    expect(pagesTotalOf({ pages: 3_000_000_000 }, 500, 1)).toBeNull();
    expect(pagesTotalOf({ count: Number.MAX_SAFE_INTEGER * 4 }, 1, 1)).toBeNull();
  });

  it('is unknown without meta.pages or meta.count', () => {
    expect(pagesTotalOf({}, 500, 3)).toBeNull();
  });
});
