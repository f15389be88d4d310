// Orchestrator: node bench.mjs --lib pgboss|graphile --minutes M [--replicas 2] [--kill-at S] [--respawn-after S]
// Creates its own scratch database, runs R worker processes, samples CPU/RSS/connections/queue depth, SIGKILLs one
// replica once, stops the rest with SIGTERM, and prints one JSON object of figures (also written to results/).
import { fork, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import pg from 'pg';
import { PG, N, offsetMs, sleep, minuteFloor, benchSchema } from './common.mjs';

const arg = (k, d) => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1] : d; };
const LIB = arg('lib', 'pgboss');
const MINUTES = Number(arg('minutes', 5));
const R = Number(arg('replicas', 2));
const KILL_AT = Number(arg('kill-at', 0)) * 1000;
const RESPAWN_AFTER = Number(arg('respawn-after', 20)) * 1000;
const DB = arg('db', `qbench_${LIB}`);
const TAG = arg('tag', LIB);
const OUTAGE_AT = Number(arg('outage-at', 0)) * 1000; // database refuses connections and existing ones are terminated
const OUTAGE_FOR = Number(arg('outage-for', 30)) * 1000;
const workerFile = LIB === 'pgboss' ? './worker-pgboss.mjs' : './worker-graphile.mjs';
const TICK = 100 / 1000 * 1000; // ms per clock tick (USER_HZ 100)

execFileSync('dropdb', ['-h', '127.0.0.1', '-U', 'postgres', '--if-exists', DB]);
execFileSync('createdb', ['-h', '127.0.0.1', '-U', 'postgres', DB]);
const db = new pg.Pool({ connectionString: `${PG}/${DB}?application_name=bench-orchestrator`, max: 2 });
const admin = new pg.Pool({ connectionString: `${PG}/postgres?application_name=bench-orchestrator`, max: 1 });
// children die with the orchestrator
process.on('exit', () => { try { for (const p of procs) if (p.alive) p.child.kill('SIGKILL'); } catch {} });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(1));
process.on('uncaughtException', (e) => { console.error(e); process.exit(1); });
await benchSchema(db);
// Install the queue's schema once before the replicas start: two replicas migrating a fresh database at once
// crashed one of them with both libraries (pg-boss: deadlock in createQueue; graphile-worker: pg_namespace unique violation).
if (process.env.PREMIGRATE !== '0') {
  if (LIB === 'pgboss') {
    const { default: PgBoss } = await import('pg-boss');
    const boss = new PgBoss({ connectionString: `${PG}/${DB}`, supervise: false, schedule: false });
    await boss.start();
    await boss.createQueue('sync', { policy: process.env.PGBOSS_POLICY ?? 'stately', retryLimit: 3, retryDelay: 0, expireInSeconds: Number(process.env.EXPIRE_SECONDS ?? 60) });
    await boss.stop({ graceful: false });
  } else {
    const { runMigrations } = await import('graphile-worker');
    await runMigrations({ connectionString: `${PG}/${DB}`, logger: new (await import('graphile-worker')).Logger(() => () => {}) });
  }
}

const procs = []; // { child, pid, cpuTicks, rssMaxKb, alive }
const events = [];
function spawn() {
  const child = fork(workerFile, [], { env: { ...process.env, DB }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const p = { child, pid: child.pid, cpuTicks: 0, rssMaxKb: 0, rssLastKb: 0, alive: true, startedAt: Date.now() };
  child.on('message', (m) => events.push({ ...m, pid: child.pid, at: Date.now() }));
  child.on('exit', (code, sig) => { p.alive = false; p.exit = { code, sig, at: Date.now() }; });
  procs.push(p);
  return p;
}
function sampleProc(p) {
  try {
    const stat = fs.readFileSync(`/proc/${p.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    p.cpuTicks = Number(stat[11]) + Number(stat[12]);
    const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${p.pid}/status`, 'utf8'))[1]);
    p.rssLastKb = rss; p.rssMaxKb = Math.max(p.rssMaxKb, rss);
  } catch { /* exited */ }
}
const depthSql = LIB === 'pgboss'
  ? `select count(*) filter (where state in ('created','retry') and start_after <= now())::int due, count(*) filter (where state = 'active')::int active from pgboss.job where name = 'sync'`
  : `select count(*) filter (where locked_at is null and run_at <= now() and attempts < max_attempts)::int due, count(*) filter (where locked_at is not null)::int active from graphile_worker._private_jobs`;

