// `report [--json]`: the insights summary per connector.
import { connectorReports, type ConnectorReport } from '../db/insights.js';
import { ownerReports } from '../db/owners.js';
import { readAccess, requireSchema, type CommandContext } from './context.js';
import { ago, jsonDocument, visible } from './format.js';
import { formatOwners } from './report-owners.js';

function describeChange(c: ConnectorReport['recent_changes'][number]): string {
  const who = c.name ? `${c.name} <${c.email ?? '?'}>` : (c.email ?? '');
  const d = c.details ?? {};
  const what = Object.entries(d)
    .filter(([, v]) => v && typeof v === 'object' && 'to' in (v as object))
    .map(([k, v]) => `${k}: ${JSON.stringify((v as { from: unknown }).from)} → ${JSON.stringify((v as { to: unknown }).to)}`)
    .join(', ');
  const team = typeof d.team_name === 'string' ? ` (${d.team_name}${typeof d.role === 'string' ? `, ${d.role}` : ''})` : '';
  return `${c.kind.padEnd(24)} ${who}${team}${what ? ` ${what}` : ''}`.trimEnd();
}

export function formatReport(r: ConnectorReport): string {
  const lines = [
    `${r.name} (${r.tenant_domain})`,
    `  state            ${r.status}${r.status_reason ? `: ${r.status_reason}` : ''}`,
    `  last success     ${r.last_success_at ? ago(r.last_success_at) : 'never'}`,
    `  users present    ${r.users_present}`,
    `  joined           ${r.joined_7d} in 7 days, ${r.joined_30d} in 30 days${r.baseline_users !== null ? ' (since the first sync)' : ''}`,
    `  baseline         ${r.baseline_users !== null && r.baseline_at ? `${r.baseline_users} users found by the first sync, ${ago(r.baseline_at)}` : 'none yet: no sync has found users'}`,
    `  left             ${r.left_7d} in 7 days, ${r.left_30d} in 30 days`,
    `  inactive         ${r.inactive} (not seen for ${r.inactive_after_days} days or never; ${r.never_seen} never seen)`,
    `  privileged       ${r.privileged} (${r.tenant_admins} tenant admins, ${r.team_admins} team admins)`,
    `  external         ${r.external === null ? 'unknown: set ORG_EMAIL_DOMAINS' : `${r.external} outside ${r.org_email_domains?.join(', ')}`}`,
    '  recent changes',
    ...(r.recent_changes.length ? r.recent_changes.map((c) => `    ${ago(c.occurred_at).padEnd(12)} ${describeChange(c)}`) : ['    none']),
  ];
  // Names, emails, teams and roles came from Tines: shown, never obeyed by the terminal.
  return lines.map(visible).join('\n');
}

export async function reportCommand(ctx: CommandContext): Promise<number> {
  const { q, via } = await readAccess(ctx);
  await requireSchema(q, via);
  const only = typeof ctx.flags.connector === 'string' ? ctx.flags.connector : undefined;
  const reports = (await connectorReports(q)).filter((r) => only === undefined || r.name === only);
  if (only !== undefined && reports.length === 0) {
    process.stderr.write(`tines-connector report: no connector named "${only}"\n`);
    return 2;
  }
  // Owners (009_people.sql): a block of their own per connector, `owners` in --json.
  const owners = await ownerReports(q);
  if (ctx.flags.json) {
    ctx.out(
      jsonDocument({ database: via, generated_at: new Date().toISOString(), connectors: reports.map((r) => ({ ...r, owners: owners.get(r.name) ?? null })) }),
    );
    return 0;
  }
  const withOwners = (r: ConnectorReport) => `${formatReport(r)}\n${formatOwners(owners.get(r.name))}`;
  ctx.out(
    reports.length ? [`database: ${via}`, ...reports.map(withOwners)].join('\n\n') : `database: ${via}\nno connectors yet: run \`tines-connector sync\` first`,
  );
  return 0;
}
