// npm run bench:fleet -- --connectors N --replicas R --minutes M [--kill-one-at S]
//
// The fleet benchmark (issue 17), black box: one fake Tines process serving N
// tenants (src/fake/tenant-mix.ts), a scratch PostgreSQL database with N
// registered connectors on a one-minute schedule, R replicas of the shipped
// CLI's `run`, and figures taken only from what the database (`sync_runs`,
// `tines_users`, `pg_stat_activity`) and the kernel (/proc) say happened.
// Progress on stderr; the last stdout line is one JSON object.
//
// Timeline, from the moment the replicas are started (t = 0):
//   [0, warm-up)                 start-up: each replica's sync at start, first loads; not measured
//   [warm-up, warm-up + M min)   the measured window: slots due in it, syncs finished in it, CPU spent in it
//   [.., + tail)                 a slot due late in the window may start up to `tail` seconds late
//   then SIGTERM to every replica, and the data check against the fake.
// With --kill-one-at S, the replica with the most syncs in flight at t = S is
// SIGKILLed, and a replacement started --replace-after seconds later (as an
// orchestrator restarting a dead container would).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { loadSettings } from '../src/config.js';
import { insertRegistered } from '../src/connectors/registry.js';
import { tenantKey } from '../src/fake/tenant-mix.js';
import { analyseRuns, type RunRow } from './fleet-analysis.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(root, 'dist', 'bin', 'cli.js');
const fakeMain = join(root, 'dist', 'src', 'fake', 'main.js');
const APP = 'bench-fleet'; // application_name of the harness's own connections, left out of db_connections_max
const SAMPLE_MS = 2_000;

const USAGE =
  'usage: npm run bench:fleet -- --connectors N --replicas R --minutes M [--kill-one-at S] [--replace-after S] ' +
  '[--warmup-seconds S] [--tail-seconds S] [--seed S] [--keep-db] [--keep-logs]';
function options() {
  try {
    return parseArgs({
      options: {
        connectors: { type: 'string' },
        replicas: { type: 'string' },
        minutes: { type: 'string' },
        'kill-one-at': { type: 'string' },
        'replace-after': { type: 'string' },
        'warmup-seconds': { type: 'string' },
        'tail-seconds': { type: 'string' },
        seed: { type: 'string' },
        'keep-db': { type: 'boolean' },
        'keep-logs': { type: 'boolean' },
      },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
}
const values = options();
function num(name: keyof typeof values, dflt: number | undefined, min = 0): number | undefined {
  const v = values[name];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isFinite(n) || n < min) {
    process.stderr.write(`--${name} must be a number >= ${min}\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
}
const N = Math.floor(num('connectors', 50, 1)!);
const R = Math.floor(num('replicas', 2, 1)!);
const MINUTES = Math.floor(num('minutes', 2, 1)!);
const KILL_AT_S = num('kill-one-at', undefined);
const REPLACE_AFTER_S = num('replace-after', 20)!;
const WARMUP_S = num('warmup-seconds', 60)!;
const TAIL_S = num('tail-seconds', 30)!;
const SEED = Math.floor(num('seed', 1)!);
const SCHEDULE = '* * * * *';
const SLOT_MS = 60_000;

const log = (msg: string) => process.stderr.write(`[bench:fleet ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function adminUrl(): string {
  return process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}
function dbUrl(name: string): string {
  const u = new URL(adminUrl());
  u.pathname = `/${name}`;
  return u.toString();
}
async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, application_name: APP });
  await c.connect();
  return c;
}

// ---- /proc ----

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** user + system CPU of a live process, in ms; undefined once it is gone. */
function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK; // fields 14 utime, 15 stime
  } catch {
    return undefined;
  }
}

/** VmRSS and VmHWM (peak) of a live process, in MB; undefined once it is gone. */
function memMb(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    const rss = kb('VmRSS');
    return Number.isFinite(rss) ? { rss: rss / 1024, hwm: kb('VmHWM') / 1024 } : undefined;
  } catch {
    return undefined;
  }
}

// ---- the fake ----

