// Each test file gets its own database on every available backend: a copy of
// the migrated embedded template, and a fresh database on the PostgreSQL server.
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, inject } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { EmbeddedDatabase } from '../../src/db/embedded.js';
import { migrate } from '../../src/db/migrate.js';
import { PostgresDatabase } from '../../src/db/postgres.js';
import { createLogger } from '../../src/log.js';

export type BackendName = 'embedded' | 'postgres';

/** The backends this run tests: embedded always, postgres when a server is reachable. */
export function backends(): BackendName[] {
  return inject('pgAdminUrl') ? ['embedded', 'postgres'] : ['embedded'];
}

export interface TestDb {
  backend: BackendName;
  /** Variables that point a child process at this database. */
  env: Record<string, string>;
  open(): Promise<Database>;
  dispose(): Promise<void>;
}

const quietLog = createLogger('silent');

export async function createTestDb(backend: BackendName): Promise<TestDb> {
  if (backend === 'embedded') {
    const dataDir = mkdtempSync(join(tmpdir(), 'tines-connector-test-'));
    cpSync(inject('embeddedTemplate'), join(dataDir, 'pgdata'), { recursive: true });
    return {
      backend,
      env: { DATA_DIR: dataDir },
      open: () => EmbeddedDatabase.open(dataDir),
      dispose: async () => rmSync(dataDir, { recursive: true, force: true }),
    };
  }
  const adminUrl = inject('pgAdminUrl');
  if (!adminUrl) throw new Error('no PostgreSQL server for this run');
  const name = `tc_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const dbUrl = url.toString();
  const migrated = new PostgresDatabase(dbUrl, quietLog);
  await migrate(migrated, quietLog);
  await migrated.close();
  return {
    backend,
    env: { DATABASE_URL: dbUrl },
    open: async () => new PostgresDatabase(dbUrl, quietLog),
    dispose: async () => {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/**
 * The database of one describe block: created and opened before its tests,
 * closed and removed after them. Read `.db` inside hooks and tests.
 */
export function openTestDb(backend: BackendName): { readonly db: Database } {
  let t: TestDb | undefined;
  let db: Database | undefined;
  beforeAll(async () => {
    t = await createTestDb(backend);
    db = await t.open();
  });
  afterAll(async () => {
    await db?.close();
    await t?.dispose();
  });
  return {
    get db(): Database {
      if (!db) throw new Error('the test database is opened in beforeAll: read .db inside a hook or test');
      return db;
    },
  };
}
