// `demo [--syncs N] [--data-dir DIR] [--schedule CRON]`: a simulated tenant on loopback, the real
// daemon on the embedded database, and a story: joiners, leavers, renames, a
// role change, a deactivation, a revoked key, a rotated key, a recovery.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { ConfigError, loadConfig } from '../config.js';
import { addConnector, newConnectorSchema, parseOrThrow } from '../connectors/connect.js';
import { registeredTarget } from '../connectors/registry.js';
import { Daemon } from '../daemon/daemon.js';
import { SyncSlots } from '../daemon/sync-slots.js';
import { connectorReports } from '../db/insights.js';
import { migrate } from '../db/migrate.js';
import { openDatabase } from '../db/open.js';
import { embeddedClusterPath } from '../db/database.js';
import { CommandRefusal } from '../errors.js';
import { FakeTines, generateUsers, type FakeUser } from '../fake/tines-server.js';
import { fakeDirectory } from '../fake/directory.js';
import { ownerReports } from '../db/owners.js';
import { importPeople } from '../people/import.js';
import { describeImport } from './people.js';
import { formatOwners } from './report-owners.js';
import { createLogger } from '../log.js';
import type { ParsedArgs } from '../command-line.js';
import type { SyncOutcome } from '../sync/run-sync.js';
import { visible } from './format.js';
import { formatReport } from './report.js';

const DAY = 86_400_000;

/** A few hundred plausible users with the shapes an operator cares about. */
export function demoTenant(now = Date.now()): FakeUser[] {
  const users = generateUsers(240, { seed: 2026, emailDomain: 'example.com', now });
  users.forEach((u, i) => {
    if (i % 17 === 0) u.last_seen = new Date(now - (120 + i) * DAY).toISOString(); // long idle
    if (i % 29 === 0) u.last_seen = null; // never logged in
  });
  const outsiders: Array<[string, string, string]> = [
    ['Jordan', 'Reyes', 'gmail.com'],
    ['Priya', 'Shah', 'contractor.io'],
    ['Lukas', 'Brandt', 'partner-agency.com'],
  ];
  outsiders.forEach(([first, last, domain], i) => {
    const u = users[10 + i * 7]!;
    Object.assign(u, { first_name: first, last_name: last, email: `${first}.${last}@${domain}`.toLowerCase() });
  });
  return users;
}

interface Step {
  say: string;
  apply(fake: FakeTines, keyFile: string): void;
}

/** What happens to the tenant after each sync. */
function story(): Step[] {
  let nextId = 10_000;
  const newcomers = (n: number) => generateUsers(n, { startId: (nextId += 10), seed: nextId, emailDomain: 'example.com' });
  const someone = (fake: FakeTines, k: number) => [...fake.users.keys()].sort((a, b) => a - b)[k]!;
  return [
    {
      say: 'three people join, one leaves, one is renamed',
      apply(fake) {
        newcomers(3).forEach((u) => fake.addUser({ ...u, last_seen: new Date().toISOString() }));
        fake.removeUser(someone(fake, 5));
        fake.updateUser(someone(fake, 8), { last_name: 'Okafor-Lindqvist' });
      },
    },
    {
      say: 'a team role changes and an account is deactivated',
      apply(fake) {
        const u = fake.users.get(someone(fake, 12))!;
        const teams = u.team_memberships.length
          ? u.team_memberships.map((m, i) => (i === 0 ? { ...m, role: m.role === 'TEAM_ADMIN' ? 'VIEWER' : 'TEAM_ADMIN' } : m))
          : [{ team_id: 1000, team_name: 'Security Operations', role: 'TEAM_ADMIN' }];
        fake.updateUser(u.id, { team_memberships: teams });
        fake.updateUser(someone(fake, 20), { is_active: false });
      },
    },
    {
      say: 'the key is revoked in Tines (its owner left the company)',
      apply(fake) {
        fake.validKeys.clear();
      },
    },
    {
      say: 'nothing changes: while the key is refused, no sync calls Tines',
      apply() {},
    },
    {
      say: 'the operator creates a new Tenant-owner key and writes it to TINES_API_KEY_FILE',
      apply(fake, keyFile) {
        const key = `demo-key-rotated-${Date.now()}`;
        fake.validKeys.add(key);
        writeFileSync(keyFile, `${key}\n`);
      },
    },
    {
      say: 'two more joiners and one leaver',
      apply(fake) {
        newcomers(2).forEach((u) => fake.addUser(u));
        fake.removeUser(someone(fake, 30));
      },
    },
  ];
}

