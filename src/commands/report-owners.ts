// The owners part of `report`'s text: orphaned accounts (privileged ones first,
// with how long ago their person left), then accounts nobody owns.
import type { OrphanedAccount, OwnersReport } from '../db/owners.js';
import { visible } from './format.js';

/** Accounts shown per list in the text report; --json has up to OWNER_LIST_LIMIT, the views all. */
const SHOWN = 10;

function since(a: OrphanedAccount): string {
  const when = a.days_since_departure === 0 ? 'today' : a.days_since_departure === 1 ? '1 day ago' : `${a.days_since_departure} days ago`;
  return `${a.person_status} ${when}`;
}

function more(total: number, shown: number, view: string): string[] {
  return total > shown ? [`      … and ${total - shown} more (the ${view} view has them all)`] : [];
}

/** The owners lines of one connector's report, indented as formatReport's. */
export function formatOwners(o: OwnersReport | undefined): string {
  if (!o || o.directory_people === 0) return '  owners           unknown: no directory loaded (`tines-connector people import FILE.csv`)';
  const privileged = o.orphaned_accounts.filter((a) => a.privileged).slice(0, SHOWN);
  const plain = o.orphaned_accounts.filter((a) => !a.privileged).slice(0, SHOWN);
  const who = (email: string | null, name: string | null) => `${email ?? '(no email)'}${name ? ` (${name})` : ''}`;
  const lines = [
    `  owners           ${o.orphaned} orphaned (${o.privileged_orphans} privileged), ${o.unowned} unowned; ${o.directory_people} people in the directory`,
  ];
  if (o.privileged_orphans > 0) {
    lines.push('    privileged orphans: their person left, their power stayed');
    lines.push(...privileged.map((a) => `      ${who(a.email, a.name)}  ${since(a)}  ${(a.reasons ?? []).join('; ')}`));
    lines.push(...more(o.privileged_orphans, privileged.length, 'privileged_orphans'));
  }
  const orphanedPlain = o.orphaned - o.privileged_orphans;
  if (orphanedPlain > 0) {
    lines.push('    orphaned: their person is suspended or departed');
    lines.push(...plain.map((a) => `      ${who(a.email, a.name)}  ${since(a)}`));
    lines.push(...more(orphanedPlain, plain.length, 'orphaned_accounts'));
  }
  if (o.unowned > 0) {
    const shown = o.unowned_accounts.slice(0, SHOWN);
    lines.push('    unowned: no person in the directory');
    lines.push(...shown.map((a) => `      ${who(a.email, a.name)}${a.admin ? '  tenant admin' : ''}`));
    lines.push(...more(o.unowned, shown.length, 'unowned_accounts'));
  }
  // Emails, names and team names came from Tines or the directory: shown, never obeyed by the terminal.
  return lines.map(visible).join('\n');
}
