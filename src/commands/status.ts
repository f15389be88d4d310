// `status [--json]`: each connector's state, reason, last run, last success and
// user counts. It only reads: looking never registers, re-creates or rewrites a
// connector (that is for `sync`, `run` and `reconnect`).
import { keyFingerprint } from '../db/connectors.js';
import { connectorStatuses } from '../db/status.js';
import { readApiKey } from '../config.js';
import { readAccess, requireSchema, type CommandContext } from './context.js';
import { ago, jsonDocument, visible } from './format.js';

export async function statusCommand(ctx: CommandContext): Promise<number> {
  const { q, via } = await readAccess(ctx);
  await requireSchema(q, via);
  const only = typeof ctx.flags.connector === 'string' ? ctx.flags.connector : undefined;
  const rows = (await connectorStatuses(q)).filter((c) => only === undefined || c.name === only);
  if (only !== undefined && rows.length === 0) {
    process.stderr.write(`tines-connector status: no connector named "${only}"\n`);
    return 2;
  }
  const name = ctx.config.connectorName;
  const mine = rows.find((c) => c.name === name);
  // The environment's connector exists only when TINES_TENANT_DOMAIN is set.
  const tenantDomain = ctx.config.tines.tenantDomain ?? null;
  let keyInForce: string | null = null;
  if (tenantDomain) {
    try {
      keyInForce = keyFingerprint(readApiKey(ctx.config));
    } catch (err) {
      ctx.log.warn({ err: { message: (err as Error).message } }, 'cannot read the API key; status shows the stored fingerprint only');
    }
  }
  // What this configuration would use, beside what is stored: they differ until the next sync registers it.
  const configured = { name, registered: mine !== undefined, tenant_domain: tenantDomain, api_key_fingerprint: keyInForce };
  if (ctx.flags.json) {
    ctx.out(jsonDocument({ database: via, connectors: rows, configured }));
    return 0;
  }
  const lines: string[] = [`database: ${via}`];
  if (!mine && tenantDomain && only === undefined)
    lines.push(`note: connector "${name}" (${tenantDomain}) is not registered here yet; the first sync or run registers it`);
  if (rows.length === 0 && !tenantDomain) lines.push('no connectors yet: set TINES_TENANT_DOMAIN and its key, then run `tines-connector sync` or `run`');
  for (const c of rows) {
    const keyNote = c === mine && keyInForce && keyInForce !== c.api_key_fingerprint ? ` (the configured key is ${keyInForce}; the next sync uses it)` : '';
    const domainNote = c === mine && tenantDomain && c.tenant_domain !== tenantDomain ? ` (configured now: ${tenantDomain})` : '';
    // The connector's own stored setting, not this shell's environment, says whether external_users lists anyone.
    const domains = c.org_email_domains?.length
      ? `users outside ${c.org_email_domains.join(', ')} are in external_users`
      : 'no ORG_EMAIL_DOMAINS stored for this connector, so external_users is empty for it (set ORG_EMAIL_DOMAINS where it syncs; the next sync stores it)';
    lines.push(
      '',
      `${c.name} (${c.tenant_domain})${domainNote}`,
      `  state          ${c.status}${c.status_reason ? `: ${c.status_reason}` : ''}`,
      `  since          ${c.status_changed_at} (${ago(c.status_changed_at)})`,
      `  last run       ${c.last_run ? `${c.last_run.status} (${c.last_run.trigger}), started ${ago(c.last_run.started_at)}${c.last_run.host ? ` on ${visible(c.last_run.host)}${c.last_run.pid ? ` (pid ${c.last_run.pid})` : ''}` : ''}${c.last_run.status === 'running' ? `, page ${c.last_run.pages_fetched} of ${c.last_run.pages_total ?? '?'}` : ''}${c.last_run.error_kind ? `, ${c.last_run.error_kind}: ${c.last_run.error_message}` : ''}` : 'none yet'}`,
      `  last success   ${c.last_success_at ? `${c.last_success_at} (${ago(c.last_success_at)})` : 'never'}`,
      `  failures       ${c.consecutive_failures} in a row`,
      `  users          ${c.users_present} present (${c.admins_present} tenant admins), ${c.users_removed} removed`,
      `  memberships    ${c.memberships_present} present`,
      `  external       ${domains}`,
      `  key            ${c.api_key_fingerprint ?? 'unknown'}${keyNote}`,
    );
  }
  // Reasons and messages may quote what Tines sent: shown, never obeyed by the terminal.
  ctx.out(lines.map(visible).join('\n'));
  return 0;
}
