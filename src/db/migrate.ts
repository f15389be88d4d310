// Numbered .sql files in migrations/, applied in order, each in its own
// transaction, all under one advisory lock so concurrent starts are safe.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from '../tines/retry.js';
import type { Logger } from '../log.js';
import { installSyncQueue } from '../fleet/sync-queue.js';
import type { Database } from './database.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const MIGRATION_LOCK = 'tines-connector:migrations';

/** The migrations/ folder, found upward from this module (works from src/, dist/src/ and the bundle in dist/bin/). */
export function migrationsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'migrations');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('cannot find the migrations/ folder next to the installed package');
}

export function loadMigrations(dir = migrationsDir()): Migration[] {
  const files = readdirSync(dir).filter((f) => /^\d+_.+\.sql$/.test(f));
  const migrations = files
    .map((f) => ({ version: Number(f.split('_')[0]), name: f, sql: readFileSync(join(dir, f), 'utf8') }))
    .sort((a, b) => a.version - b.version);
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]!.version === migrations[i - 1]!.version) throw new Error(`two migrations share version ${migrations[i]!.version}`);
  }
  return migrations;
}

const CREATE_LEDGER = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;

/** Versions applied in the database; empty when it was never migrated. */
async function appliedVersions(db: Pick<Database, 'query'>): Promise<number[]> {
  const exists = await db.query<{ t: string | null }>(`SELECT to_regclass('schema_migrations')::text AS t`);
  if (!exists.rows[0]?.t) return [];
  const r = await db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
  return r.rows.map((row) => Number(row.version));
}

export interface MigrationState {
  applied: number[];
  pending: Migration[];
  /** Versions in the database that this build does not know: it was migrated by newer code. */
  unknown: number[];
}

export async function migrationState(db: Pick<Database, 'query'>, migrations = loadMigrations()): Promise<MigrationState> {
  const applied = await appliedVersions(db);
  const known = new Set(migrations.map((m) => m.version));
  const done = new Set(applied);
  return { applied, pending: migrations.filter((m) => !done.has(m.version)), unknown: applied.filter((v) => !known.has(v)) };
}

/**
 * Applies pending migrations; returns the names applied. Refuses a database migrated by newer code.
 * `queueUrl` (a PostgreSQL server's): also installs or upgrades the fleet's job queue, under the same lock.
 */
export async function migrate(db: Database, log: Logger, opts: { lockTimeoutMs?: number; queueUrl?: string } = {}): Promise<string[]> {
  const migrations = loadMigrations();
  return db.withSession(async (session) => {
    const deadline = Date.now() + (opts.lockTimeoutMs ?? 60_000);
    while (!(await session.tryLock(MIGRATION_LOCK))) {
      if (Date.now() > deadline) throw new Error('timed out waiting for another process to finish migrating the database');
      await sleep(100 + Math.random() * 200);
    }
    try {
      await session.query(CREATE_LEDGER);
      const state = await migrationState(session, migrations);
      if (state.unknown.length > 0) {
        const newest = Math.max(...migrations.map((m) => m.version));
        throw new Error(
          `the database was migrated by a newer tines-connector (schema versions ${state.unknown.join(', ')}; this build knows up to ${newest}). ` +
            'Upgrade this deployment instead of running an older build against it.',
        );
      }
      const applied: string[] = [];
      for (const m of state.pending) {
        const started = performance.now();
        await session.transaction(async () => {
          await session.exec(m.sql);
          await session.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
        });
        log.info({ migration: m.name, durationMs: Math.round(performance.now() - started) }, 'migration applied');
        applied.push(m.name);
      }
      if (opts.queueUrl && db.backend === 'postgres') await installSyncQueue(opts.queueUrl);
      return applied;
    } finally {
      await session.unlock(MIGRATION_LOCK);
    }
  });
}
