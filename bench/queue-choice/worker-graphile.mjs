// One replica on graphile-worker 0.16: its crontab runs a 'tick' once per minute in the whole fleet
// (known_crontabs), the tick adds one job per connector (job_key per connector, queue_name per connector).
import { EventEmitter } from 'node:events';
import { run } from 'graphile-worker';
import { dbUrl, N, CONCURRENCY, STALL, offsetMs, durationMs, sleep, recorder } from './common.mjs';

const DB = process.env.DB;
const REAPER = process.env.REAPER !== '0';
const KEY_MODE = process.env.GW_KEY ?? 'connector';
const FIX_RESTART = process.env.GW_FIX !== '0';
const QUEUES = process.env.GW_QUEUES !== '0'; // GW_QUEUES=0: no named queues (shows what per-connector queues cost)
const name = `gw-${process.pid}`;
const rec = recorder(DB, name);
const workerIds = new Set();
let stopping = false;
let errors = 0;

const { Logger } = await import('graphile-worker');
const quiet = new Logger(() => (level, message) => { if (level === 'error') { errors++; if (errors < 20 || errors % 100 === 0) console.error(`[${name}] gw error #${errors}: ${message}`); } });

const taskList = {
  async tick(payload, helpers) {
    const slot = new Date(payload._cron.ts).getTime();
    const specs = [];
    for (let c = 0; c < N; c++) {
      // GW_KEY=connector (default): one pending job per connector, a newer slot replaces a pending one (run_at kept);
      // GW_KEY=slot: one job per (connector, slot), serialised by the connector's queue.
      const key = KEY_MODE === 'slot' ? `sync:c${c}:${slot}` : `sync:c${c}`;
      specs.push({ identifier: 'sync', payload: { c, slot }, queue_name: QUEUES ? `c${c}` : null, run_at: new Date(slot + offsetMs(c)).toISOString(), max_attempts: 5, job_key: key });
    }
    const t0 = Date.now();
    await helpers.withPgClient((client) => client.query(
      'select count(*) from graphile_worker.add_jobs((select array_agg(s::graphile_worker.job_spec) from json_populate_recordset(null::graphile_worker.job_spec, $1::json) s), true)',
      [JSON.stringify(specs)]));
    process.send?.({ t: 'enqueue', slot, ms: Date.now() - t0, backfilled: payload._cron.backfilled });
  },
  async sync(payload, helpers) {
    const { c, slot } = payload;
    const id = await rec.start(c, slot, helpers.job.id);
    await sleep(durationMs(c, slot));
    await rec.finish(id);
  },
};

const events = new EventEmitter();
events.on('worker:create', ({ worker }) => workerIds.add(worker.workerId));
// graphile-worker 0.16: a worker that cannot release its job after a database error exits ("committing seppuku") and
// is not replaced (src/main.ts "TODO: handle when a worker shuts down"), its job stays locked. Stop claiming its id
// (so the reaper frees its lock) and restart the runner to get CONCURRENCY workers back.
let needRestart = false;
events.on('worker:fatalError', ({ worker }) => {
  workerIds.delete(worker.workerId);
  needRestart = true;
  process.send?.({ t: 'fatal', id: worker.workerId });
});
const options = {
  events,
  connectionString: dbUrl(DB, 'gworker'),
  concurrency: CONCURRENCY,
  noHandleSignals: true,
  pollInterval: Number(process.env.POLL_MS ?? 2000),
  logger: quiet,
  taskList,
  // once a minute in the whole fleet; no backfill (a missed tick is not replayed)
  crontab: '* * * * * tick ?max=1&jobKey=tick&jobKeyMode=replace',
};
// graphile-worker 0.16 stops the whole runner when its cron loop hits a database error (src/cron.ts: "The calling
// code should re-schedule"): supervise it and start a new runner after a pause.
let runner = null;
let restarts = 0;
const supervised = (async () => {
  while (!stopping) {
    try {
      workerIds.clear();
      needRestart = false;
      runner = await run(options);
      const r = runner;
      const watch = setInterval(() => { if (FIX_RESTART && needRestart && !stopping) { clearInterval(watch); console.error(`[${name}] a worker died: restarting the runner`); r.stop().catch(() => {}); } }, 5000);
      try { await r.promise; } finally { clearInterval(watch); }
    } catch (e) {
      if (stopping) break;
      console.error(`[${name}] runner stopped (${e.message})`);
    }
    if (!stopping) { restarts++; process.send?.({ t: 'restart', n: restarts }); console.error(`[${name}] restart #${restarts} in 5 s`); }
    runner = null;
    if (!stopping) await sleep(5000);
  }
})();

// Reaper (graphile-worker 0.16 keeps a crashed worker's lock 4 h): each replica heartbeats its worker ids;
// locks held by ids no live replica claims are released with force_unlock_workers after SYNC_STALL_SECONDS.
const pg = rec.pool;
async function heartbeat() {
  await pg.query('insert into bench_replicas (worker_ids, pid, seen_at) values ($1, $2, now()) on conflict (pid) do update set worker_ids = excluded.worker_ids, seen_at = now()', [[...workerIds], process.pid]);
}
async function reap() {
  const { rows } = await pg.query(`
    with live as (select unnest(worker_ids) id from bench_replicas where seen_at > now() - make_interval(secs => $1)),
    dead as (
      select locked_by id from graphile_worker._private_jobs where locked_by is not null and locked_at < now() - make_interval(secs => 30)
      union select locked_by from graphile_worker._private_job_queues where locked_by is not null and locked_at < now() - make_interval(secs => 30)
      except select id from live)
    select array_agg(id) ids from dead`, [STALL / 2]);
  if (rows[0].ids) {
    await pg.query('select graphile_worker.force_unlock_workers($1)', [rows[0].ids]);
    process.send?.({ t: 'reaped', ids: rows[0].ids, at: Date.now() });
  }
}
if (REAPER) {
  (async () => {
    while (!stopping) {
      try { await heartbeat(); await reap(); } catch (e) { console.error(`[${name}] reaper: ${e.message}`); }
      await sleep(10000);
    }
  })();
}

process.send?.({ t: 'ready', name });
process.on('SIGTERM', async () => {
  stopping = true;
  const t0 = Date.now();
  await Promise.race([(runner ? runner.stop().catch(() => {}) : Promise.resolve()).then(() => supervised), sleep(20000)]);
  await pg.query('delete from bench_replicas where pid = $1', [process.pid]).catch(() => {});
  await rec.pool.end();
  console.error(`[${name}] stopped in ${Date.now() - t0} ms, errors=${errors}, restarts=${restarts}`);
  process.exit(0);
});
