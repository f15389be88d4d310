// Picks the backend from configuration: DATABASE_URL → PostgreSQL server; unset → embedded.
import type { Settings } from '../config.js';
import type { Logger } from '../log.js';
import type { Database } from './database.js';
import { describeUrl, PostgresDatabase } from './postgres.js';

/** Where the configured database is, safe to print (no password), before it is opened. */
export function describeDatabase(config: Pick<Settings, 'database'>): string {
  return config.database.url ? describeUrl(config.database.url) : `embedded PostgreSQL in ${config.database.dataDir}`;
}

/**
 * Pool connections for SYNC_CONCURRENCY syncs at once: a sync holds a session and,
 * during a first load, one more for its progress; plus a few for everything else
 * (health, metrics, the registry reload, the admin API, retention).
 */
export function poolSizeFor(syncConcurrency: number): number {
  return Math.max(4, 2 * syncConcurrency + 3);
}

export async function openDatabase(config: Pick<Settings, 'database'> & Partial<Pick<Settings, 'registry'>>, log: Logger): Promise<Database> {
  if (config.database.url) {
    return new PostgresDatabase(config.database.url, log.child({ component: 'db' }), { max: poolSizeFor(config.registry?.syncConcurrency ?? 1) });
  }
  // Loaded only when used: the WebAssembly build is large.
  const { EmbeddedDatabase } = await import('./embedded.js');
  return EmbeddedDatabase.open(config.database.dataDir);
}
