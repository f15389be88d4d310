// The read-only statements `query`, `status` and `report` run: which SQL is
// accepted, and how it runs (one statement, read only, rolled back, with a
// time limit). The same rules on every path: straight to the database, and
// through the daemon's gateway (daemon/local-gateway.ts), which adds one rule
// of its own because it shares the daemon's only session.
import type { Database, QueryOptions, QueryResult } from './database.js';

/**
 * The statement's code as PostgreSQL's lexer sees it: comments (`--` up to a
 * line feed or carriage return, block comments nested) replaced by a blank,
 * string literals ('…', E'…' with backslash escapes, $tag$…$tag$) by an empty
 * literal, quoted identifiers by their name. What remains is what runs, so
 * rules read it instead of the text a comment or a literal could disguise.
 */
export function sqlCode(sql: string): string {
  let out = '';
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      i += 2;
      while (i < n && sql[i] !== '\n' && sql[i] !== '\r') i++;
      out += ' ';
    } else if (c === '/' && next === '*') {
      let depth = 0;
      do {
        if (sql.startsWith('/*', i)) {
          depth++;
          i += 2;
        } else if (sql.startsWith('*/', i)) {
          depth--;
          i += 2;
        } else i++;
      } while (depth > 0 && i < n);
      out += ' ';
    } else if (c === "'") {
      // E'…' (or e'…') takes backslash escapes; any other literal only doubles its quote.
      const escapes = /[eE]$/.test(out) && !/[\w$][eE]$/.test(out);
      i++;
      while (i < n) {
        if (escapes && sql[i] === '\\') i += 2;
        else if (sql[i] === "'" && sql[i + 1] === "'") i += 2;
        else if (sql[i] === "'") break;
        else i++;
      }
      i++;
      out += "''";
    } else if (c === '"') {
      let name = '';
      i++;
      while (i < n) {
        if (sql[i] === '"' && sql[i + 1] === '"') {
          name += '"';
          i += 2;
        } else if (sql[i] === '"') break;
        else name += sql[i++];
      }
      i++;
      out += name;
    } else if (c === '$' && !/[\w$]$/.test(out)) {
      // $tag$ or $$ opens a dollar-quoted literal; $1 is a parameter, a$b an identifier.
      const tag = /^\$(?:[A-Za-z_\u0080-\uffff][\w\u0080-\uffff]*)?\$/.exec(sql.slice(i, i + 64))?.[0];
      if (!tag) {
        out += c;
        i++;
        continue;
      }
      const end = sql.indexOf(tag, i + tag.length);
      i = end < 0 ? n : end + tag.length;
      out += "''";
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** First words of the statements `query` runs (after any opening parentheses). */
const QUERY_WORDS = new Set(['select', 'with', 'values', 'table', 'show', 'explain']);

/**
 * Statements that could change a session even though their transaction rolls
 * back (PREPARE, DEALLOCATE, DISCARD, LOAD), or that only make sense to keep
 * (SET, RESET, set_config, cursors, LISTEN).
 */
const SESSION_CHANGING = /^\s*(set|reset|discard|listen|unlisten|prepare|deallocate|declare|load)\b|\bset_config\b/i;

/**
 * Why `sql` may not run read-only here, or undefined when it may. A read-only
 * transaction still lets COPY (or a DO block running one) write a file or run a
 * program on the database server, or write into the embedded database's own
 * files: only statements that are queries by their first word run. With
 * `sharedSession` (the daemon's one embedded session), statements that change
 * session settings are refused too.
 */
export function readOnlyRefusal(sql: string, opts: { sharedSession?: boolean } = {}): string | undefined {
  const code = sqlCode(sql);
  if (opts.sharedSession && SESSION_CHANGING.test(code)) {
    return 'statements that change session settings are refused while the daemon holds the embedded database';
  }
  const word = /^[\s(]*([a-z]+)/i.exec(code)?.[1]?.toLowerCase() ?? '';
  if (!QUERY_WORDS.has(word)) {
    return `only read-only queries run here (${[...QUERY_WORDS].join(', ').toUpperCase()}), not ${word ? word.toUpperCase() : 'this statement'}`;
  }
  return undefined;
}

/** Carries a read-only statement's result out of its transaction, which then rolls back. */
class RolledBack extends Error {
  constructor(readonly result: QueryResult<unknown>) {
    super('rolled back');
  }
}

/**
 * One statement, read-only, with a time limit. Its transaction always rolls
 * back, so even a SET or set_config() it smuggles in leaves the session as it
 * found it.
 */
export async function readOnlyRows(db: Database, sql: string, params: readonly unknown[] = []): Promise<Record<string, unknown>[]> {
  return (await readOnlyResult(db, sql, params)).rows as Record<string, unknown>[];
}

/** Statements a cursor can hold (DECLARE … CURSOR FOR takes a SELECT or VALUES; WITH and TABLE are SELECTs). */
export function cursorCanHold(sql: string): boolean {
  return ['select', 'with', 'values', 'table'].includes(/^[\s(]*([a-z]+)/i.exec(sqlCode(sql))?.[1]?.toLowerCase() ?? '');
}

/**
 * readOnlyRows with QueryOptions (`query`: rows as arrays with their fields,
 * some types as text). With `maxRows`, a statement a cursor can hold is read
 * through one and fails cleanly past that many rows, instead of holding a
 * result of any size in memory (the daemon's gateway).
 */
export async function readOnlyResult(
  db: Database,
  sql: string,
  params: readonly unknown[] = [],
  opts?: QueryOptions & { maxRows?: number },
): Promise<QueryResult<unknown>> {
  const refused = readOnlyRefusal(sql);
  if (refused) throw new Error(refused);
  const { maxRows, ...queryOpts } = opts ?? {};
  try {
    await db.withSession((s) =>
      s.transaction(async () => {
        await s.query('SET TRANSACTION READ ONLY');
        await s.query(`SET LOCAL statement_timeout = '120s'`);
        if (maxRows === undefined || params.length > 0 || !cursorCanHold(sql)) throw new RolledBack(await s.query(sql, params, queryOpts));
        await s.query(`DECLARE tines_connector_read NO SCROLL CURSOR FOR ${sql.replace(/[\s;]+$/, '')}`);
        const r = await s.query(`FETCH ${maxRows + 1} FROM tines_connector_read`, [], queryOpts);
        if (r.rows.length > maxRows) {
          throw new Error(
            `the result has more than ${maxRows} rows, more than the running daemon hands over at once: ` +
              'narrow the statement (LIMIT, WHERE), or stop the daemon (or use DATABASE_URL) and query the database directly, which streams',
          );
        }
        throw new RolledBack(r);
      }),
    );
  } catch (err) {
    if (err instanceof RolledBack) return err.result;
    throw err;
  }
  throw new Error('unreachable: the read-only transaction did not roll back');
}
