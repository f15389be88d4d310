// npm run bench:people -- [--rows N] [--backend embedded|postgres|both]: a
// generated directory CSV of N people (200,000 by default) imported with the
// shipped bin on each backend: the first load, the same file again (no change),
// and a changed file (5% gone, 5% renamed), plus a file of N/10 people to show
// that peak memory does not grow with the file. Progress on stderr; the last
// stdout line is one JSON object of figures.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(root, 'dist', 'bin', 'cli.js');
const probe = join(root, 'dist', 'bench', 'rss-probe.js');

const { values } = parseArgs({ options: { rows: { type: 'string' }, backend: { type: 'string' } } });
const rows = Number(values.rows ?? 200_000);
const which = values.backend ?? 'both';
const log = (msg: string) => process.stderr.write(`[bench:people] ${msg}\n`);
const DEPARTMENTS = ['Security', 'Engineering', 'IT', 'Finance', 'Sales', 'People, Culture & Places'];

/** A directory export: quoted names with commas now and then, CRLF line ends, a BOM. */
async function writeCsv(path: string, n: number, variant: 'first' | 'changed', domain = 'example.com'): Promise<void> {
  const out = createWriteStream(path);
  const write = (s: string) => (out.write(s) ? Promise.resolve() : new Promise<void>((r) => out.once('drain', () => r())));
  await write('\uFEFFemail,name,status,department,manager_email,external_id\r\n');
  let chunk = '';
  for (let i = 0; i < n; i++) {
    // The changed file: every 20th person gone, every 20th (another) renamed.
    if (variant === 'changed' && i % 20 === 7) continue;
    const renamed = variant === 'changed' && i % 20 === 13;
    const name = i % 10 === 0 ? `"Person${renamed ? '-Renamed' : ''}, No. ${i}"` : `Person ${i}${renamed ? ' Renamed' : ''}`;
    const dept = DEPARTMENTS[i % DEPARTMENTS.length]!;
    chunk += `person${i}@${domain},${name},${i % 97 === 0 ? 'suspended' : 'active'},"${dept}",manager${i % 500}@example.com,E${i}\r\n`;
    if (chunk.length > 1 << 16) {
      await write(chunk);
      chunk = '';
    }
  }
  await write(chunk);
  await new Promise<void>((r) => out.end(() => r()));
}

/** One CLI command in a child process: wall time, exit code, peak RSS, its stdout. */
async function runCli(env: Record<string, string>, label: string, args: string[]) {
  const rssFile = join(tmpdir(), `bench-rss-${randomBytes(4).toString('hex')}`);
  const started = performance.now();
  let stdout = '';
  const code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, ['--import', probe, cli, ...args], {
      env: { PATH: process.env.PATH ?? '', ...env, BENCH_RSS_FILE: rssFile },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('exit', (c) => resolve(c ?? 1));
  });
  const ms = Math.round(performance.now() - started);
  const rssMb = Math.round(Number(readFileSync(rssFile, 'utf8')) / 1024);
  rmSync(rssFile, { force: true });
  log(`${label}: exit ${code}, ${ms} ms, peak RSS ${rssMb} MB${stdout.trim() ? `: ${stdout.trim().split('\n').slice(0, 2).join(' | ')}` : ''}`);
  if (code !== 0) throw new Error(`${label} exited ${code}`);
  return { ms, rssMb };
}

async function benchBackend(name: 'embedded' | 'postgres', files: Record<'small' | 'first' | 'changed', string>, tmp: string) {
  let dbEnv: Record<string, string>;
  let drop = async () => {};
  if (name === 'postgres') {
    const adminUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
    const dbName = `tc_bench_people_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbName}`);
    const u = new URL(adminUrl);
    u.pathname = `/${dbName}`;
    dbEnv = { DATABASE_URL: u.toString() };
    drop = async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await admin.end();
    };
  } else {
    dbEnv = { DATA_DIR: join(tmp, 'data') };
  }
  // The database settings only: people import needs no Tines variables.
  const env = { LOG_LEVEL: 'warn', ...dbEnv };
  try {
    await runCli(env, `${name} migrate (untimed)`, ['migrate']);
    const small = await runCli(env, `${name} ${rows / 10} people`, ['people', 'import', files.small, '--source', 'small']);
    const first = await runCli(env, `${name} first load`, ['people', 'import', files.first, '--source', 'bench']);
    const again = await runCli(env, `${name} same file again`, ['people', 'import', files.first, '--source', 'bench']);
    const changed = await runCli(env, `${name} 5% gone, 5% renamed`, ['people', 'import', files.changed, '--source', 'bench']);
    return {
      small_ms: small.ms,
      small_rss_mb: small.rssMb,
      first_ms: first.ms,
      again_ms: again.ms,
      changed_ms: changed.ms,
      peak_rss_mb: Math.max(first.rssMb, again.rssMb, changed.rssMb),
    };
  } finally {
    await drop();
  }
}

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'tines-bench-people-'));
  try {
    const files = { small: join(tmp, 'small.csv'), first: join(tmp, 'people.csv'), changed: join(tmp, 'changed.csv') };
    await writeCsv(files.small, rows / 10, 'first', 'small.example.com');
    await writeCsv(files.first, rows, 'first');
    await writeCsv(files.changed, rows, 'changed');
    const mb = Math.round(statSync(files.first).size / 1e5) / 10;
    log(`${rows} people, ${mb} MB of CSV`);
    const result: Record<string, unknown> = { rows, csv_mb: mb };
    if (which === 'both' || which === 'embedded') result.embedded = await benchBackend('embedded', files, tmp);
    if (which === 'both' || which === 'postgres') result.postgres = await benchBackend('postgres', files, tmp);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`[bench:people] failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