function describeSync(n: number, o: SyncOutcome): string {
  const c = o.counts;
  if (o.result === 'reconnect_required') return `sync ${n}: skipped, reconnect required: Tines was not called`;
  if (o.result === 'busy') return `sync ${n}: skipped, another sync is running`;
  if (o.errorKind === 'auth') return `sync ${n}: Tines refused the key → connector is reconnect_required`;
  if (o.result === 'failed' || o.result === 'aborted') return `sync ${n}: ${o.result} (${o.errorKind}): ${o.message}`;
  const parts = [
    c.usersAdded && `+${c.usersAdded} users added`,
    c.usersRemoved && `-${c.usersRemoved} removed`,
    c.usersUpdated && `${c.usersUpdated} updated`,
    c.usersRestored && `${c.usersRestored} restored`,
    c.membershipsAdded && `+${c.membershipsAdded} memberships`,
    c.membershipsUpdated && `${c.membershipsUpdated} membership roles changed`,
    c.membershipsRemoved && `-${c.membershipsRemoved} memberships`,
  ].filter(Boolean);
  return `sync ${n}: ${o.result} in ${o.durationMs} ms, ${c.usersSeen} users: ${parts.length ? parts.join(', ') : 'no change'}`;
}

const DEMO_CONNECTOR = 'demo';
/** The demo's second tenant, registered as `connectors add` does it. */
const DEMO_STAGING = 'staging';

/**
 * How this very program is run from where the user stands: `tines-connector`
 * when that name on PATH is this program, else `node <path of this script>`
 * (a checkout, where the bin is not on PATH).
 */
function selfCommand(): string {
  const script = process.argv[1];
  if (!script) return 'tines-connector';
  const me = realpathSync(script);
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    try {
      if (dir && realpathSync(join(dir, 'tines-connector')) === me) return 'tines-connector';
    } catch {
      // not there
    }
  }
  const rel = relative(process.cwd(), me);
  return `node ${rel.startsWith('..') ? me : rel}`;
}

/**
 * Why the demo must not use `dataDir` (undefined: it may): a file, not a
 * directory; or a database with a connector other than the demo's, or with a
 * directory of people (the demo loads its own), which the demo would change.
 */
async function dataDirProblem(dataDir: string): Promise<string | undefined> {
  if (!existsSync(dataDir)) return undefined;
  if (!statSync(dataDir).isDirectory()) return `--data-dir ${dataDir} is a file, not a directory`;
  if (!existsSync(embeddedClusterPath(dataDir))) return undefined;
  const db = await openDatabase({ database: { dataDir } } as Parameters<typeof openDatabase>[0], createLogger('silent'));
  try {
    const installed = (await db.query<{ t: string | null }>(`SELECT to_regclass('connectors')::text AS t`)).rows[0]?.t;
    if (!installed) return undefined;
    const others = (
      await db.query<{ name: string }>('SELECT name FROM connectors WHERE name <> ALL($1::text[]) ORDER BY name', [[DEMO_CONNECTOR, DEMO_STAGING]])
    ).rows.map((r) => r.name);
    const demoHere = (await db.query('SELECT 1 FROM connectors WHERE name = $1', [DEMO_CONNECTOR])).rows.length > 0;
    const people =
      !demoHere && (await db.query<{ t: string | null }>(`SELECT to_regclass('people')::text AS t`)).rows[0]?.t
        ? (await db.query('SELECT 1 FROM people LIMIT 1')).rows.length > 0
        : false;
    if (others.length > 0 || people) {
      const what = others.length > 0 ? `connector ${others.map((n) => `"${n}"`).join(', ')}` : 'a directory of people';
      return `--data-dir ${dataDir} holds a real database (${what}): the demo would change its data; give the demo a directory of its own (or none: a temporary one)`;
    }
    return undefined;
  } finally {
    await db.close();
  }
}

