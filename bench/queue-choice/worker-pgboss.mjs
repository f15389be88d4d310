// One replica on pg-boss 10: a local minute clock enqueues every connector's slot (both replicas do;
// the queue's singletonKey + singletonSeconds dedupes), a stately queue keeps one queued + one active per connector.
import crypto from 'node:crypto';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { dbUrl, N, CONCURRENCY, offsetMs, durationMs, sleep, minuteFloor, recorder } from './common.mjs';
const guardPool = new pg.Pool({ connectionString: dbUrl(process.env.DB, 'guard'), max: Number(process.env.SYNC_CONCURRENCY ?? 4) });
guardPool.on('error', () => {});

const DB = process.env.DB;
const MODE = process.env.PGBOSS_MODE ?? 'fetch'; // 'fetch' = own dispatcher loop, 'work' = CONCURRENCY x boss.work()
const EXPIRE = Number(process.env.EXPIRE_SECONDS ?? 60);
// PGBOSS_POLICY=stately (default) | standard. PGBOSS_DEDUPE=singleton (default: singletonKey + singletonSeconds) |
// id (a job id derived from connector and slot: works for any cron schedule). GUARD=1: the job takes the
// connector's advisory lock (skip when held: a sync of it runs elsewhere) and skips a slot already synced since.
const POLICY = process.env.PGBOSS_POLICY ?? 'stately';
const DEDUPE = process.env.PGBOSS_DEDUPE ?? 'singleton';
const GUARD = process.env.GUARD === '1';
const uuidFrom = (str) => { const h = crypto.createHash('sha1').update(str).digest(); h[6] = (h[6] & 0x0f) | 0x50; h[8] = (h[8] & 0x3f) | 0x80; const x = h.subarray(0, 16).toString('hex'); return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`; };
let skipped = 0;
const name = `pgboss-${process.pid}`;
const rec = recorder(DB, name);
let stopping = false;
let errors = 0;
let active = 0;

const boss = new PgBoss({
  connectionString: dbUrl(DB, 'pgboss'),
  maintenanceIntervalSeconds: Number(process.env.MAINT_SECONDS ?? 15), // expire() runs this often (default 120)
  archiveCompletedAfterSeconds: 3600,
});
boss.on('error', (e) => { errors++; if (errors < 20 || errors % 100 === 0) console.error(`[${name}] boss error #${errors}: ${e.message}`); });

await boss.start();
// createQueue from two processes at once on a fresh schema can deadlock (seen here): retry it
for (let attempt = 1; ; attempt++) {
  try {
    if (!(await boss.getQueue('sync'))) await boss.createQueue('sync', { policy: POLICY, retryLimit: 3, retryDelay: 0, expireInSeconds: EXPIRE });
    break;
  } catch (e) {
    console.error(`[${name}] createQueue attempt ${attempt}: ${e.message}`);
    if (attempt >= 5) throw e;
    await sleep(200 * attempt);
  }
}

async function enqueue(slotMs) {
  const jobs = [];
  for (let c = 0; c < N; c++) {
    const job = { name: 'sync', data: { c, slot: slotMs }, singletonKey: `c${c}`, startAfter: new Date(slotMs + offsetMs(c)).toISOString() };
    if (DEDUPE === 'id') job.id = uuidFrom(`c${c}@${new Date(slotMs).toISOString()}`); else job.singletonSeconds = 60;
    jobs.push(job);
  }
  const t0 = Date.now();
  try { await boss.insert(jobs); } catch (e) { console.error(`[${name}] enqueue failed: ${e.message}`); }
  process.send?.({ t: 'enqueue', slot: slotMs, ms: Date.now() - t0 });
}

async function runJob(job) {
  const { c, slot } = job.data;
  if (!GUARD) {
    const id = await rec.start(c, slot, job.id);
    await sleep(durationMs(c, slot));
    await rec.finish(id);
    return;
  }
  const client = await guardPool.connect();
  const onError = () => {}; // a checked-out client's connection error is emitted on the client: without a listener it kills the process
  client.on('error', onError);
  try {
    const { rows } = await client.query('select pg_try_advisory_lock(4242, $1) ok', [c]);
    if (!rows[0].ok) { skipped++; return; } // a sync of this connector runs elsewhere (alive: its session holds the lock)
    try {
      const newer = await client.query('select 1 from bench_runs where connector = $1 and finished_at is not null and started_at >= to_timestamp($2 / 1000.0) limit 1', [c, slot + offsetMs(c)]);
      if (newer.rowCount) { skipped++; return; } // already synced since this slot was due: collapse
      const id = await rec.start(c, slot, job.id);
      await sleep(durationMs(c, slot));
      await rec.finish(id);
    } finally {
      await client.query('select pg_advisory_unlock(4242, $1)', [c]);
    }
  } finally { client.off('error', onError); client.release(); }
}

// clock: at every minute boundary (+50 ms) enqueue that slot
(async () => {
  await enqueue(minuteFloor(Date.now()));
  while (!stopping) {
    const next = minuteFloor(Date.now()) + 60000;
    await sleep(next - Date.now() + 50);
    if (!stopping) await enqueue(next);
  }
})();

if (MODE === 'work') {
  for (let i = 0; i < CONCURRENCY; i++) {
    await boss.work('sync', { batchSize: 1, pollingIntervalSeconds: Number(process.env.POLL_SECONDS ?? 0.5) }, async ([job]) => runJob(job));
  }
} else {
  // dispatcher: fetch as soon as a slot is free; poll every 500 ms when the queue is empty
  let wake = null;
  (async () => {
    while (!stopping) {
      if (active >= CONCURRENCY) { await new Promise((r) => (wake = r)); continue; }
      let jobs = [];
      try { jobs = (await boss.fetch('sync', { batchSize: 1 })) ?? []; } catch (e) { errors++; if (errors < 20 || errors % 100 === 0) console.error(`[${name}] fetch error #${errors}: ${e.message}`); }
      if (!jobs.length) { await sleep(500); continue; }
      for (const job of jobs) {
        active++;
        runJob(job).then(() => boss.complete('sync', job.id), (e) => boss.fail('sync', job.id, e))
          .catch((e) => console.error(`[${name}] complete failed: ${e.message}`))
          .finally(() => { active--; wake?.(); wake = null; });
      }
    }
  })();
}

process.send?.({ t: 'ready', name });
process.on('SIGTERM', async () => {
  stopping = true;
  const t0 = Date.now();
  while (MODE === 'fetch' && active > 0 && Date.now() - t0 < 20000) await sleep(100);
  await boss.stop({ graceful: true, timeout: 20000, wait: true });
  await rec.pool.end();
  await guardPool.end();
  console.error(`[${name}] stopped in ${Date.now() - t0} ms, errors=${errors}, skipped=${skipped}`);
  process.send?.({ t: 'skipped', n: skipped });
  process.exit(0);
});
