// `people import FILE.csv [--source NAME] [--allow-mass-departure] [--json]`:
// the organisation's directory, loaded as one source's full snapshot.
import { DirectoryFileError } from '../people/directory-csv.js';
import { BAD_ROWS_REPORTED, DEFAULT_SOURCE, importPeopleFile, type ImportOutcome } from '../people/import.js';
import { CommandRefusal } from '../errors.js';
import type { CommandContext } from './context.js';
import { jsonDocument, visible } from './format.js';

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
    ]
      .map(visible)
      .join('\n');
  }
  const lines = [
    o.result === 'loaded' ? `people imported: source "${o.source}", ${o.rows} people in the file` : `people import held: source "${o.source}", nothing loaded`,
    `  +${o.added} added, ~${o.updated} updated (${o.returned} returned), ${o.unchanged} unchanged, ${o.departed} ${o.result === 'loaded' ? 'departed' : 'would depart'}`,
  ];
  if (o.claimed > 0) lines.push(`  ${o.claimed} of them belonged to another source (or were written with SQL) and now belong to "${o.source}"`);
  if (o.message) lines.push(`  ${o.message}`);
  return lines.map(visible).join('\n');
}

export async function peopleImportCommand(ctx: CommandContext): Promise<number> {
  const file = ctx.positionals[0]!;
  const source = typeof ctx.flags.source === 'string' ? ctx.flags.source.trim() : DEFAULT_SOURCE;
  if (source === '') {
    throw new CommandRefusal('--source must not be empty');
  }
  const db = await ctx.db();
  let outcome: ImportOutcome;
  try {
    outcome = await importPeopleFile(db, file, {
      source,
      allowMassDeparture: ctx.flags['allow-mass-departure'] === true,
      guard: ctx.config.sync,
      log: ctx.log.child({ component: 'people' }),
    });
  } catch (err) {
    if (!(err instanceof DirectoryFileError)) throw err;
    throw new CommandRefusal(`${err.message}; nothing loaded`);
  }
  if (outcome.ignored_columns.length > 0) {
    process.stderr.write(
      `tines-connector people import: ignored columns ${visible(outcome.ignored_columns.map((c) => `"${c}"`).join(', '))} (not people columns)\n`,
    );
  }
  ctx.out(ctx.flags.json ? jsonDocument(outcome) : describeImport(outcome));
  return exitCodeOf(outcome);
}
