// Picks the backend from configuration: DATABASE_URL → PostgreSQL server; unset → embedded.
import type { Settings } from '../config.js';
import type { Logger } from '../log.js';
import type { Database } from './database.js';
import { PostgresDatabase } from './postgres.js';

export async function openDatabase(config: Pick<Settings, 'database'>, log: Logger): Promise<Database> {
  if (config.database.url) return new PostgresDatabase(config.database.url, log.child({ component: 'db' }));
  // Loaded only when used: the WebAssembly build is large.
  const { EmbeddedDatabase } = await import('./embedded.js');
  return EmbeddedDatabase.open(config.database.dataDir);
}
