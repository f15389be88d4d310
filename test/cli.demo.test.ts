// The real `tines-connector demo`, bounded by --syncs and sped up by --schedule:
// it tells the whole story (joiners, a leaver, a revoked key, a skipped sync,
// a rotated key and the recovery) and ends with the report, exit 0.
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { EmbeddedDatabase } from '../src/db/embedded.js';
import { childCwd, childEnv, runCli } from './helpers/cli.js';

// No .env in the child's working directory: the environment is exactly what the test gives.
const CHILD_CWD = childCwd('tines-connector-demo-cwd-');
const DATA_DIR = mkdtempSync(join(tmpdir(), 'tines-connector-demo-test-'));

describe('demo', () => {
  // The demo's own data directory, given with --data-dir and seeded from the migrated
  // template: creating a PGlite cluster from nothing costs ~10 s the test can spare.
  beforeAll(() => cpSync(inject('embeddedTemplate'), join(DATA_DIR, 'pgdata'), { recursive: true }));
  afterAll(() => rmSync(DATA_DIR, { recursive: true, force: true }));

  it('refuses bad options at once (exit 2, each named), starting nothing and leaving nothing behind', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tines-connector-demo-opts-'));
    try {
      const r = await runCli(['demo', '--syncs', 'abc', '--schedule', 'bad cron'], childEnv({ TMPDIR: tmp }), { cwd: CHILD_CWD, timeoutMs: 15_000 });
      expect(r.signal, r.stderr).toBeNull();
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/--syncs must be a positive whole number, not "abc"/);
      expect(r.stderr).toMatch(/--schedule is not a valid 5- or 6-field cron expression/);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(readdirSync(tmp)).toEqual([]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('runs 8 syncs through added, removed, reconnect required, skipped, recovered, then prints the report', async () => {
    const r = await runCli(['demo', '--syncs', '8', '--schedule', '*/1 * * * * *', '--data-dir', DATA_DIR], childEnv(), { cwd: CHILD_CWD, timeoutMs: 55_000 });
    const context = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
    expect(r.signal, context).toBeNull();
    expect(r.code, context).toBe(0);
    const out = r.stdout;
    const lines = out.split('\n');
    const syncLines = lines.filter((l) => /^sync \d+:/.test(l));
    expect(
      syncLines.map((l) => Number(/^sync (\d+):/.exec(l)![1])),
      context,
    ).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);

    // Users added: the whole tenant at first, then joiners.
    expect(syncLines[0], context).toMatch(/succeeded .*\+240 users added/);
    expect(syncLines[1], context).toMatch(/\+3 users added.*-1 removed/);
    // The key is revoked: Tines refuses it, the connector needs reconnecting.
    const refused = syncLines.findIndex((l) => /refused the key.*reconnect_required/.test(l));
    expect(refused, context).toBeGreaterThan(0);
    expect(out).toMatch(/tines-connector reconnect/); // how an operator would reconnect
    // While the key is still refused, a sync is skipped without calling Tines.
    const skipped = syncLines.findIndex((l) => /skipped, reconnect required: Tines was not called/.test(l));
    expect(skipped, context).toBeGreaterThan(refused);
    // The rotated key is accepted: active again.
    const recoveredAt = lines.findIndex((l) => /active again/.test(l));
    expect(recoveredAt, context).toBeGreaterThan(lines.indexOf(syncLines[skipped]!));
    // After recovery, more joiners and another leaver.
    expect(
      syncLines.slice(skipped + 1).some((l) => /\+2 users added.*-1 removed/.test(l)),
      context,
    ).toBe(true);
    // The final report.
    const reportAt = lines.findIndex((l) => /users present/.test(l));
    expect(reportAt, context).toBeGreaterThan(lines.indexOf(syncLines[7]!));
    // Not on PATH in a checkout: the hint runs the bin by its path.
    expect(out).toMatch(/try: DATA_DIR=\S+ node \S*dist\/bin\/cli\.js query "SELECT \* FROM recent_changes LIMIT 10"/);
    expect(out).toMatch(/users present\s+243\b/); // 240 + 3 - 1 + 2 - 1
    expect(out).toMatch(/state\s+active/);
    expect(out).toMatch(/external\s+3 outside example\.com/);
    // Owners: the demo's directory has departed people, a tenant admin among them.
    expect(out).toMatch(/people imported: source "hr"/);
    expect(out).toMatch(/owners\s+\d+ orphaned \([1-9]\d* privileged\), [1-9]\d* unowned/);
    const privilegedAt = lines.findIndex((l) => /privileged orphans/.test(l));
    expect(privilegedAt, context).toBeGreaterThan(reportAt);
    expect(lines[privilegedAt + 1], context).toMatch(/departed 45 days ago\s+tenant admin/); // as the directory dates it

    // What the demo left in its database agrees with the story.
    const db = await EmbeddedDatabase.open(DATA_DIR);
    try {
      // The story's tenant, and the second one (registered, its key sealed).
      const c = (await db.query<{ name: string; source: string; status: string }>('SELECT name, source, status FROM connectors ORDER BY name')).rows;
      expect(c).toEqual([
        // The demo's own names: never the default "tines" of a real installation.
        { name: 'demo', source: 'env', status: 'active' },
        { name: 'staging', source: 'registry', status: 'active' },
      ]);
      expect(out).toMatch(/staging: sync succeeded, 12 users/);
      expect(out).toMatch(/^staging \(/m);
      const kinds = (await db.query<{ kind: string }>('SELECT DISTINCT kind FROM change_events ORDER BY kind')).rows.map((k) => k.kind);
      expect(kinds).toEqual(expect.arrayContaining(['user_added', 'user_removed', 'user_updated', 'connector_status_changed']));
      const statuses = (
        await db.query<{ to: string }>(`SELECT details->'status'->>'to' AS "to" FROM change_events WHERE kind = 'connector_status_changed' ORDER BY id`)
      ).rows.map((s) => s.to);
      expect(statuses.slice(-2)).toEqual(['reconnect_required', 'active']);
      const orphans = (await db.query<{ admin: boolean; person_status: string }>('SELECT admin, person_status FROM privileged_orphans')).rows;
      expect(orphans).toContainEqual({ admin: true, person_status: 'departed' });
      // The skipped sync called nothing and recorded no run: one run per sync that reached Tines.
      const runs = (
        await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM sync_runs r JOIN connectors c ON c.id = r.connector_id WHERE c.name = 'demo'`)
      ).rows[0]!.n;
      expect(Number(runs)).toBe(syncLines.filter((l) => !/skipped/.test(l)).length);
    } finally {
      await db.close();
    }
  }, 60_000);

  it('--syncs -1 and --data-dir FILE: exit 2 naming what is wrong, no stack trace', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tines-connector-demo-opts-'));
    try {
      const file = join(tmp, 'f');
      writeFileSync(file, 'not a directory');
      const r = await runCli(['demo', '--syncs', '-1', '--data-dir', file], childEnv(), { cwd: CHILD_CWD, timeoutMs: 15_000 });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/--syncs must be a positive whole number, not "-1"/);
      expect(r.stderr).toMatch(/--data-dir .*\/f is a file, not a directory/);
      expect(r.stderr).not.toMatch(/ambiguous|EEXIST|\n\s+at /);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('refuses a --data-dir that holds a real database (connector "tines"), and leaves it as it was', async () => {
    const real = mkdtempSync(join(tmpdir(), 'tines-connector-demo-real-'));
    try {
      cpSync(inject('embeddedTemplate'), join(real, 'pgdata'), { recursive: true });
      const seed = await EmbeddedDatabase.open(real);
      await seed.query(`INSERT INTO connectors (name, tenant_domain, api_key_fingerprint) VALUES ('tines', 'acme.tines.com', 'sha256:real')`);
      await seed.close();
      const r = await runCli(['demo', '--syncs', '1', '--data-dir', real], childEnv(), { cwd: CHILD_CWD, timeoutMs: 30_000 });
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toMatch(/holds a real database \(connector "tines"\): the demo would change its data/);
      expect(r.stdout).not.toMatch(/sync 1/);
      const db = await EmbeddedDatabase.open(real);
      try {
        expect((await db.query('SELECT name, tenant_domain, api_key_fingerprint FROM connectors')).rows).toEqual([
          { name: 'tines', tenant_domain: 'acme.tines.com', api_key_fingerprint: 'sha256:real' },
        ]);
        expect((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM tines_users')).rows[0]!.n).toBe(0);
      } finally {
        await db.close();
      }
    } finally {
      rmSync(real, { recursive: true, force: true });
    }
  }, 40_000);
});
