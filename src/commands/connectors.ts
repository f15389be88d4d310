// `connectors add | list | show | set-key | remove | rekey`: registered
// connectors from the command line. A key comes from a file or stdin, never
// from an argument (shell history, `ps`). add and set-key try the key with one
// call to Tines first and save only what Tines accepted:
// 0 saved, 1 Tines unreachable, 3 key refused, 2 bad input or name taken.
// While a daemon holds the embedded database, changes go through its socket.
import { readFileSync } from 'node:fs';
import { callAdminSocket, type AdminAnswer } from '../connectors/admin-client.js';
import { addConnector, newConnectorSchema, newKeySchema, parseOrThrow, setConnectorKey } from '../connectors/connect.js';
import { currentMasterKey, findConnector, listConnectors, recentRuns, rekeyAll, removeConnector, type RegisteredConnector } from '../connectors/registry.js';
import { MasterKeyMissingError } from '../connectors/sealing.js';
import type { Database } from '../db/database.js';
import {
  ConnectorInputError,
  ConnectorNameTakenError,
  ConnectorNotFoundError,
  DataDirBusyError,
  errorMessage,
  TinesAuthError,
  TinesRequestError,
} from '../errors.js';
import { readAccess, requireSchema, type CommandContext } from './context.js';
import { ago, formatTable } from './format.js';

class UsageError extends Error {}

/** Tines' refusal without the environment's remedy: a registered connector's key is given here, not in TINES_API_KEY. */
export function refusal(err: TinesAuthError): string {
  return err.message.replace(/, update TINES_API_KEY or TINES_API_KEY_FILE, then run `tines-connector reconnect`/, '');
}

/** Exit code of an error of add / set-key / remove / rekey. */
function exitCodeOf(err: unknown): number {
  if (
    err instanceof UsageError ||
    err instanceof ConnectorInputError ||
    err instanceof ConnectorNameTakenError ||
    err instanceof ConnectorNotFoundError ||
    err instanceof MasterKeyMissingError
  ) {
    return 2;
  }
  if (err instanceof TinesAuthError) return 3;
  return 1;
}

/** The same for an answer of the daemon's admin socket. */
function exitCodeOfStatus(status: number): number {
  if (status < 300) return 0;
  if (status === 422) return 3;
  if (status === 400 || status === 404 || status === 409 || status === 413 || status === 503) return 2;
  return 1;
}