/** The demo's configuration for a tenant at `url`; throws ConfigError naming every bad option. */
function demoConfig(url: string, keyFile: string, dataDir: string, schedule: string | undefined) {
  return loadConfig({
    // Its own connector: a demo never touches another connector's rows.
    CONNECTOR_NAME: DEMO_CONNECTOR,
    TINES_TENANT_DOMAIN: url,
    TINES_API_KEY_FILE: keyFile,
    DATA_DIR: dataDir,
    SYNC_SCHEDULE: schedule ?? '*/3 * * * * *',
    TINES_PAGE_SIZE: '100',
    TINES_MAX_RETRIES: '1',
    HEALTH_PORT: '0',
    ORG_EMAIL_DOMAINS: 'example.com',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    // The master key a registered connector's key is sealed under (the second tenant).
    CONNECTOR_SECRETS_KEY: randomBytes(32).toString('base64'),
  });
}

export async function demoCommand(args: ParsedArgs, out: (s: string) => void = (s) => process.stdout.write(`${s}\n`)): Promise<number> {
  const flag = (name: string) => (typeof args.flags[name] === 'string' ? (args.flags[name] as string) : undefined);
  const syncsFlag = flag('syncs');
  const maxSyncs = syncsFlag === undefined ? Infinity : Number(syncsFlag);
  const keyFile = join(mkdtempSync(join(tmpdir(), 'tines-connector-demo-key-')), 'api-key');
  const firstKey = 'demo-key-original';
  writeFileSync(keyFile, `${firstKey}\n`);
  // Options are checked before anything starts, so a bad one leaves nothing running or behind.
  const problems: string[] = [];
  if ((!Number.isInteger(maxSyncs) && maxSyncs !== Infinity) || maxSyncs < 1) problems.push(`--syncs must be a positive whole number, not "${syncsFlag}"`);
  try {
    demoConfig('http://127.0.0.1:1', keyFile, flag('data-dir') ?? tmpdir(), flag('schedule'));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems.map((p) => p.replace(/^SYNC_SCHEDULE /, '--schedule ')));
  }
  const given = flag('data-dir');
  try {
    const problem = given === undefined ? undefined : await dataDirProblem(given);
    if (problem) problems.push(problem);
  } catch (err) {
    rmSync(dirname(keyFile), { recursive: true, force: true });
    throw err;
  }
  if (problems.length > 0) {
    rmSync(dirname(keyFile), { recursive: true, force: true });
    throw new CommandRefusal(problems.join('; '));
  }
  const dataDir = flag('data-dir') ?? mkdtempSync(join(tmpdir(), 'tines-connector-demo-'));
  const fake = await FakeTines.start({ users: demoTenant(), apiKey: firstKey });
  try {
    return await demoRun(flag('schedule'), out, fake, keyFile, dataDir, maxSyncs);
  } finally {
    await fake.close();
    rmSync(dirname(keyFile), { recursive: true, force: true });
  }
}

