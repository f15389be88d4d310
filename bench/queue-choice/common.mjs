// Shared helpers for the queue benchmark (pg-boss 10 vs graphile-worker 0.16).
import crypto from 'node:crypto';
import pg from 'pg';

export const PG = 'postgres://postgres@127.0.0.1:5432';
export const dbUrl = (db, app) => `${PG}/${db}?application_name=${app}`;
export const N = Number(process.env.N ?? 1000);
export const SPREAD = Number(process.env.SPREAD ?? 60);
export const CONCURRENCY = Number(process.env.SYNC_CONCURRENCY ?? 4);
export const STALL = Number(process.env.SYNC_STALL_SECONDS ?? 120);

const h32 = (s) => crypto.createHash('sha1').update(s).digest().readUInt32BE(0);
// stable spread offset (ms) of a connector within SYNC_SPREAD_SECONDS
export const offsetMs = (c) => h32(`offset:${c}`) % (SPREAD * 1000);
// deterministic "sync" duration for (connector, slot): 50-500 ms, 5 connectors out of 1000 take 5-20 s
// HUNG_CONNECTORS=k (default 0): connectors 0..k-1 stand for hung tenants, each sync taking HUNG_MS (default 240 s)
const HUNG = Number(process.env.HUNG_CONNECTORS ?? 0);
const HUNG_MS = Number(process.env.HUNG_MS ?? 240000);
export const durationMs = (c, slotMs) => {
  if (c < HUNG) return HUNG_MS;
  const r = h32(`dur:${c}:${slotMs}`);
  return c % 200 === 7 ? 5000 + (r % 15000) : 50 + (r % 450);
};
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const minuteFloor = (ms) => Math.floor(ms / 60000) * 60000;

// One small pool per worker process to record runs (application_name=bench, not counted as queue connections)
export function recorder(db, worker) {
  const pool = new pg.Pool({ connectionString: dbUrl(db, 'bench'), max: 2 });
  pool.on('error', () => {});
  return {
    pool,
    async start(c, slotMs, jobId) {
      const { rows } = await pool.query(
        'insert into bench_runs (connector, slot, worker, pid, job_id, started_at) values ($1, to_timestamp($2 / 1000.0), $3, $4, $5, clock_timestamp()) returning id',
        [c, slotMs, worker, process.pid, String(jobId)]);
      return rows[0].id;
    },
    async finish(id) {
      await pool.query('update bench_runs set finished_at = clock_timestamp() where id = $1', [id]);
    },
  };
}

export async function benchSchema(pool) {
  await pool.query(`create table if not exists bench_runs (
    id bigserial primary key, connector int not null, slot timestamptz not null, worker text not null, pid int not null,
    job_id text, started_at timestamptz not null, finished_at timestamptz)`);
  await pool.query(`create table if not exists bench_replicas (worker_ids text[] not null, pid int primary key, seen_at timestamptz not null)`);
}