/** Reads a key from stdin; on a terminal nothing is echoed. */
async function readKeyFromStdin(): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8').trim();
  }
  process.stderr.write('Tines API key (not shown): ');
  stdin.setRawMode(true);
  stdin.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let key = '';
      const onData = (b: Buffer) => {
        for (const ch of b.toString('utf8')) {
          if (ch === '\r' || ch === '\n' || ch === '\u0004') {
            stdin.off('data', onData);
            return resolve(key.trim());
          }
          if (ch === '\u0003') {
            stdin.off('data', onData);
            return reject(new UsageError('interrupted'));
          }
          if (ch === '\u007f' || ch === '\b') key = key.slice(0, -1);
          else key += ch;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
}

async function readKey(values: CommandContext['flags']): Promise<string> {
  if (values['key-file'] && values['key-stdin']) throw new UsageError('give the key with --key-file F or --key-stdin, not both');
  const file = values['key-file'];
  if (typeof file === 'string') {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new UsageError(`cannot read --key-file ${file}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
    }
  }
  if (values['key-stdin'] === true) return readKeyFromStdin();
  throw new UsageError('give the API key with --key-file F or --key-stdin (never as an argument: it would be in shell history and `ps`)');
}

/**
 * The database to change, or, when a running daemon holds the embedded
 * database, undefined: the change then goes through its admin socket.
 */
async function writable(ctx: CommandContext): Promise<Database | undefined> {
  try {
    return await ctx.db();
  } catch (err) {
    if (err instanceof DataDirBusyError) return undefined;
    throw err;
  }
}

/**
 * A key sealed through the daemon that holds DATA_DIR is sealed under the daemon's master key: refuse
 * unless this shell has one and it is the same (a rotation half done would otherwise look finished).
 */
async function requireDaemonsMasterKey(ctx: CommandContext): Promise<void> {
  const mine = currentMasterKey(ctx.config);
  const answer = await callAdminSocket(ctx.config.database.dataDir, 'GET', '/api/master-key', undefined);
  if (!answer) return; // no daemon answers: the caller reports the busy database
  if (answer.status >= 300) throw new UsageError(`the running daemon cannot seal keys: ${answer.body.error?.message ?? `it answered ${answer.status}`}`);
  const theirs = String(answer.body.key_id);
  if (theirs !== mine.id) {
    throw new UsageError(
      `the daemon that holds ${ctx.config.database.dataDir} seals with master key ${theirs}, this shell's CONNECTOR_SECRETS_KEY is ${mine.id}: ` +
        'restart `run` with the same master key (during a rotation: the new one as CONNECTOR_SECRETS_KEY, the old one as CONNECTOR_SECRETS_KEY_PREVIOUS), then run this again',
    );
  }
}

/** A change made by the daemon that holds DATA_DIR; its answer printed, its status an exit code. */
async function throughDaemon(
  ctx: CommandContext,
  method: string,
  path: string,
  payload: unknown,
  onOk: (body: AdminAnswer['body']) => string,
): Promise<number> {
  if (method !== 'DELETE') await requireDaemonsMasterKey(ctx);
  const answer = await callAdminSocket(ctx.config.database.dataDir, method, path, payload);
  if (!answer) {
    // The database is busy, and no daemon serves its socket: say what the open said.
    await ctx.db();
    throw new Error('unreachable');
  }
  if (answer.status < 300) ctx.out(onOk(answer.body));
  else process.stderr.write(`tines-connector connectors: ${answer.body.error?.message ?? `the daemon answered ${answer.status}`}\n`);
  return exitCodeOfStatus(answer.status);
}

function describe(c: RegisteredConnector): string {
  return `"${c.name}" (${c.tenant_domain}, key ${c.api_key_fingerprint ?? 'unknown'})`;
}

async function add(ctx: CommandContext): Promise<number> {
  const values = ctx.flags;
  const missing = (['name', 'domain'] as const).filter((k) => !values[k]);
  if (missing.length) throw new UsageError(`missing ${missing.map((k) => `--${k}`).join(' and ')}`);
  const input = parseOrThrow(newConnectorSchema, {
    name: values.name,
    tenant_domain: values.domain,
    api_key: await readKey(values),
    schedule: values.schedule,
  });
  const ok = (c: RegisteredConnector, users: unknown) =>
    `Tines accepted the key for ${c.tenant_domain}${typeof users === 'number' ? ` (${users} users)` : ''}; saved connector ${describe(c)}.\n` +
    `A running \`tines-connector run\` syncs it within seconds${c.schedule ? `, then on ${c.schedule}` : ', then on SYNC_SCHEDULE'}; or sync it now: tines-connector sync --connector ${c.name}`;
  const db = await writable(ctx);
  if (!db) {
    return throughDaemon(
      ctx,
      'POST',
      '/api/connectors',
      { name: input.name, tenant_domain: values.domain, api_key: input.api_key, ...(input.schedule ? { schedule: input.schedule } : {}) },
      (b) => ok(b.connector as RegisteredConnector, b.users),
    );
  }
  const { connector, count } = await addConnector({ config: ctx.config, db, log: ctx.log }, input);
  ctx.out(ok(connector, count));
  return 0;
}

async function setKey(ctx: CommandContext): Promise<number> {
  const values = ctx.flags;
  const name = ctx.positionals[0];
  if (!name) throw new UsageError('name the connector: connectors set-key NAME (--key-file F | --key-stdin)');
  const { api_key } = parseOrThrow(newKeySchema, { api_key: await readKey(values) });
  const ok = (c: RegisteredConnector, users: unknown, was: unknown) =>
    `Tines accepted the new key${typeof users === 'number' ? ` (${users} users)` : ''}; connector ${describe(c)} is active${typeof was === 'string' ? ` again (was ${was})` : ''}.\n` +
    'Revoke the old key in Tines (Settings → API keys).';
  const db = await writable(ctx);
  if (!db)
    return throughDaemon(ctx, 'PUT', `/api/connectors/${encodeURIComponent(name)}/key`, { api_key }, (b) =>
      ok(b.connector as RegisteredConnector, b.users, b.was),
    );
  const { connector, count, from } = await setConnectorKey({ config: ctx.config, db, log: ctx.log }, name, api_key);
  ctx.out(ok(connector, count, from));
  return 0;
}

async function remove(ctx: CommandContext): Promise<number> {
  const values = ctx.flags;
  const name = ctx.positionals[0];
  if (!name) throw new UsageError('name the connector: connectors remove NAME --yes');
  if (values.yes !== true) {
    ctx.out(
      `This removes connector "${name}" and all its users, memberships, runs and events. Run \`tines-connector connectors remove ${name} --yes\` to do it.`,
    );
    return 2;
  }
  const reminder = 'Remember to revoke its API key in Tines (Settings → API keys), so no copy of it can still read the tenant.';
  const db = await writable(ctx);
  if (!db) {
    return throughDaemon(
      ctx,
      'DELETE',
      `/api/connectors/${encodeURIComponent(name)}`,
      undefined,
      (b) => `Removed connector "${name}" and the ${String(b.users_removed)} users stored for it.\n${reminder}`,
    );
  }
  await requireSchema(db, db.description);
  const existing = await findConnector(db, name);
  if (!existing) throw new ConnectorNotFoundError(name);
  if (existing.source === 'env')
    throw new UsageError(`connector "${name}" is the environment's (TINES_TENANT_DOMAIN, CONNECTOR_NAME): use \`tines-connector delete --yes\``);
  const { users } = await removeConnector(db, name);
  ctx.out(`Removed connector "${name}" and the ${users} users stored for it, with their memberships, runs and events.\n${reminder}`);
  return 0;
}

async function rekey(ctx: CommandContext): Promise<number> {
  const db = await writable(ctx);
  const result = db
    ? await rekeyAll(db, ctx.config)
    : await (async () => {
        await requireDaemonsMasterKey(ctx);
        const answer = await callAdminSocket(ctx.config.database.dataDir, 'POST', '/api/rekey', {});
        if (!answer) await ctx.db();
        if (answer!.status >= 300) throw new Error(answer!.body.error?.message ?? `the daemon answered ${answer!.status}`);
        return answer!.body as unknown as Awaited<ReturnType<typeof rekeyAll>>;
      })();
  const key = currentMasterKey(ctx.config);
  ctx.out(
    [
      `resealed under master key ${key.id}: ${result.resealed.length}${result.resealed.length ? ` (${result.resealed.join(', ')})` : ''}`,
      `already under it: ${result.current.length}`,
      ...result.failed.map((f) => `NOT resealed: ${f.name}: ${f.reason}`),
      ...(result.failed.length === 0 && ctx.config.registry.masterKeys.length > 1
        ? ['every key is under the current master key: CONNECTOR_SECRETS_KEY_PREVIOUS can be unset']
        : []),
    ].join('\n'),
  );
  return result.failed.length ? 1 : 0;
}

async function list(ctx: CommandContext): Promise<number> {
  const values = ctx.flags;
  const { q, via } = await readAccess(ctx);
  await requireSchema(q, via);
  const rows = await listConnectors(q);
  if (values.json === true) {
    ctx.out(JSON.stringify({ database: via, connectors: rows }));
    return 0;
  }
  if (rows.length === 0) {
    ctx.out(`database: ${via}\nno connectors yet: add one with \`tines-connector connectors add\``);
    return 0;
  }
  ctx.out(
    `database: ${via}\n${formatTable(
      rows.map((c) => ({
        name: c.name,
        source: c.source,
        tenant: c.tenant_domain,
        status: c.status,
        schedule: c.schedule ?? (c.source === 'env' ? 'SYNC_SCHEDULE' : `SYNC_SCHEDULE`),
        key: c.api_key_fingerprint ?? '',
        'last success': ago(c.last_success_at),
      })),
    )}`,
  );
  return 0;
}

async function show(ctx: CommandContext): Promise<number> {
  const values = ctx.flags;
  const name = ctx.positionals[0];
  if (!name) throw new UsageError('name the connector: connectors show NAME');
  const { q, via } = await readAccess(ctx);
  await requireSchema(q, via);
  const c = await findConnector(q, name);
  if (!c) throw new ConnectorNotFoundError(name);
  const runs = await recentRuns(q, c.id);
  if (values.json === true) {
    ctx.out(JSON.stringify({ connector: c, runs }));
    return 0;
  }
  ctx.out(
    [
      `${c.name} (${c.tenant_domain})`,
      `  source         ${c.source === 'env' ? "the environment's (TINES_TENANT_DOMAIN)" : 'registered'}`,
      `  state          ${c.status}${c.status_reason ? `: ${c.status_reason}` : ''}`,
      `  schedule       ${c.schedule ?? 'SYNC_SCHEDULE'}`,
      `  key            ${c.api_key_fingerprint ?? 'unknown'}${c.sealed_key_id ? ` (sealed under master key ${c.sealed_key_id})` : ''}`,
      `  failures       ${c.consecutive_failures} in a row`,
      `  last success   ${c.last_success_at ? `${c.last_success_at} (${ago(c.last_success_at)})` : 'never'}`,
      '  last runs',
      ...(runs.length
        ? runs.map(
            (r) =>
              `    ${String(r.id).padStart(6)}  ${String(r.status).padEnd(9)} ${String(r.trigger).padEnd(8)} ${ago(r.started_at as string).padEnd(12)} users ${String(r.users_seen)}${r.error_kind ? `  ${String(r.error_kind)}: ${String(r.error_message)}` : ''}`,
          )
        : ['    none yet']),
    ].join('\n'),
  );
  return 0;
}

/** Runs a subcommand; the refusals it expects become exit codes with one line on stderr, anything else goes to the CLI. */
function guarded(sub: string, run: (ctx: CommandContext) => Promise<number>): (ctx: CommandContext) => Promise<number> {
  return async (ctx) => {
    try {
      return await run(ctx);
    } catch (err) {
      const code = exitCodeOf(err);
      if (code === 1 && !(err instanceof TinesRequestError)) throw err;
      const message =
        err instanceof TinesRequestError
          ? `Tines could not be reached; nothing saved: ${err.message}`
          : err instanceof TinesAuthError
            ? `Tines refused the key (${err.status}); nothing saved: ${refusal(err)}`
            : errorMessage(err);
      process.stderr.write(`tines-connector connectors ${sub}: ${message}\n`);
      return code;
    }
  };
}

export const connectorsAdd = guarded('add', add);
export const connectorsList = guarded('list', list);
export const connectorsShow = guarded('show', show);
export const connectorsSetKey = guarded('set-key', setKey);
export const connectorsRemove = guarded('remove', remove);
export const connectorsRekey = guarded('rekey', rekey);
