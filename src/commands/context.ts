// What every command gets: the frozen configuration, a logger (stderr, so stdout
// stays the command's answer), stdout, its parsed flags and positional
// arguments (see command-line.ts), and the database opened on first use.
import { existsSync } from 'node:fs';
import type { Settings } from '../config.js';
import { embeddedClusterPath, type Database, type Queryable } from '../db/database.js';
import { migrate, migrationState } from '../db/migrate.js';
import { DataDirBusyError } from '../errors.js';
import { openDatabase } from '../db/open.js';
import { queryThroughGateway } from '../daemon/local-gateway.js';
import { readOnlyRows } from '../db/read-only.js';
import type { Logger } from '../log.js';

export interface CommandContext<C extends Settings = Settings> {
  /** `Config` (with the environment's connector) for commands that need one, else `Settings`. */
  config: C;
  log: Logger;
  out: (text: string) => void;
  /** Flags by long name without dashes (`ctx.flags['allow-mass-removal']`), as the command's table entry declares them. */
  flags: Readonly<Record<string, string | boolean | undefined>>;
  positionals: readonly string[];
  /** Opens (once) and migrates the configured database. */
  db(): Promise<Database>;
  close(): Promise<void>;
}

/**
 * When opening the database applies pending migrations: always (the default),
 * never (`migrate` reports what it applies itself), or only to a schema already
 * installed (commands that only look must not install one in a wrong database).
 */
export type MigrateOnOpen = boolean | 'if-installed';

export function createContext<C extends Settings>(
  config: C,
  log: Logger,
  args: { flags: CommandContext['flags']; positionals: readonly string[] },
  opts: { migrate?: MigrateOnOpen } = {},
): CommandContext<C> {
  let opened: Promise<Database> | undefined;
  return {
    config,
    log,
    flags: args.flags,
    positionals: args.positionals,
    out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
    db() {
      opened ??= (async () => {
        const db = await openDatabase(config, log);
        if (opts.migrate !== false) {
          try {
            // Looked at first with reads only, so a read-only database role can still run `status` or `query`.
            const state = await migrationState(db);
            const installed = state.applied.length > 0;
            if ((state.pending.length > 0 || state.unknown.length > 0) && (installed || opts.migrate !== 'if-installed')) {
              await migrate(db, log.child({ component: 'migrate' }), { queueUrl: config.database.url });
            }
          } catch (err) {
            await db.close().catch(() => undefined);
            throw err;
          }
        }
        return db;
      })();
      return opened;
    },
    async close() {
      if (opened) await (await opened.catch(() => undefined))?.close();
    },
  };
}

/**
 * One read-only statement against the configured database. When a running
 * daemon holds the embedded database, the statement goes through its gateway.
 */
export async function readOnly(ctx: CommandContext, sql: string, params: readonly unknown[] = []): Promise<Record<string, unknown>[]> {
  const { q, db } = await readAccess(ctx);
  // The gateway runs its statements read-only itself.
  return db ? readOnlyRows(db, sql, params) : (await q.query<Record<string, unknown>>(sql, params)).rows;
}

/**
 * A read-only way into the data for commands that only look: the database
 * itself, or a running daemon's gateway when it holds the embedded database.
 */
export async function readAccess(ctx: CommandContext): Promise<{ q: Queryable; db?: Database; via: string }> {
  // Looking must not create a database: a mistyped DATA_DIR would otherwise show an empty new one.
  if (embeddedDatabaseMissing(ctx.config)) {
    throw new Error(
      `there is no embedded database in ${ctx.config.database.dataDir} (DATA_DIR): nothing has run there yet; is DATA_DIR (or DATABASE_URL) right?`,
    );
  }
  try {
    const db = await ctx.db();
    return { q: db, db, via: db.description };
  } catch (err) {
    if (!(err instanceof DataDirBusyError)) throw err;
    const probe = await queryThroughGateway(ctx.config.database.dataDir, 'SELECT 1 AS ok').catch(() => undefined);
    if (!probe) throw err;
    const q: Queryable = {
      query: async <R>(sql: string, params?: readonly unknown[]) => {
        const rows = (await queryThroughGateway(ctx.config.database.dataDir, sql, params ?? [])) ?? [];
        return { rows: rows as R[], rowCount: rows.length };
      },
    };
    return { q, via: `embedded PostgreSQL in ${ctx.config.database.dataDir}, read through the running daemon` };
  }
}

/** The embedded database is configured (no DATABASE_URL) but DATA_DIR holds none: nothing has run there. */
export function embeddedDatabaseMissing(config: Pick<Settings, 'database'>): boolean {
  return !config.database.url && !existsSync(embeddedClusterPath(config.database.dataDir));
}

/** Whether the database holds the tines-connector schema. */
export async function schemaInstalled(q: Queryable): Promise<boolean> {
  const r = await q.query<{ t: string | null }>(`SELECT to_regclass('tines_users')::text AS t`);
  return Boolean(r.rows[0]?.t);
}

/** Fails plainly when the database holds no tines-connector schema (a wrong DATABASE_URL, or nothing has run yet). */
export async function requireSchema(q: Queryable, via: string): Promise<void> {
  if (!(await schemaInstalled(q))) {
    throw new Error(
      `there is no tines-connector schema in ${via}: nothing has run against this database yet; is DATABASE_URL right? (\`migrate\` or \`sync\` creates it)`,
    );
  }
}
