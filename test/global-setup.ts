// Once per `npm test`: build dist/ (the CLI tests run the real bin, the bundle), find the
// PostgreSQL server (required when REQUIRE_POSTGRES=1), and prepare a migrated
// embedded-database template that each test file copies.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { PGlite } from '@electric-sql/pglite';
import { loadMigrations } from '../src/db/migrate.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string | null;
    embeddedTemplate: string;
  }
}

/** DATABASE_URL, else the PG* variables, else the local default server. */
function candidateUrl(): string {
  if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
  const host = process.env.PGHOST ?? '127.0.0.1';
  const port = process.env.PGPORT ?? '5432';
  const user = process.env.PGUSER ?? 'postgres';
  const password = process.env.PGPASSWORD ? `:${encodeURIComponent(process.env.PGPASSWORD)}` : '';
  const database = process.env.PGDATABASE ?? 'test';
  return `postgres://${encodeURIComponent(user)}${password}@${host}:${port}/${database}`;
}

async function probePostgres(url: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return url;
  } catch (err) {
    if (process.env.REQUIRE_POSTGRES === '1') {
      throw new Error(`REQUIRE_POSTGRES=1 but PostgreSQL at ${url.replace(/:[^:@/]*@/, ':***@')} is unreachable: ${(err as Error).message}`, { cause: err });
    }
    console.warn(`PostgreSQL not reachable (${(err as Error).message}); database tests run on the embedded backend only`);
    return null;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export default async function setup(project: TestProject) {
  execFileSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
  const pgAdminUrl = await probePostgres(candidateUrl());

  const templateRoot = mkdtempSync(join(tmpdir(), 'tines-connector-template-'));
  const template = join(templateRoot, 'pgdata');
  const db = await PGlite.create(template);
  await db.exec(
    `CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
  );
  for (const m of loadMigrations()) {
    await db.exec(m.sql);
    await db.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
  }
  await db.close();

  project.provide('pgAdminUrl', pgAdminUrl);
  project.provide('embeddedTemplate', template);
  return () => rmSync(templateRoot, { recursive: true, force: true });
}