async function demoRun(
  schedule: string | undefined,
  out: (s: string) => void,
  fake: FakeTines,
  keyFile: string,
  dataDir: string,
  maxSyncs: number,
): Promise<number> {
  const config = demoConfig(fake.url, keyFile, dataDir, schedule);
  const log = createLogger(config.logLevel, undefined);
  out(`demo: a simulated Tines tenant of ${fake.users.size} users at ${fake.url}`);
  out(`demo: the real daemon, embedded database in ${dataDir}, syncing on "${config.sync.schedule}" (Ctrl-C stops)`);
  const db = await openDatabase(config, log);
  await migrate(db, log);

  // Owners: the organisation's directory, in which a few people (a tenant admin among them) have left.
  const directory = fakeDirectory([...fake.users.values()], 'example.com');
  const imported = await importPeople(db, Readable.from([directory.csv]), { source: 'hr', allowMassDeparture: false, guard: config.sync, log });
  out(
    `demo: the HR directory, ${directory.departed.length} of its people departed and ${directory.suspended.length} suspended: \`people import directory.csv --source hr\``,
  );
  out(describeImport(imported).replace(/^/gm, '        '));

  // Many connectors: a second tenant ("staging"), registered as `connectors add` does it (one call to
  // Tines checks the key, then it is sealed and saved), synced by its own daemon beside the first.
  // The two share one slot, so the story's output comes one sync at a time (`run` uses SYNC_CONCURRENCY).
  const slots = new SyncSlots(1);
  const stagingKey = 'demo-key-staging';
  fake.addTenant(stagingKey, generateUsers(12, { seed: 7, startId: 50_000, emailDomain: 'example.com' }));
  const added = await addConnector({ config, db, log }, parseOrThrow(newConnectorSchema, { name: DEMO_STAGING, tenant_domain: fake.url, api_key: stagingKey }));
  out(
    `demo: a second tenant: \`connectors add --name staging --domain ${fake.url} --key-stdin\`: Tines accepted the key (${added.count} users), saved sealed as ${added.connector.api_key_fingerprint}`,
  );
  let stagingSyncs = 0;
  const stagingDaemon = new Daemon({
    config,
    db,
    log,
    slots,
    target: registeredTarget(db, config, added.connector),
    onSyncFinished: (o) => {
      if (stagingSyncs++ === 0) out(visible(`staging: sync ${o.result}, ${o.counts.usersSeen} users (its own key, schedule, state and rate limiter)`));
    },
  });

  const steps = story();
  let n = 0;
  let refused = false;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const daemon = new Daemon({
    config,
    db,
    log,
    slots,
    onSyncFinished: (o) => {
      n++;
      out(visible(describeSync(n, o)));
      if (o.errorKind === 'auth') {
        out('        an operator would now: create a new Tenant-owner key in Tines, put it in TINES_API_KEY_FILE');
        out('        (picked up at the next tick), or run `tines-connector reconnect` once the key is valid.');
      }
      if (o.errorKind === 'auth' || o.result === 'reconnect_required') refused = true;
      else if (refused && o.result === 'succeeded') {
        refused = false;
        out('        recovered: Tines accepted the new key and the connector is active again');
      }
      const step = steps.shift();
      if (n >= maxSyncs) return done();
      if (step) {
        out(`  → ${step.say}`);
        step.apply(fake, keyFile);
      }
    },
  });
  const onSignal = () => done();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await daemon.start();
    await stagingDaemon.start();
    await finished;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await Promise.all([daemon.stop(5_000), stagingDaemon.stop(5_000)]);
    const reports = await connectorReports(db).catch(() => []);
    const owners = await ownerReports(db).catch(() => new Map());
    out('');
    for (const r of reports) out(`${formatReport(r)}\n${formatOwners(owners.get(r.name))}`);
    const self = selfCommand();
    out(`\ndemo: data kept in ${dataDir}; try: DATA_DIR=${dataDir} ${self} query "SELECT * FROM recent_changes LIMIT 10"`);
    out(`      and: DATA_DIR=${dataDir} ${self} query "SELECT email, person_status, reasons FROM privileged_orphans"`);
    await db.close();
  }
  return 0;
}
