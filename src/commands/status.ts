// `status [--json]`: each connector's state, reason, last run, last success and user counts.
import { keyFingerprint, registerConnector } from '../db/connectors.js';
import { connectorStatuses } from '../db/status.js';
import { readApiKey } from '../config.js';
import { registration } from '../sync/run-sync.js';
import { hasFlag, readAccess, type CommandContext } from './context.js';
import { ago } from './format.js';

export async function statusCommand(ctx: CommandContext): Promise<number> {
  const { q, db, via } = await readAccess(ctx);
  if (db) {
    let fingerprint: string | null = null;
    try {
      fingerprint = keyFingerprint(readApiKey(ctx.config));
    } catch (err) {
      ctx.log.warn({ err: { message: (err as Error).message } }, 'cannot read the API key; status shows the stored fingerprint');
    }
    try {
      await registerConnector(db, registration(ctx.config, fingerprint));
    } catch (err) {
      // A read-only role may look but not register; the stored rows still answer.
      ctx.log.warn({ err: { message: (err as Error).message } }, 'could not register the connector; showing what is stored');
    }
  }
  const rows = await connectorStatuses(q);
  if (hasFlag(ctx.args, '--json')) {
    ctx.out(JSON.stringify({ database: via, connectors: rows }));
    return 0;
  }
  const lines: string[] = [`database: ${via}`];
  if (ctx.config.orgEmailDomains.length === 0) {
    lines.push('note: ORG_EMAIL_DOMAINS is not set, so external_users is empty (set it to list accounts outside your domains)');
  }
  for (const c of rows) {
    lines.push(
      '',
      `${c.name} (${c.tenant_domain})`,
      `  state          ${c.status}${c.status_reason ? `: ${c.status_reason}` : ''}`,
      `  since          ${c.status_changed_at} (${ago(c.status_changed_at)})`,
      `  last run       ${c.last_run ? `${c.last_run.status} (${c.last_run.trigger}), started ${ago(c.last_run.started_at)}${c.last_run.status === 'running' ? `, page ${c.last_run.pages_fetched} of ${c.last_run.pages_total ?? '?'}` : ''}${c.last_run.error_kind ? `, ${c.last_run.error_kind}: ${c.last_run.error_message}` : ''}` : 'none yet'}`,
      `  last success   ${c.last_success_at ? `${c.last_success_at} (${ago(c.last_success_at)})` : 'never'}`,
      `  failures       ${c.consecutive_failures} in a row`,
      `  users          ${c.users_present} present (${c.admins_present} tenant admins), ${c.users_removed} removed`,
      `  memberships    ${c.memberships_present} present`,
      `  key            ${c.api_key_fingerprint ?? 'unknown'}`,
    );
  }
  ctx.out(lines.join('\n'));
  return 0;
}
