// A sync under test: the fake Tines, a database on one backend, a config
// pointing at both, and a logger whose lines the test can read.
import { Writable } from 'node:stream';
import { loadConfig, type Config } from '../../src/config.js';
import type { Database } from '../../src/db/database.js';
import { createLogger, type Logger } from '../../src/log.js';
import { runSync, type SyncOutcome, type SyncRequest } from '../../src/sync/run-sync.js';
import { FakeTines, generateUsers, type FakeUser } from '../../src/fake/tines-server.js';
import { createTestDb, type BackendName, type TestDb } from './backends.js';

export const TEST_KEY = 'tines-test-key-6f1c2a9d';

export class LogCapture {
  readonly lines: string[] = [];
  readonly logger: Logger;
  constructor(level = 'debug') {
    const lines = this.lines;
    const stream = new Writable({
      write(chunk, _enc, cb) {
        for (const l of String(chunk).split('\n')) if (l) lines.push(l);
        cb();
      },
    });
    this.logger = createLogger(level, stream);
  }
  get text(): string {
    return this.lines.join('\n');
  }
  parsed(): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

export interface Harness {
  fake: FakeTines;
  testDb: TestDb;
  db: Database;
  logs: LogCapture;
  env: Record<string, string>;
  config(overrides?: Record<string, string>): Config;
  sync(req?: Partial<SyncRequest>, env?: Record<string, string>): Promise<SyncOutcome>;
  one<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R>;
  rows<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  close(): Promise<void>;
}

export async function createHarness(backend: BackendName, users: FakeUser[] = generateUsers(50)): Promise<Harness> {
  const fake = await FakeTines.start({ users, apiKey: TEST_KEY });
  const testDb = await createTestDb(backend);
  const db = await testDb.open();
  const logs = new LogCapture();
  const env: Record<string, string> = {
    TINES_TENANT_DOMAIN: fake.url,
    TINES_API_KEY: TEST_KEY,
    TINES_REQUESTS_PER_MINUTE: '100000',
    TINES_MAX_RETRIES: '2',
    TINES_TIMEOUT_MS: '5000',
    TINES_PAGE_SIZE: '20',
    HEALTH_PORT: '0',
    ...testDb.env,
  };
  const h: Harness = {
    fake,
    testDb,
    db,
    logs,
    env,
    config: (overrides = {}) => loadConfig({ ...env, ...overrides }),
    sync: (req = {}, overrides = {}) => runSync({ config: h.config(overrides), db, log: logs.logger }, { trigger: 'manual', ...req }),
    one: async (sql, params) => (await db.query(sql, params)).rows[0] as never,
    rows: async (sql, params) => (await db.query(sql, params)).rows as never,
    close: async () => {
      await db.close().catch(() => undefined);
      await fake.close();
      await testDb.dispose();
    },
  };
  return h;
}

/**
 * A look at the database between CLI children: PostgreSQL through h.db; the
 * embedded one, which admits one process at a time, opened just for `fn`.
 */
export async function inDb<T>(h: Harness, fn: (db: Database) => Promise<T>): Promise<T> {
  if (h.testDb.backend === 'postgres') return fn(h.db);
  const db = await h.testDb.open();
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}
