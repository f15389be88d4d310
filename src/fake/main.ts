// Runs the fake Tines in its own process, so a benchmark or demo measures the
// connector and not the fake sharing its event loop. Driven by line commands on stdin.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { tenantMix } from './tenant-mix.js';
import { FAKE_FIRST_NAMES, FAKE_ROLES, FakeTines, generateUsers, mulberry32, type FakeUser } from './tines-server.js';

const USAGE = 'usage: main.js --users N [--tenants N] [--port P] [--host H] [--key K] [--seed S] [--rpm-free] [--cache-mb M]';

function int(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`--${name} must be a non-negative integer\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
}

function args() {
  try {
    return parseArgs({
      options: {
        users: { type: 'string' },
        tenants: { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        key: { type: 'string' },
        seed: { type: 'string' },
        'rpm-free': { type: 'boolean' },
        'cache-mb': { type: 'string' },
      },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
}
const values = args();
const tenantCount = int('tenants', values.tenants, 0);
// With --tenants, the default tenant (the one --key selects) is empty unless --users says otherwise.
const userCount = int('users', values.users, tenantCount > 0 ? 0 : 1000);
const seed = int('seed', values.seed, 1);

const fake = await FakeTines.start({
  host: values.host ?? '127.0.0.1',
  port: int('port', values.port, 0),
  apiKey: values.key ?? 'test-key',
  users: generateUsers(userCount, { seed }),
  // Like Tines: 500 requests/minute per key, unless the run is about raw throughput.
  requestsPerMinute: values['rpm-free'] ? 0 : 500,
  pageCacheBytes: int('cache-mb', values['cache-mb'], 512) * 1024 * 1024,
});
// --tenants N: N more tenants told apart by key (tenant-mix.ts), sizes from the seed.
const tenants = tenantMix(tenantCount, seed).map((t) => ({
  key: t.key,
  users: fake.addTenant(t.key, generateUsers(t.users, { seed: seed * 100_003 + t.index, emailDomain: `tenant-${t.index}.example.com` })),
}));
const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
out({ url: fake.url, users: fake.users.size, ...(tenantCount > 0 ? { tenants: tenants.map((t) => t.users.size) } : {}) });

/** What a tenant holds, in one line: its user count and an md5 of `id:email` lines in id order. */
function digest(users: Map<number, FakeUser>): { users: number; md5: string } {
  const lines = [...users.values()].sort((a, b) => a.id - b.id).map((u) => `${u.id}:${u.email}`);
  return { users: users.size, md5: createHash('md5').update(lines.join('\n')).digest('hex') };
}

let churnRound = 0;

/** Adds, removes and changes a percentage of users; each round is reproducible from the seed. */
function churn(addPct: number, removePct: number, changePct: number) {
  const rand = mulberry32(seed * 7919 + ++churnRound);
  const ids = [...fake.users.keys()].sort((a, b) => a - b);
  const n = ids.length;
  const pickDistinct = (k: number, from: number[]): number[] => {
    // Partial Fisher-Yates on a copy: k distinct ids without rejection loops.
    const pool = from.slice();
    const take = Math.min(k, pool.length);
    for (let i = 0; i < take; i++) {
      const j = i + Math.floor(rand() * (pool.length - i));
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
    }
    return pool.slice(0, take);
  };
  const removed = pickDistinct(Math.round((n * removePct) / 100), ids);
  const gone = new Set(removed);
  // The change events a correct sync must write for this round, counted here from the tenant itself.
  let expectedEvents = 0;
  for (const id of removed) {
    expectedEvents += 1 + fake.users.get(id)!.team_memberships.length;
    fake.removeUser(id);
  }

  const changed = pickDistinct(
    Math.round((n * changePct) / 100),
    ids.filter((id) => !gone.has(id)),
  );
  const stamp = new Date().toISOString();
  for (const id of changed) {
    const u = fake.users.get(id)!;
    const memberships = u.team_memberships.map((m) => ({ ...m }));
    const m = memberships[Math.floor(rand() * memberships.length)];
    if (m) m.role = FAKE_ROLES[(FAKE_ROLES.indexOf(m.role) + 1) % FAKE_ROLES.length]!;
    expectedEvents += m ? 2 : 1;
    // Another name from the list, never the same one, so every pick is a real change.
    const i = FAKE_FIRST_NAMES.indexOf(u.first_name);
    const first = FAKE_FIRST_NAMES[(i + 1 + Math.floor(rand() * (FAKE_FIRST_NAMES.length - 1))) % FAKE_FIRST_NAMES.length]!;
    fake.updateUser(id, { first_name: first, team_memberships: memberships, updated_at: stamp });
  }

  const maxId = ids.length ? ids[ids.length - 1]! : 0;
  const added = generateUsers(Math.round((n * addPct) / 100), { startId: maxId + 1, seed: seed + churnRound * 104_729 });
  for (const u of added) {
    expectedEvents += 1 + u.team_memberships.length;
    fake.addUser(u);
  }
  return { added: added.length, removed: removed.length, changed: changed.length, expectedEvents };
}

async function shutdown(code: number): Promise<never> {
  await fake.close().catch(() => undefined);
  process.exit(code);
}

function command(line: string): void {
  const [cmd, ...args] = line.trim().split(/\s+/);
  switch (cmd) {
    case '':
      return;
    case 'churn': {
      const pct = args.slice(0, 3).map(Number);
      if (pct.length !== 3 || pct.some((p) => !Number.isFinite(p) || p < 0)) {
        out({ error: 'usage: churn <addPct> <removePct> <changePct>' });
        return;
      }
      out(churn(pct[0]!, pct[1]!, pct[2]!));
      return;
    }
    case 'revoke':
      fake.validKeys.clear();
      out({ ok: true });
      return;
    case 'key':
      if (!args[0]) {
        out({ error: 'usage: key <newKey>' });
        return;
      }
      fake.validKeys.add(args[0]);
      out({ ok: true });
      return;
    case 'count':
      out({ count: fake.users.size });
      return;
    case 'digest':
      out({ tenants: tenants.map((t) => ({ key: t.key, ...digest(t.users) })) });
      return;
    case 'quit':
      void shutdown(0);
      return;
    default:
      out({ error: `unknown command: ${cmd}` });
  }
}

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on('line', command);
// A closed pipe means the driving process is gone: do not linger as an orphan.
// A /dev/null or terminal stdin ends for other reasons, so the server keeps running.
rl.on('close', () => {
  const st = fs.fstatSync(0);
  if (st.isFIFO() || st.isSocket()) void shutdown(0); // Node's spawn pipes are socketpairs
});
process.on('SIGTERM', () => void shutdown(0));
process.on('SIGINT', () => void shutdown(0));
