// /readyz: ready when the database answers and migrations are current; the
// embedded database, busy with a sync's transaction, does not make a ready
// daemon flap to 503.
import { describe, expect, it } from 'vitest';
import type { Database } from '../src/db/database.js';
import { readiness } from '../src/daemon/health.js';

/** A database whose every query waits for `release` (like PGlite inside another transaction). */
function stuckDatabase(backend: Database['backend']): Database & { release(): void } {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  return {
    backend,
    description: 'stuck',
    release,
    query: async () => {
      await gate;
      return { rows: [], rowCount: 0 };
    },
    withSession: async () => {
      throw new Error('not used');
    },
    close: async () => undefined,
  };
}

describe('readiness', () => {
  it('stays ready while the embedded database is busy with a sync, after a ready check', async () => {
    const db = stuckDatabase('embedded');
    try {
      expect(await readiness(db, { syncInFlight: () => true, lastReady: true })).toEqual({ ready: true, reason: 'the database is busy with a sync' });
    } finally {
      db.release();
    }
  }, 10_000);

  it('is not ready when the database does not answer and no sync explains it, or on a server', async () => {
    const embedded = stuckDatabase('embedded');
    const server = stuckDatabase('postgres');
    try {
      const [idle, pg] = await Promise.all([
        readiness(embedded, { syncInFlight: () => false, lastReady: true }),
        readiness(server, { syncInFlight: () => true, lastReady: true }),
      ]);
      expect(idle.ready).toBe(false);
      expect(idle.reason).toMatch(/no answer within/);
      expect(pg.ready).toBe(false);
    } finally {
      embedded.release();
      server.release();
    }
  }, 10_000);
});
