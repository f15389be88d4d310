// `query "<SQL>" [--format table|json|csv] [--json]`: one read-only statement against the configured database.
import { stringify } from 'csv-stringify/sync';
import type { ResultField } from '../db/database.js';
import { sqlCode } from '../db/read-only.js';
import { CommandRefusal } from '../errors.js';
import type { CommandContext } from './context.js';
import { cell, formatGrid, scriptValue, visible } from './format.js';
import { readResult, type ResultBatch } from './query-result.js';

const FORMATS = ['table', 'json', 'csv'] as const;
type Format = (typeof FORMATS)[number];

export async function queryCommand(ctx: CommandContext): Promise<number> {
  const asked = ctx.flags.format;
  if (asked !== undefined && !FORMATS.includes(asked as Format)) {
    throw new CommandRefusal(`--format must be one of ${FORMATS.join(', ')}, not ${JSON.stringify(asked)}`);
  }
  if (ctx.flags.json && asked !== undefined && asked !== 'json') {
    throw new CommandRefusal(`--json and --format ${String(asked)} contradict each other`);
  }
  const format: Format = ctx.flags.json ? 'json' : ((asked as Format | undefined) ?? 'table');
  const sql = ctx.positionals[0]!;
  if (sqlCode(sql).replace(/[\s;]+/g, '') === '') {
    throw new CommandRefusal('no statement given: pass one SQL statement, e.g. query "SELECT count(*) FROM tines_users"');
  }
  const printer = format === 'json' ? jsonPrinter() : format === 'csv' ? csvPrinter() : tablePrinter(ctx);
  await readResult(ctx, sql, printer.batch);
  await printer.end();
  return 0;
}

interface Printer {
  batch(b: ResultBatch): Promise<void>;
  end(): Promise<void>;
}

/** Writes to stdout, waiting while the reader (a pipe) has not taken the last batch. */
async function write(text: string): Promise<void> {
  if (text && !process.stdout.write(text)) await new Promise((resolve) => process.stdout.once('drain', resolve));
}

/** Names that appear more than once among the columns. */
function duplicates(fields: readonly ResultField[]): string[] {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const f of fields) (seen.has(f.name) ? twice : seen).add(f.name);
  return [...twice];
}

/**
 * One JSON array of objects, streamed. Two columns of one name cannot both be
 * keys of an object: refused before anything is printed, naming the column
 * (renaming one silently would give a script a key nobody wrote).
 */
function jsonPrinter(): Printer {
  let started = false;
  return {
    async batch({ fields, rows }) {
      if (!started) {
        const twice = duplicates(fields);
        if (twice.length > 0) {
          throw new Error(
            `the result has more than one column named ${twice.map((n) => JSON.stringify(n)).join(', ')}, and --json prints each row as an object: ` +
              'give the columns distinct names (`AS`), or use --format csv or table, which print every column',
          );
        }
      }
      let text = '';
      for (const row of rows) {
        text += `${started ? ',' : '['}${JSON.stringify(Object.fromEntries(fields.map((f, i) => [f.name, scriptValue(row[i], f.typeId)])))}`;
        started = true;
      }
      await write(text);
    },
    async end() {
      await write(started ? ']\n' : '[]\n');
    },
  };
}

/** RFC 4180 CSV with a header row (every column), streamed: values by type (scriptValue), JSON for objects. */
function csvPrinter(): Printer {
  let header = false;
  const value = (v: unknown, typeId: number) => {
    const s = scriptValue(v, typeId);
    return s === null || s === undefined ? '' : typeof s === 'object' ? JSON.stringify(s) : String(s);
  };
  return {
    async batch({ fields, rows }) {
      const records = rows.map((row) => fields.map((f, i) => value(row[i], f.typeId)));
      if (!header) records.unshift(fields.map((f) => f.name));
      header = true;
      await write(records.length > 0 ? stringify(records, { record_delimiter: 'unix' }) : '');
    },
    async end() {},
  };
}

/**
 * Cells of a table held until the widths are known. A result too large to
 * show as a table (more than TABLE_LIMIT_CHARS of text) fails cleanly, with
 * the advice to use csv or json, which stream; it does not exhaust memory.
 */
const TABLE_LIMIT_CHARS = 64 * 1024 * 1024;

function tablePrinter(ctx: CommandContext): Printer {
  let header: string[] = [];
  const body: string[][] = [];
  let size = 0;
  return {
    async batch({ fields, rows }) {
      header = fields.map((f) => visible(f.name));
      for (const row of rows) {
        const cells = row.map(cell);
        for (const c of cells) size += c.length + 2;
        if (size > TABLE_LIMIT_CHARS) {
          throw new Error(
            `the result is too large to show as a table (more than ${TABLE_LIMIT_CHARS / 1024 / 1024} MB of text after ${body.length} rows): ` +
              'use --format csv or --format json, which stream rows of any number, or narrow the statement (LIMIT, fewer columns)',
          );
        }
        body.push(cells);
      }
    },
    async end() {
      ctx.out(`${formatGrid(header, body)}\n(${body.length} row${body.length === 1 ? '' : 's'})`);
    },
  };
}
