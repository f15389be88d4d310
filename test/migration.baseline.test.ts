// Migration 008 on a database synced before it: each connector's first users
// become its baseline (connector columns, their events marked), later arrivals
// stay joiners. Run in a schema of its own, migrated up to 007 first.
import { describe, expect, it } from 'vitest';
import { loadMigrations } from '../src/db/migrate.js';
import { backends, openTestDb } from './helpers/backends.js';

describe.each(backends())('migration 008 on existing data (%s)', (backend) => {
  const t = openTestDb(backend);

  it('marks the first sync of each connector as its baseline', async () => {
    const migrations = loadMigrations();
    const result = await t.db.withSession(async (s) => {
      await s.exec('CREATE SCHEMA before_008; SET search_path = before_008');
      try {
        for (const m of migrations.filter((m) => m.version < 8)) await s.exec(m.sql);
        await s.exec(`
          INSERT INTO connectors (name, tenant_domain) VALUES ('a', 'a.tines.com'), ('empty', 'e.tines.com');
          INSERT INTO sync_runs (connector_id, trigger, status, finished_at) VALUES (1, 'manual', 'succeeded', now()), (1, 'manual', 'succeeded', now());
          INSERT INTO tines_users (connector_id, tines_user_id, email, raw, first_seen_at)
          VALUES (1, 1, 'a@x', '{}', '2026-01-01'), (1, 2, 'b@x', '{}', '2026-01-01'), (1, 3, 'c@x', '{}', '2026-02-01');
          INSERT INTO change_events (connector_id, sync_run_id, occurred_at, kind, tines_user_id, team_id, details)
          VALUES (1, 1, '2026-01-01', 'user_added', 1, NULL, '{}'), (1, 1, '2026-01-01', 'user_added', 2, NULL, '{}'),
                 (1, 1, '2026-01-01', 'membership_added', 2, 7, '{"team_name": "Ops", "role": "VIEWER"}'),
                 (1, 2, '2026-02-01', 'user_added', 3, NULL, '{}');`);
        await s.exec(migrations.find((m) => m.version === 8)!.sql);
        return {
          connectors: (await s.query('SELECT name, baseline_run_id, baseline_users FROM connectors ORDER BY name')).rows,
          events: (await s.query(`SELECT sync_run_id, kind, details ? 'baseline' AS baseline FROM change_events ORDER BY id`)).rows,
          present: (await s.query('SELECT tines_user_id, baseline FROM present_users ORDER BY tines_user_id')).rows,
        };
      } finally {
        await s.exec('SET search_path = public; DROP SCHEMA before_008 CASCADE');
      }
    });
    expect(result.connectors).toEqual([
      { name: 'a', baseline_run_id: 1, baseline_users: 2 },
      { name: 'empty', baseline_run_id: null, baseline_users: null },
    ]);
    expect(result.events).toEqual([
      { sync_run_id: 1, kind: 'user_added', baseline: true },
      { sync_run_id: 1, kind: 'user_added', baseline: true },
      { sync_run_id: 1, kind: 'membership_added', baseline: true },
      { sync_run_id: 2, kind: 'user_added', baseline: false },
    ]);
    expect(result.present).toEqual([
      { tines_user_id: 1, baseline: true },
      { tines_user_id: 2, baseline: true },
      { tines_user_id: 3, baseline: false },
    ]);
  });
});
