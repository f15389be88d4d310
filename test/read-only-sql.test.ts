// The read-only rules read the statement as PostgreSQL's lexer does: a comment
// or a literal cannot hide a statement's first word or a set_config() call,
// and text inside literals or comments cannot make a query look like something else.
import { describe, expect, it } from 'vitest';
import { readOnlyRefusal, sqlCode } from '../src/db/read-only.js';

describe('sqlCode', () => {
  it('drops comments (nested, and -- ending at \\r or \\n) and empties literals of every kind', () => {
    expect(sqlCode('/* a /* nested */ still */ SELECT 1')).toBe('  SELECT 1');
    expect(sqlCode('-- x\rCOPY t')).toBe(' \rCOPY t');
    expect(sqlCode('-- x\nSELECT 1')).toBe(' \nSELECT 1');
    expect(sqlCode("SELECT 'it''s -- not a comment', 2")).toBe("SELECT '', 2");
    expect(sqlCode("SELECT E'a\\' /* b', 3")).toBe("SELECT E'', 3");
    expect(sqlCode("SELECT 'a\\', 4")).toBe("SELECT '', 4"); // standard strings: the backslash is a character
    expect(sqlCode('SELECT $$ -- $$, $tag$ $$ /* $tag$, 5')).toBe("SELECT '', '', 5");
    expect(sqlCode('SELECT $1, a$b$ FROM t')).toBe('SELECT $1, a$b$ FROM t');
    expect(sqlCode('SELECT "set_config"(\'a\', \'b\', false), "x""y"')).toBe("SELECT set_config('', '', false), x\"y");
  });
});

describe('readOnlyRefusal', () => {
  it('accepts queries by their first word, behind comments and parentheses', () => {
    for (const sql of [
      '/* c */ SELECT 1',
      '-- c\nSELECT 1',
      '(SELECT 1)',
      'WITH x AS (SELECT 1) SELECT * FROM x',
      'VALUES (1)',
      'TABLE connectors',
      'SHOW timezone',
      'EXPLAIN SELECT 1',
      "SELECT '--', '/*'",
    ]) {
      expect(readOnlyRefusal(sql), sql).toBeUndefined();
    }
  });

  it('refuses anything else, however it is disguised', () => {
    for (const sql of ['COPY t TO STDOUT', '-- x\rCOPY t TO STDOUT', '/* /* */ SELECT */ COPY t TO STDOUT', 'DO $$ BEGIN END $$', 'CALL p()', '"COPY" t']) {
      expect(readOnlyRefusal(sql), sql).toMatch(/^only read-only queries run here/);
    }
  });

  it('on the shared session, refuses set_config hidden after a literal that looks like a comment', () => {
    for (const sql of [
      "SELECT set_config('default_transaction_read_only', 'on', false)",
      "SELECT '/*', set_config('default_transaction_read_only', 'on', false) --*/",
      "SELECT '--', set_config('default_transaction_read_only', 'on', false)",
      "SELECT \"set_config\"('default_transaction_read_only', 'on', false)",
    ]) {
      expect(readOnlyRefusal(sql, { sharedSession: true }), sql).toMatch(/session settings are refused/);
    }
    // A literal or a comment that only mentions it is no call.
    expect(readOnlyRefusal("SELECT 'set_config' AS word -- set_config", { sharedSession: true })).toBeUndefined();
  });
});
