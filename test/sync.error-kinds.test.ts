// What a failed run blames: a database error is `database`, an error the
// connector did not foresee (a TypeError) is `internal`, on both backends.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateUsers } from '../src/fake/tines-server.js';
import { errorKindOf, runSync } from '../src/sync/run-sync.js';
import { backends } from './helpers/backends.js';
import { createHarness, type Harness } from './helpers/harness.js';

describe.each(backends())('error kinds (%s)', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(backend, generateUsers(10, { seed: 7 }));
  });
  afterAll(async () => h?.close());

  it('an error of the database itself is database', async () => {
    const err = await h.db.query('SELECT * FROM no_such_table').catch((e: unknown) => e);
    expect(errorKindOf(err)).toBe('database');
  });

  it('a TypeError during a run is recorded as internal, not database', async () => {
    const outcome = await runSync(
      {
        config: h.config(),
        db: h.db,
        log: h.logs.logger,
        hooks: {
          onResponse: () => {
            throw new TypeError("Cannot read properties of undefined (reading 'x')");
          },
        },
      },
      { trigger: 'manual' },
    );
    expect(outcome).toMatchObject({ result: 'failed', errorKind: 'internal' });
    const run = await h.one<{ status: string; error_kind: string; error_message: string }>(
      'SELECT status, error_kind, error_message FROM sync_runs ORDER BY id DESC LIMIT 1',
    );
    expect(run).toEqual({ status: 'failed', error_kind: 'internal', error_message: "internal error: Cannot read properties of undefined (reading 'x')" });
  });
});
