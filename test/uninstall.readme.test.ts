// The README's uninstall statement drops every object the migrations create,
// so a later `migrate` on the same database starts clean.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { migrate } from '../src/db/migrate.js';
import { createLogger } from '../src/log.js';
import { backends, createTestDb } from './helpers/backends.js';

const README = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
const section = README.slice(README.indexOf('## Uninstall'));
const dropStatement = /`(DROP VIEW [^`]+)`/.exec(section)?.[1];

const OBJECTS = `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema()
                 UNION ALL
                 SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = current_schema()
                 ORDER BY 1`;

describe.each(backends())('uninstall as the README says (%s)', (backend) => {
  it('drops every table, view, index, sequence and function, and the job queue, and migrate works again afterwards', async () => {
    expect(dropStatement, 'the README gives the uninstall statement').toBeDefined();
    const t = await createTestDb(backend);
    const db = await t.open();
    // On a server, `run` and `migrate` also install the fleet's queue (pg-boss's schema).
    const queueUrl = t.env.DATABASE_URL;
    const queueSchema = async () => (await db.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'pgboss'`)).rows.length;
    try {
      await migrate(db, createLogger('silent'), { queueUrl });
      const names = async () => (await db.query<{ name: string }>(OBJECTS)).rows.map((r) => r.name);
      const installed = await names();
      expect(installed).toEqual(expect.arrayContaining(['tines_users', 'present_users', 'tines_role_rank', 'external_writes']));
      expect(await queueSchema()).toBe(backend === 'postgres' ? 1 : 0);
      await db.withSession((s) => s.exec(dropStatement!));
      expect(await names()).toEqual([]);
      expect(await queueSchema()).toBe(0);
      await migrate(db, createLogger('silent'), { queueUrl });
      expect(await names()).toEqual(installed);
      expect(await queueSchema()).toBe(backend === 'postgres' ? 1 : 0);
    } finally {
      await db.close();
      await t.dispose();
    }
  });
});
