// `status [--json]`: each connector's state, reason, last run, last success and
// user counts. It only reads: looking never registers, re-creates or rewrites a
// connector (that is for `sync`, `run` and `reconnect`).
import { keyFingerprint } from '../db/connectors.js';
import { connectorStatuses } from '../db/status.js';
import { readApiKey } from '../config.js';
import { connectorArg, hasFlag, readAccess, requireSchema, type CommandContext } from './context.js';
import { ago } from './format.js';

export async function statusCommand(ctx: CommandContext): Promise<number> {
  const { q, via } = await readAccess(ctx);
  await requireSchema(q, via);
  const only = connectorArg(ctx.args);
  const rows = (await connectorStatuses(q)).filter((c) => only === undefined || c.name === only);
  if (only !== undefined && rows.length === 0) {
    process.stderr.write(`tines-connector status: no connector named "${only}"\n`);
    return 2;
  }
  const name = ctx.config.connectorName;
  const mine = rows.find((c) => c.name === name);
  let keyInForce: string | null = null;
  try {
    keyInForce = keyFingerprint(readApiKey(ctx.config));
  } catch (err) {
    ctx.log.warn({ err: { message: (err as Error).message } }, 'cannot read the API key; status shows the stored fingerprint only');
  }
  // What this configuration would use, beside what is stored: they differ until the next sync registers it.
  const configured = { name, registered: mine !== undefined, tenant_domain: ctx.config.tines.tenantDomain, api_key_fingerprint: keyInForce };
  if (hasFlag(ctx.args, '--json')) {
    ctx.out(JSON.stringify({ database: via, connectors: rows, configured }));
    return 0;
  }
  const lines: string[] = [`database: ${via}`];
  if (ctx.config.orgEmailDomains.length === 0) {
    lines.push('note: ORG_EMAIL_DOMAINS is not set, so external_users is empty (set it to list accounts outside your domains)');
  }
  if (!mine && only === undefined) lines.push(`note: connector "${name}" (${configured.tenant_domain}) is not registered here yet; the first sync or run registers it`);
  for (const c of rows) {
    const keyNote = c === mine && keyInForce && keyInForce !== c.api_key_fingerprint ? ` (the configured key is ${keyInForce}; the next sync uses it)` : '';
    const domainNote = c === mine && c.tenant_domain !== configured.tenant_domain ? ` (configured now: ${configured.tenant_domain})` : '';
    lines.push(
      '',
      `${c.name} (${c.tenant_domain})${domainNote}`,
      `  state          ${c.status}${c.status_reason ? `: ${c.status_reason}` : ''}`,
      `  since          ${c.status_changed_at} (${ago(c.status_changed_at)})`,
      `  last run       ${c.last_run ? `${c.last_run.status} (${c.last_run.trigger}), started ${ago(c.last_run.started_at)}${c.last_run.status === 'running' ? `, page ${c.last_run.pages_fetched} of ${c.last_run.pages_total ?? '?'}` : ''}${c.last_run.error_kind ? `, ${c.last_run.error_kind}: ${c.last_run.error_message}` : ''}` : 'none yet'}`,
      `  last success   ${c.last_success_at ? `${c.last_success_at} (${ago(c.last_success_at)})` : 'never'}`,
      `  failures       ${c.consecutive_failures} in a row`,
      `  users          ${c.users_present} present (${c.admins_present} tenant admins), ${c.users_removed} removed`,
      `  memberships    ${c.memberships_present} present`,
      `  key            ${c.api_key_fingerprint ?? 'unknown'}${keyNote}`,
    );
  }
  ctx.out(lines.join('\n'));
  return 0;
}