const t0 = Date.now();
for (let i = 0; i < R; i++) spawn();
const endAt = t0 + MINUTES * 60000;
const samples = [];
let killed = null;
let outage = null;
while (Date.now() < endAt) {
  await sleep(5000);
  for (const p of procs) if (p.alive) sampleProc(p);
  const s = { t: Math.round((Date.now() - t0) / 1000), load1: os.loadavg()[0] };
  try {
    const conn = await db.query(`select application_name app, count(*)::int n from pg_stat_activity where datname = $1 group by 1`, [DB]);
    s.conns = Object.fromEntries(conn.rows.map((r) => [r.app, r.n]));
    Object.assign(s, (await db.query(depthSql)).rows[0]);
  } catch (e) { s.err = e.message; }
  s.rssMb = procs.filter((p) => p.alive).map((p) => Math.round(p.rssLastKb / 1024));
  samples.push(s);
  if (samples.length % 12 === 0) console.error(`[bench ${TAG}] t=${s.t}s load=${s.load1.toFixed(2)} due=${s.due} active=${s.active} conns=${JSON.stringify(s.conns)} rss=${s.rssMb}`);
  if (OUTAGE_AT && !outage && Date.now() - t0 >= OUTAGE_AT) {
    outage = { at: Date.now() };
    await admin.query(`alter database ${DB} allow_connections false`);
    await db.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and application_name <> 'bench-orchestrator'`, [DB]);
    console.error(`[bench ${TAG}] outage: database closed`);
    setTimeout(async () => {
      await admin.query(`alter database ${DB} allow_connections true`);
      outage.end = Date.now();
      console.error(`[bench ${TAG}] outage over`);
    }, OUTAGE_FOR);
  }
  if (KILL_AT && !killed && Date.now() - t0 >= KILL_AT) {
    const victim = procs.find((p) => p.alive);
    sampleProc(victim);
    const inflight = (await db.query('select connector, slot from bench_runs where pid = $1 and finished_at is null', [victim.pid])).rows;
    victim.child.kill('SIGKILL');
    killed = { pid: victim.pid, at: Date.now(), inflight: inflight.map((r) => ({ c: r.connector, slot: r.slot.getTime() })) };
    console.error(`[bench ${TAG}] SIGKILL ${victim.pid} with ${inflight.length} syncs in flight`);
    setTimeout(() => { if (Date.now() < endAt - 10000) { const p = spawn(); console.error(`[bench ${TAG}] respawned ${p.pid}`); } }, RESPAWN_AFTER);
  }
}

// graceful stop of the survivors
const stopT0 = Date.now();
for (const p of procs) if (p.alive) { sampleProc(p); p.child.kill('SIGTERM'); }
while (procs.some((p) => p.alive) && Date.now() - stopT0 < 30000) await sleep(100);
const stopMs = Date.now() - stopT0;
for (const p of procs) if (p.alive) p.child.kill('SIGKILL');
const tEnd = Date.now();

// ---- analysis
const runs = (await db.query('select id, connector c, slot, pid, started_at, finished_at from bench_runs order by started_at')).rows
  .map((r) => ({ ...r, slot: r.slot.getTime(), s: r.started_at.getTime(), f: r.finished_at ? r.finished_at.getTime() : (killed && r.pid === killed.pid ? killed.at : tEnd) }));
const firstSlot = minuteFloor(t0) + 120000; // skip the start-up minute(s)
const lastSlot = minuteFloor(endAt - 120000); // slots whose due time is at least 60 s before the end
const inWindow = (slot) => slot >= firstSlot && slot <= lastSlot;
const slotsDue = N * ((lastSlot - firstSlot) / 60000 + 1);
const byKey = new Map();
for (const r of runs) { const k = `${r.c}:${r.slot}`; byKey.set(k, [...(byKey.get(k) ?? []), r]); }
let dupAfterFinish = 0, rerunAfterKill = 0;
for (const [, rs] of byKey) {
  if (rs.length < 2) continue;
  for (const r of rs.slice(1)) { if (killed && rs.some((x) => x.pid === killed.pid && !x.finished_at)) rerunAfterKill++; else dupAfterFinish++; }
}
const byConn = new Map();
for (const r of runs) byConn.set(r.c, [...(byConn.get(r.c) ?? []), r]);
// a run whose finish could not be recorded (database away, process killed) has an unknown end: count it apart
let overlaps = 0;
const unknownEnd = runs.filter((r) => !r.finished_at && !(killed && r.pid === killed.pid)).length;
for (const [, rs] of byConn) for (let i = 1; i < rs.length; i++) for (let j = 0; j < i; j++) if ((rs[j].finished_at || (killed && rs[j].pid === killed.pid)) && rs[j].f > rs[i].s + 1) overlaps++;
function segment(from, to) {
  let done = 0, missed = 0, collapsed = 0;
  const lat = [];
  for (let slot = from; slot <= to; slot += 60000) {
    for (let c = 0; c < N; c++) {
      const rs = byKey.get(`${c}:${slot}`);
      if (rs) { done++; lat.push(rs[0].s - (slot + offsetMs(c))); continue; }
      missed++;
      if ((byConn.get(c) ?? []).some((r) => r.slot > slot)) collapsed++;
    }
  }
  lat.sort((a, b) => a - b);
  const pct = (p) => lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : null;
  return { slots: (to - from) / 60000 + 1, slots_due: N * ((to - from) / 60000 + 1), done, missed, missed_but_collapsed_into_later_run: collapsed, lateness_p50_ms: pct(0.5), lateness_p99_ms: pct(0.99), lateness_max_ms: lat.at(-1) ?? null, lat };
}
const all = segment(firstSlot, lastSlot);
const { done, missed, lat } = all; const collapsed = all.missed_but_collapsed_into_later_run;
const pct = (p) => lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : null;
const segs = {};
if (killed) { const ks = minuteFloor(killed.at); segs.steady_before_kill = segment(firstSlot, ks - 120000); segs.kill_minute_to_plus5 = segment(ks - 60000, ks + 240000); }
if (outage) { const os_ = minuteFloor(outage.at); segs.outage_minute_to_plus4 = segment(os_, os_ + 240000); }
if (outage || killed) { const last = Math.max(killed ? killed.at : 0, outage ? outage.end ?? outage.at : 0); segs.after_recovery = segment(minuteFloor(last) + 300000, lastSlot); }
for (const k of Object.keys(segs)) delete segs[k].lat;
let failover = null;
if (killed) {
  const per = killed.inflight.map(({ c, slot }) => {
    const next = runs.find((r) => r.c === c && r.pid !== killed.pid && r.s > killed.at);
    const same = runs.find((r) => r.c === c && r.slot === slot && r.pid !== killed.pid && r.s > killed.at);
    return { c, slot, next_ms: next ? next.s - killed.at : null, same_slot_ms: same ? same.s - killed.at : null };
  });
  const nexts = per.map((x) => x.next_ms).filter((x) => x != null);
  const sames = per.map((x) => x.same_slot_ms).filter((x) => x != null);
  failover = { inflight: per.length, next_run_max_ms: nexts.length ? Math.max(...nexts) : null, same_slot_rerun_max_ms: sames.length ? Math.max(...sames) : null,
    same_slot_reruns: sames.length, never: per.length - nexts.length, per };
}
const cpuMs = procs.reduce((a, p) => a + p.cpuTicks * 10, 0);
const maxConn = (app) => Math.max(0, ...samples.map((s) => s.conns?.[app] ?? 0));
const result = {
  lib: LIB, tag: TAG, connectors: N, replicas: R, minutes: MINUTES, window_slots: (lastSlot - firstSlot) / 60000 + 1,
  slots_due: slotsDue, slot_runs_done: done, missed_slots: missed, missed_but_collapsed_into_later_run: collapsed,
  runs_total: runs.length, duplicate_slot_runs: dupAfterFinish, reruns_of_killed_slot: rerunAfterKill, overlapping_runs: overlaps, runs_with_unknown_end: unknownEnd,
  lateness_p50_ms: pct(0.5), lateness_p99_ms: pct(0.99), lateness_max_ms: lat.at(-1) ?? null,
  cpu_ms_per_job: +(cpuMs / Math.max(1, runs.length)).toFixed(2), cpu_ms_total: cpuMs,
  rss_mb_max_per_process: Math.round(Math.max(...procs.map((p) => p.rssMaxKb)) / 1024),
  db_connections_max: { queue_lib: maxConn(LIB === 'pgboss' ? 'pgboss' : 'gworker'), recorder: maxConn('bench'), total: Math.max(0, ...samples.map((s) => Object.values(s.conns ?? {}).reduce((a, b) => a + b, 0))) },
  queue_due_max: Math.max(0, ...samples.map((s) => s.due ?? 0)), queue_due_p50: samples.map((s) => s.due ?? 0).sort((a, b) => a - b)[Math.floor(samples.length / 2)],
  load1_avg: +(samples.reduce((a, s) => a + s.load1, 0) / samples.length).toFixed(2), load1_max: +Math.max(...samples.map((s) => s.load1)).toFixed(2),
  graceful_stop_ms: stopMs, exits: procs.map((p) => p.exit),
  enqueue_ms: events.filter((e) => e.t === 'enqueue').map((e) => e.ms),
  guard_skips: events.filter((e) => e.t === 'skipped').reduce((a, e) => a + e.n, 0),
  worker_fatal: events.filter((e) => e.t === 'fatal').length, runner_restarts: events.filter((e) => e.t === 'restart').length,
  env: Object.fromEntries(Object.entries(process.env).filter(([k]) => /^(N|HUNG_|GW_|PGBOSS_|EXPIRE_|MAINT_|POLL_|SYNC_)/.test(k))),
  reaped: events.filter((e) => e.t === 'reaped').map((e) => ({ ids: e.ids.length, after_kill_ms: killed ? e.at - killed.at : null })),
  segments: segs, outage: outage && { at_s: Math.round((outage.at - t0) / 1000), for_ms: OUTAGE_FOR, runs_during: runs.filter((r) => r.s > outage.at && r.s < (outage.end ?? outage.at)).length, first_run_after_ms: (runs.find((r) => r.s > (outage.end ?? outage.at))?.s ?? NaN) - (outage.end ?? outage.at) },
  survivors_errors_note: 'see stderr',
  failover, killed: killed && { pid: killed.pid, at_s: Math.round((killed.at - t0) / 1000) },
};
fs.mkdirSync('results', { recursive: true });
fs.writeFileSync(`results/${TAG}.json`, JSON.stringify({ result, samples }, null, 1));
await db.end();
await admin.end();
if (process.env.KEEP_DB !== '1') execFileSync('dropdb', ['-h', '127.0.0.1', '-U', 'postgres', '--if-exists', '--force', DB]);
console.log(JSON.stringify(result));
process.exit(0);
