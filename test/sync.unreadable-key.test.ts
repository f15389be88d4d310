// A key file that cannot be read when a sync is due (a secret mount gone): no
// run starts and Tines is not called, but each attempt counts as a failed sync,
// so the connector turns failing and says why; a readable key again brings it back.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateUsers } from '../src/fake/tines-server.js';
import { runSync } from '../src/sync/run-sync.js';
import type { Config } from '../src/config.js';
import { backends } from './helpers/backends.js';
import { createHarness, TEST_KEY, type Harness } from './helpers/harness.js';

describe.each(backends())('an unreadable key file (%s)', (backend) => {
  let h: Harness;
  let config: Config;
  const dir = mkdtempSync(join(tmpdir(), 'tines-connector-keyfile-'));
  const keyFile = join(dir, 'tines_api_key');
  const sync = () => runSync({ config, db: h.db, log: h.logs.logger }, { trigger: 'schedule' });
  const connector = () => h.one<{ status: string; status_reason: string | null; consecutive_failures: number }>('SELECT * FROM connectors');

  beforeAll(async () => {
    h = await createHarness(backend, generateUsers(10, { seed: 2 }));
    writeFileSync(keyFile, `${TEST_KEY}\n`);
    config = h.config({ TINES_API_KEY: '', TINES_API_KEY_FILE: keyFile });
  });
  afterAll(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts each attempt as a failed sync and makes the connector failing after three, without calling Tines', async () => {
    expect((await sync()).result).toBe('succeeded');
    renameSync(keyFile, `${keyFile}.gone`);
    const requests = h.fake.requests.length;
    const runs = (await h.one<{ n: number }>('SELECT count(*)::int AS n FROM sync_runs')).n;
    for (let i = 1; i <= 3; i++) {
      await expect(sync()).rejects.toThrow(/TINES_API_KEY_FILE/);
      expect((await connector()).consecutive_failures).toBe(i);
    }
    const c = await connector();
    expect(c.status).toBe('failing');
    expect(c.status_reason).toMatch(/3 syncs in a row failed; last: cannot read TINES_API_KEY_FILE .*ENOENT/);
    const event = await h.one<{ to: string }>(
      `SELECT details->'status'->>'to' AS "to" FROM change_events WHERE kind = 'connector_status_changed' ORDER BY id DESC LIMIT 1`,
    );
    expect(event.to).toBe('failing');
    expect(h.fake.requests.length).toBe(requests);
    expect((await h.one<{ n: number }>('SELECT count(*)::int AS n FROM sync_runs')).n).toBe(runs);
  });

  it('is active again once the key can be read and a sync succeeds', async () => {
    renameSync(`${keyFile}.gone`, keyFile);
    expect((await sync()).result).toBe('succeeded');
    expect(await connector()).toMatchObject({ status: 'active', status_reason: null, consecutive_failures: 0 });
  });
});
