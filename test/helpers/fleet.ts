// Helpers for the fleet tests (several `run` processes on one PostgreSQL):
// a database restart as the processes see it (every connection dropped, new
// ones refused for a while), and the runs of the whole fleet read as intervals.
import pg from 'pg';
import { sleep, type RunInterval } from './daemon.js';

/** The database name of a PostgreSQL URL. */
export function databaseOf(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
}

/**
 * A database restart as its clients see it, through the server's admin URL
 * (another database of the same server): new connections refused
 * (ALLOW_CONNECTIONS false) for `closedMs`, every connection to the database
 * terminated every `everyMs` meanwhile, then connections allowed again and
 * terminated once more (a server that comes back has no old session).
 * Returns how many backends were terminated.
 */
export async function simulateDatabaseRestart(adminUrl: string, dbName: string, opts: { closedMs: number; everyMs?: number }): Promise<number> {
  const everyMs = opts.everyMs ?? 250;
  const admin = new pg.Client({ connectionString: adminUrl, application_name: 'fleet-test outage' });
  admin.on('error', () => undefined);
  await admin.connect();
  const ident = `"${dbName.replace(/"/g, '""')}"`;
  const terminate = async () =>
    Number(
      (
        await admin.query<{ n: number }>(
          `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
          [dbName],
        )
      ).rows[0]!.n,
    );
  let terminated = 0;
  try {
    await admin.query(`ALTER DATABASE ${ident} ALLOW_CONNECTIONS false`);
    const until = Date.now() + opts.closedMs;
    while (Date.now() < until) {
      terminated += await terminate();
      await sleep(everyMs);
    }
  } finally {
    await admin.query(`ALTER DATABASE ${ident} ALLOW_CONNECTIONS true`).catch(() => undefined);
    terminated += await terminate().catch(() => 0);
    await admin.end().catch(() => undefined);
  }
  return terminated;
}

/** A run with its connector's name, its pid and when it was due (epoch seconds; null for a run nobody scheduled). */
export interface FleetRun extends RunInterval {
  name: string;
  pid: number;
  host: string;
  scheduled_for: number | null;
  error_kind: string | null;
  pages: number;
}

export const FLEET_RUNS_SQL = `SELECT r.id::int AS id, c.name, r.status, r.trigger, r.error_kind, r.pid, r.host, r.pages_fetched::int AS pages,
    extract(epoch FROM r.started_at)::float8 AS started, extract(epoch FROM r.finished_at)::float8 AS finished,
    extract(epoch FROM r.scheduled_for)::float8 AS scheduled_for
  FROM sync_runs r JOIN connectors c ON c.id = r.connector_id ORDER BY r.id`;

/** Map.groupBy, which Node 20 lacks. */
export function groupBy<T, K>(items: readonly T[], key: (t: T) => K): Map<K, T[]> {
  const m = new Map<K, T[]>();
  for (const t of items) {
    const k = key(t);
    const list = m.get(k);
    if (list) list.push(t);
    else m.set(k, [t]);
  }
  return m;
}

/** Slots (connector and scheduled_for) that more than one run not aborted claims: a slot synced twice. */
export function doubledSlots(runs: readonly FleetRun[]): string[] {
  const bySlot = groupBy(
    runs.filter((r) => r.scheduled_for !== null && r.status !== 'aborted'),
    (r) => `${r.name}@${r.scheduled_for}`,
  );
  return [...bySlot].filter(([, rs]) => rs.length > 1).map(([slot, rs]) => `${slot}: runs ${rs.map((r) => `${r.id} (${r.status}, pid ${r.pid})`).join(', ')}`);
}
