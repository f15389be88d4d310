// format.ts: what a person is shown (visible) and the one timestamp form of --json (isoTimestamp).
import { describe, expect, it } from 'vitest';
import { formatTable, isoTimestamp, jsonDocument, visible } from '../src/commands/format.js';

describe('visible', () => {
  it('escapes C0, DEL, C1, line separators and bidi overrides; leaves other text alone', () => {
    expect(visible('a\nb\r\tc')).toBe('a\\nb\\r\\tc');
    expect(visible('\u001b]0;title\u0007')).toBe('\\u001b]0;title\\u0007');
    expect(visible('x\u007fy\u009bz')).toBe('x\\u007fy\\u009bz');
    expect(visible('\u2028\u202e\u2066')).toBe('\\u2028\\u202e\\u2066');
    expect(visible('Zoë Łukasz 山田 — ok ✓')).toBe('Zoë Łukasz 山田 — ok ✓');
  });

  it('escapes every format character (Cf): bidi marks, zero-width spaces and joiners, the BOM, soft hyphens, tags', () => {
    expect(visible('a\u200eb\u200fc\u061cd\ufeffe\u200bf\u200dg\u00adh')).toBe('a\\u200eb\\u200fc\\u061cd\\ufeffe\\u200bf\\u200dg\\u00adh');
    expect(visible('x\u{e0041}y')).toBe('x\\u{e0041}y');
    expect(visible('👍🏽 é')).toBe('👍🏽 é');
  });

  it('a table escapes cells and headers and cuts nothing', () => {
    const long = 'y'.repeat(300);
    const t = formatTable([{ 'na\nme': 'Eve\u001b[2J', long }]);
    expect(t).toContain('na\\nme');
    expect(t).toContain('Eve\\u001b[2J');
    expect(t).toContain(long);
    expect(t).not.toMatch(/[\u0000-\u0009\u000b-\u001f]/);
  });
});

describe('isoTimestamp', () => {
  it('PostgreSQL text and ISO with offsets become UTC with Z and at least milliseconds; microseconds kept', () => {
    expect(isoTimestamp('2026-11-30 22:19:18.022+00')).toBe('2026-11-30T22:19:18.022Z');
    expect(isoTimestamp('2026-11-30T22:19:33.005+00:00')).toBe('2026-11-30T22:19:33.005Z');
    expect(isoTimestamp('2026-11-30 22:19:18+00')).toBe('2026-11-30T22:19:18.000Z');
    expect(isoTimestamp('2026-11-30 22:19:18.5+00')).toBe('2026-11-30T22:19:18.500Z');
    expect(isoTimestamp('2026-11-30 22:19:18.123456+00')).toBe('2026-11-30T22:19:18.123456Z');
    expect(isoTimestamp('2026-12-01 01:19:18.022+03')).toBe('2026-11-30T22:19:18.022Z');
    expect(isoTimestamp('2026-11-30 17:49:18.022-04:30')).toBe('2026-11-30T22:19:18.022Z');
    expect(isoTimestamp('2026-11-30T22:19:18.022Z')).toBe('2026-11-30T22:19:18.022Z');
  });

  it('anything else is left as it is', () => {
    for (const s of ['never', '2026-11-30', 'infinity', '2026-11-30 22:19:18']) expect(isoTimestamp(s)).toBe(s);
  });

  it('jsonDocument rewrites only `_at` keys', () => {
    const doc = JSON.parse(
      jsonDocument({
        started_at: '2026-11-30 22:19:18.022+00',
        name: '2026-11-30 22:19:18.022+00',
        nested: [{ finished_at: '2026-11-30T22:19:33.005+00:00' }],
      }),
    ) as Record<string, unknown>;
    expect(doc).toEqual({ started_at: '2026-11-30T22:19:18.022Z', name: '2026-11-30 22:19:18.022+00', nested: [{ finished_at: '2026-11-30T22:19:33.005Z' }] });
  });
});
