// `people import FILE.csv [--source NAME] [--allow-mass-departure] [--json]`:
// the organisation's directory, loaded as one source's full snapshot.
import { parseArgs } from 'node:util';
import { DirectoryFileError } from '../people/directory-csv.js';
import { BAD_ROWS_REPORTED, DEFAULT_SOURCE, importPeopleFile, type ImportOutcome } from '../people/import.js';
import type { CommandContext } from './context.js';

export const PEOPLE_USAGE = 'people import FILE.csv [--source NAME] [--allow-mass-departure] [--json]';

/** Exit codes: 0 loaded, 2 bad input (nothing loaded), 4 held by the guard (nothing loaded). */
export function exitCodeOf(o: ImportOutcome): number {
  return o.result === 'loaded' ? 0 : o.result === 'held' ? 4 : 2;
}

export function describeImport(o: ImportOutcome): string {
  if (o.result === 'rejected') {
    const more = o.bad_row_count - o.bad_rows.length;
    return [
      `people import rejected: ${o.bad_row_count} bad row${o.bad_row_count === 1 ? '' : 's'}, nothing loaded (source "${o.source}")`,
      ...o.bad_rows.map((b) => `  line ${b.line}: ${b.problem}`),
      ...(more > 0 ? [`  … and ${more} more (the first ${BAD_ROWS_REPORTED} are listed)`] : []),
    ].join('\n');
  }
  const lines = [
    o.result === 'loaded' ? `people imported: source "${o.source}", ${o.rows} people in the file` : `people import held: source "${o.source}", nothing loaded`,
    `  +${o.added} added, ~${o.updated} updated (${o.returned} returned), ${o.unchanged} unchanged, ${o.departed} ${o.result === 'loaded' ? 'departed' : 'would depart'}`,
  ];
  if (o.claimed > 0) lines.push(`  ${o.claimed} of them belonged to another source (or were written with SQL) and now belong to "${o.source}"`);
  if (o.message) lines.push(`  ${o.message}`);
  return lines.join('\n');
}

export async function peopleCommand(ctx: CommandContext): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: ctx.args,
      strict: true,
      allowPositionals: true,
      options: { source: { type: 'string' }, 'allow-mass-departure': { type: 'boolean' }, json: { type: 'boolean' } },
    });
  } catch (err) {
    process.stderr.write(`tines-connector people: ${(err as Error).message}\nusage: tines-connector ${PEOPLE_USAGE}\n`);
    return 2;
  }
  const [sub, file, ...extra] = parsed.positionals;
  const source = parsed.values.source?.trim() ?? DEFAULT_SOURCE;
  const problem =
    sub !== 'import' ? (sub ? `unknown subcommand "${sub}"` : 'a subcommand is required')
    : !file ? 'the CSV file is required'
    : extra.length > 0 ? `unexpected argument "${extra[0]}"`
    : source === '' ? '--source must not be empty'
    : undefined;
  if (problem) {
    process.stderr.write(`tines-connector people: ${problem}\nusage: tines-connector ${PEOPLE_USAGE}\n`);
    return 2;
  }
  const db = await ctx.db();
  let outcome: ImportOutcome;
  try {
    outcome = await importPeopleFile(db, file!, {
      source,
      allowMassDeparture: parsed.values['allow-mass-departure'] === true,
      guard: ctx.config.sync,
      log: ctx.log.child({ component: 'people' }),
    });
  } catch (err) {
    if (!(err instanceof DirectoryFileError)) throw err;
    process.stderr.write(`tines-connector people import: ${err.message}; nothing loaded\n`);
    return 2;
  }
  if (outcome.ignored_columns.length > 0) {
    process.stderr.write(`tines-connector people import: ignored columns ${outcome.ignored_columns.map((c) => `"${c}"`).join(', ')} (not people columns)\n`);
  }
  ctx.out(parsed.values.json ? JSON.stringify(outcome) : describeImport(outcome));
  return exitCodeOf(outcome);
}