async function startFake() {
  const child = spawn(process.execPath, [fakeMain, '--tenants', String(N), '--seed', String(SEED), '--cache-mb', '8192'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const it = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async () => {
    const line = await it.next();
    if (line.done) throw new Error('the fake Tines exited');
    return JSON.parse(String(line.value)) as Record<string, unknown>;
  };
  const hello = (await next()) as { url: string; tenants: number[] };
  return {
    child,
    url: hello.url,
    sizes: hello.tenants,
    async send(cmd: string) {
      child.stdin!.write(`${cmd}\n`);
      return next();
    },
    stop() {
      if (child.exitCode === null) child.stdin!.end('quit\n');
    },
  };
}

// ---- replicas ----

interface Replica {
  label: string;
  child: ChildProcess;
  pid: number;
  startedAt: number;
  /** When it exited (or was SIGKILLed); a run of its pid is open at most until then. */
  diedAt?: number;
  exited: Promise<void>;
  killed: boolean;
  maxRssMb: number;
  hwmMb: number;
  lastCpuMs: number;
  cpuAtWindowStart?: number;
  cpuAtWindowEnd?: number;
  logFile: string;
}

function spawnCli(label: string, env: NodeJS.ProcessEnv, logDir: string, command = 'run'): Replica {
  const logFile = join(logDir, `${label}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [cli, command], { env, cwd: logDir, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const r: Replica = {
    label,
    child,
    pid: child.pid!,
    startedAt: Date.now(),
    exited: new Promise<void>((resolve) => child.once('exit', () => resolve())),
    killed: false,
    maxRssMb: 0,
    hwmMb: 0,
    lastCpuMs: 0,
    logFile,
  };
  void r.exited.then(() => {
    r.diedAt ??= Date.now();
  });
  return r;
}

/** Reads what /proc says of a replica now (nothing once it is gone). */
function sample(r: Replica): number | undefined {
  const cpu = cpuMs(r.pid);
  const mem = memMb(r.pid);
  if (cpu === undefined || mem === undefined) return undefined;
  r.lastCpuMs = cpu;
  r.maxRssMb = Math.max(r.maxRssMb, mem.rss);
  r.hwmMb = Math.max(r.hwmMb, mem.hwm);
  return mem.rss;
}

async function stopGracefully(r: Replica, graceMs: number): Promise<void> {
  if (r.diedAt !== undefined) return;
  sample(r);
  r.child.kill('SIGTERM');
  const t = setTimeout(() => {
    log(`${r.label} (pid ${r.pid}) still running ${graceMs} ms after SIGTERM: SIGKILL`);
    r.child.kill('SIGKILL');
  }, graceMs);
  await r.exited;
  clearTimeout(t);
}

/** Warnings and errors a replica logged (pino JSON lines, level >= 40), and the first few messages. */
function logSummary(r: Replica): string {
  let text: string;
  try {
    text = readFileSync(r.logFile, 'utf8');
  } catch {
    return 'no log';
  }
  const counts = new Map<string, number>();
  let lines = 0;
  for (const line of text.split('\n')) {
    if (!line) continue;
    lines++;
    let e: { level?: number; msg?: string } | undefined;
    try {
      e = JSON.parse(line) as typeof e;
    } catch {
      e = { level: 50, msg: line.slice(0, 120) };
    }
    if ((e?.level ?? 0) < 40) continue;
    const key = `${e!.level === 40 ? 'warn' : 'error'}: ${String(e!.msg).slice(0, 100)}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 5);
  return `${lines} log lines${top.length ? `; ${top.map(([k, n]) => `${n}x ${k}`).join('; ')}` : ''}`;
}

// ---- the peer: one process per tenant, as today ----

/** One idle `run` of one small tenant (TINES_TENANT_DOMAIN + TINES_API_KEY), its own scratch database; its RSS after its first sync. */
async function singleProcessRss(admin: pg.Client, fakeUrl: string, key: string, dbName: string, logDir: string, idleMs: number) {
  await admin.query(`CREATE DATABASE ${dbName}`);
  const env = {
    PATH: process.env.PATH ?? '',
    DATABASE_URL: dbUrl(dbName),
    TINES_TENANT_DOMAIN: fakeUrl,
    TINES_API_KEY: key,
    HEALTH_PORT: '0',
    LOG_LEVEL: 'warn',
    LOG_FORMAT: 'json',
  };
  const r = spawnCli('single', env, logDir);
  let db: pg.Client | undefined;
  try {
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (r.diedAt !== undefined) throw new Error(`the single-tenant run exited early: ${logSummary(r)}`);
      if (Date.now() > deadline) throw new Error('the single-tenant run did not finish its first sync in 120 s');
      try {
        db ??= await connect(dbUrl(dbName));
        const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM sync_runs WHERE status = 'succeeded'`);
        if (rows[0]!.n > 0) break;
      } catch {
        // not migrated yet
      }
      await sleep(500);
    }
    await sleep(idleMs);
    const mem = memMb(r.pid);
    if (!mem) throw new Error('the single-tenant run is gone');
    return mem;
  } finally {
    await db?.end().catch(() => undefined);
    await stopGracefully(r, 30_000);
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  }
}

// ---- the run ----

async function main() {
  const dbName = `bench_fleet_${process.pid}`;
  const logDir = mkdtempSync(join(tmpdir(), 'bench-fleet-'));
  const masterKey = randomBytes(32).toString('base64');
  const graceMs = Number(process.env.SHUTDOWN_TIMEOUT_MS ?? 20_000) + 15_000;
  log(
    `${N} connectors, ${R} replicas, window ${MINUTES} min after a ${WARMUP_S} s warm-up, ${TAIL_S} s tail` +
      `${KILL_AT_S !== undefined ? `, SIGKILL one replica at ${KILL_AT_S} s and start a replacement ${REPLACE_AFTER_S} s later` : ''}; logs in ${logDir}`,
  );

  const replicas: Replica[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  const admin = await connect(adminUrl());
  let fake: Awaited<ReturnType<typeof startFake>> | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    log(`${sig}: stopping children`);
    for (const r of replicas) if (r.diedAt === undefined) r.child.kill('SIGKILL');
    fake?.child.kill('SIGKILL');
    void admin
      .query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)
      .then(() => admin.query(`DROP DATABASE IF EXISTS ${dbName}_single WITH (FORCE)`))
      .catch(() => undefined)
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const t0 = performance.now();
    fake = await startFake();
    const sizes = fake.sizes;
    const totalUsers = sizes.reduce((a, b) => a + b, 0);
    const hist = {
      small: sizes.filter((s) => s <= 200).length,
      large: sizes.filter((s) => s > 200 && s < 20_000).length,
      huge: sizes.filter((s) => s >= 20_000).length,
    };
    log(
      `fake Tines at ${fake.url}: ${N} tenants, ${totalUsers} users (${hist.small} of 20-200, ${hist.large} of 1k-5k, ${hist.huge} of 20k), ready in ${Math.round(performance.now() - t0)} ms`,
    );

    // The peer: one process per tenant, measured idle after its first sync.
    const smallest = sizes.findIndex((s) => s <= 200);
    const peerIndex = smallest >= 0 ? smallest : 0;
    const single = await singleProcessRss(admin, fake.url, tenantKey(peerIndex), `${dbName}_single`, logDir, 10_000);
    log(`single-process peer (tenant ${peerIndex}, ${sizes[peerIndex]} users): idle RSS ${single.rss.toFixed(1)} MB, peak ${single.hwm.toFixed(1)} MB`);

    // The scratch database, migrated by the shipped CLI, and N registered connectors.
    await admin.query(`CREATE DATABASE ${dbName}`);
    cleanups.push(async () => {
      if (values['keep-db']) log(`kept database ${dbName}`);
      else await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    });
    const url = dbUrl(dbName);
    const baseEnv: NodeJS.ProcessEnv = { ...process.env };
    // Only registered connectors: no connector of the environment.
    for (const k of [
      'TINES_TENANT_DOMAIN',
      'TINES_API_KEY',
      'TINES_API_KEY_FILE',
      'CONNECTOR_SECRETS_KEY_FILE',
      'CONNECTOR_SECRETS_KEY_PREVIOUS',
      'ADMIN_TOKEN',
      'ADMIN_TOKEN_FILE',
    ])
      delete baseEnv[k];
    Object.assign(baseEnv, {
      DATABASE_URL: url,
      CONNECTOR_SECRETS_KEY: masterKey,
      HEALTH_PORT: '0',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      LOG_FORMAT: 'json',
    });
    execFileSync(process.execPath, [cli, 'migrate'], { env: baseEnv, cwd: logDir, stdio: ['ignore', 'ignore', 'inherit'] });
    const db = await connect(url);
    cleanups.unshift(() => db.end().catch(() => undefined));
    const config = loadSettings({ DATABASE_URL: url, CONNECTOR_SECRETS_KEY: masterKey });
    const tenantDomain = new URL(fake.url).host;
    const tr = performance.now();
    await db.query('BEGIN');
    for (let i = 0; i < N; i++) {
      await insertRegistered(db as unknown as Parameters<typeof insertRegistered>[0], config, {
        name: `fleet-${i}`,
        tenantDomain,
        schedule: SCHEDULE,
        apiKey: tenantKey(i),
      });
    }
    await db.query('COMMIT');
    log(`registered ${N} connectors (insertRegistered, one transaction) in ${Math.round(performance.now() - tr)} ms, schedule '${SCHEDULE}'`);

    // The fleet.
    let sampling = true;
    let dbConnectionsMax = 0;
    let fleetRssMax = 0;
    let fakeCpuStart = 0;
    let fakeCpuEnd = 0;
    const start = Date.now();
    for (let i = 0; i < R; i++) replicas.push(spawnCli(`replica-${i}`, baseEnv, logDir));
    log(`started ${R} replicas: pids ${replicas.map((r) => r.pid).join(', ')}`);
    const windowStart = start + WARMUP_S * 1000;
    const windowEnd = windowStart + MINUTES * SLOT_MS;
    const stopAt = windowEnd + TAIL_S * 1000;

    const sampler = (async () => {
      while (sampling) {
        let fleetRss = 0;
        for (const r of replicas) if (r.diedAt === undefined) fleetRss += sample(r) ?? 0;
        fleetRssMax = Math.max(fleetRssMax, fleetRss);
        try {
          const { rows } = await admin.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name IS DISTINCT FROM $2',
            [dbName, APP],
          );
          dbConnectionsMax = Math.max(dbConnectionsMax, rows[0]!.n);
        } catch (err) {
          log(`pg_stat_activity sample failed: ${(err as Error).message}`);
        }
        await sleep(SAMPLE_MS);
      }
    })();

    const progress = setInterval(() => {
      void db
        .query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM sync_runs GROUP BY status ORDER BY status')
        .then(({ rows }) => {
          const t = Math.round((Date.now() - start) / 1000);
          const mem = replicas
            .filter((r) => r.diedAt === undefined)
            .map((r) => `${r.label} ${Math.round(memMb(r.pid)?.rss ?? 0)} MB`)
            .join(', ');
          log(`t=${t}s runs: ${rows.map((r) => `${r.status} ${r.n}`).join(', ') || 'none'}; RSS ${mem}`);
        })
        .catch(() => undefined);
    }, 30_000);

    const at = async (t: number) => {
      const ms = t - Date.now();
      if (ms > 0) await sleep(ms);
    };
    const timeline: { at: number; what: () => Promise<void> | void }[] = [
      {
        at: windowStart,
        what: () => {
          for (const r of replicas) if (r.diedAt === undefined) r.cpuAtWindowStart = (sample(r), r.lastCpuMs);
          fakeCpuStart = cpuMs(fake!.child.pid!) ?? 0;
          log('measured window starts');
        },
      },
      {
        at: windowEnd,
        what: () => {
          for (const r of replicas) if (r.diedAt === undefined) r.cpuAtWindowEnd = (sample(r), r.lastCpuMs);
          fakeCpuEnd = cpuMs(fake!.child.pid!) ?? 0;
          log('measured window ends');
        },
      },
    ];
    let killed: Replica | undefined;
    let replacementAt: number | undefined;
    let replaceTimer: NodeJS.Timeout | undefined;
    if (KILL_AT_S !== undefined) {
      timeline.push({
        at: start + KILL_AT_S * 1000,
        what: async () => {
          // The replica with the most syncs in flight; with none in flight anywhere, wait up to 30 s for one.
          const waitUntil = Date.now() + 30_000;
          let running = new Map<number, number>();
          for (;;) {
            const { rows } = await db.query<{ pid: number; n: number }>(`SELECT pid, count(*)::int AS n FROM sync_runs WHERE status = 'running' GROUP BY pid`);
            running = new Map(rows.map((r) => [r.pid, r.n]));
            if (replicas.some((r) => r.diedAt === undefined && running.has(r.pid)) || Date.now() > waitUntil) break;
            await sleep(100);
          }
          const live = replicas.filter((r) => r.diedAt === undefined);
          const victim = live.reduce((a, b) => ((running.get(b.pid) ?? 0) > (running.get(a.pid) ?? 0) ? b : a));
          sample(victim); // its CPU up to the kill
          victim.killed = true;
          victim.diedAt = Date.now();
          victim.child.kill('SIGKILL');
          killed = victim;
          log(`SIGKILL ${victim.label} (pid ${victim.pid}) with ${running.get(victim.pid) ?? 0} runs in flight`);
          // As an orchestrator would: a new replica in the dead one's place, a little later.
          replaceTimer = setTimeout(() => {
            const r = spawnCli(`replica-${replicas.length}`, baseEnv, logDir);
            if (r.startedAt >= windowStart && r.startedAt < windowEnd) r.cpuAtWindowStart = 0;
            replicas.push(r);
            replacementAt = r.startedAt;
            log(`started replacement ${r.label} (pid ${r.pid})`);
          }, REPLACE_AFTER_S * 1000);
        },
      });
    }
    timeline.sort((a, b) => a.at - b.at);
    for (const step of timeline) {
      await at(step.at);
      await step.what();
    }
    await at(stopAt);
    clearInterval(progress);
    clearTimeout(replaceTimer);
    log('stopping the replicas (SIGTERM)');
    await Promise.all(replicas.map((r) => stopGracefully(r, graceMs)));
    sampling = false;
    await sampler;
    for (const r of replicas) log(`${r.label} (pid ${r.pid}${r.killed ? ', SIGKILLed' : ''}): peak RSS ${r.hwmMb.toFixed(1)} MB; ${logSummary(r)}`);

    // What happened, from sync_runs.
    const { rows } = await db.query<RunRow>(
      `SELECT connector_id::int, trigger, status, pid,
              (extract(epoch FROM started_at) * 1000)::float8 AS started,
              (extract(epoch FROM finished_at) * 1000)::float8 AS finished,
              (extract(epoch FROM scheduled_for) * 1000)::float8 AS scheduled
         FROM sync_runs ORDER BY connector_id, started_at`,
    );
    const deaths = new Map(replicas.map((r) => [r.pid, r.diedAt!]));
    const a = analyseRuns(rows, {
      connectors: N,
      windowStart,
      windowEnd,
      slotMs: SLOT_MS,
      diedAt: (pid) => deaths.get(pid),
      kill: killed ? { pid: killed.pid, at: killed.diedAt! } : undefined,
    });
    log(
      `runs: ${rows.length} in all (${a.byStatus}); in the window ${a.slotsCovered} of ${a.slotsDue} due slots had a run, ${a.windowFailed} window runs did not succeed; ` +
        `${a.unexpectedScheduledFor} runs' scheduled_for off their connector's slot grid`,
    );

    // CPU over the window, per replica: from the window's start (or its birth) to the window's end (or its death).
    let cpuWindowMs = 0;
    for (const r of replicas) {
      if (r.diedAt !== undefined && r.diedAt < windowStart) continue;
      if (r.startedAt >= windowEnd) continue;
      const from = r.cpuAtWindowStart ?? 0;
      const to = r.cpuAtWindowEnd ?? r.lastCpuMs;
      cpuWindowMs += to - from;
    }
    log(`CPU in the window: replicas ${Math.round(cpuWindowMs)} ms, the fake ${Math.round(fakeCpuEnd - fakeCpuStart)} ms`);

    // The final data of every tenant against the fake's.
    const want = (await fake.send('digest')) as { tenants: { key: string; users: number; md5: string }[] };
    const { rows: have } = await db.query<{ name: string; users: number; md5: string }>(
      `SELECT c.name, count(u.tines_user_id)::int AS users,
              md5(coalesce(string_agg(u.tines_user_id::text || ':' || u.email, E'\\n' ORDER BY u.tines_user_id), '')) AS md5
         FROM connectors c LEFT JOIN tines_users u ON u.connector_id = c.id AND u.removed_at IS NULL
        WHERE c.source = 'registry' GROUP BY c.name`,
    );
    const haveBy = new Map(have.map((h) => [h.name, h]));
    const mismatched = want.tenants.filter((t, i) => {
      const h = haveBy.get(`fleet-${i}`);
      return !h || h.users !== t.users || h.md5 !== t.md5;
    });
    if (mismatched.length)
      log(
        `data differs from the fake for ${mismatched.length} tenants, e.g. ${mismatched
          .slice(0, 5)
          .map((t) => `${t.key} (fake ${t.users} users, db ${haveBy.get(`fleet-${t.key.split('-').pop()}`)?.users ?? 0})`)
          .join(', ')}`,
      );

    const rssMax = Math.max(...replicas.map((r) => Math.max(r.hwmMb, r.maxRssMb)));
    const result = {
      connectors: N,
      replicas: R,
      minutes: MINUTES,
      warmup_s: WARMUP_S,
      tail_s: TAIL_S,
      users: totalUsers,
      slots_due: a.slotsDue,
      syncs_done: a.syncsDone,
      missed_slots: a.missedSlots,
      missed_slots_synced_anyway: a.missedButSynced,
      duplicate_slot_syncs: a.duplicateSlotSyncs,
      overlapping_syncs: a.overlappingSyncs,
      lateness_p50_ms: a.latenessP50,
      lateness_p99_ms: a.latenessP99,
      cpu_ms_per_sync: a.syncsDone > 0 ? Math.round(cpuWindowMs / a.syncsDone) : null,
      rss_mb_max: Math.round(rssMax),
      fleet_rss_mb_max: Math.round(fleetRssMax),
      db_connections_max: dbConnectionsMax,
      all_synced_s: a.allSyncedAt === null ? null : Math.round((a.allSyncedAt - start) / 1000),
      single_process_rss_mb: Math.round(single.rss),
      ...(KILL_AT_S !== undefined
        ? {
            killed_at_s: killed ? Math.round((killed.diedAt! - start) / 100) / 10 : null,
            replacement_started_s: replacementAt !== undefined ? Math.round((replacementAt - start) / 1000) : null,
            killed_in_flight: a.failover.interrupted,
            failover_ms: a.failover.maxMs,
            failover_unrecovered: a.failover.unrecovered,
          }
        : {}),
      window_runs_not_succeeded: a.windowFailed,
      unexpected_scheduled_for: a.unexpectedScheduledFor,
      data_matches_fake: mismatched.length === 0,
      mismatched_tenants: mismatched.length,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    for (const r of replicas) if (r.diedAt === undefined) r.child.kill('SIGKILL');
    await Promise.all(replicas.map((r) => r.exited));
    fake?.stop();
    for (const c of cleanups) await c().catch((err: unknown) => log(`cleanup: ${(err as Error).message}`));
    await admin.end().catch(() => undefined);
    if (values['keep-logs']) log(`kept logs in ${logDir}`);
    else rmSync(logDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`[bench:fleet] failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
