// A directory CSV for a simulated tenant, as an HR system would export it:
// most people active, a few departed (a tenant admin among them) or
// suspended, a few accounts with nobody behind them, outsiders not listed.
import type { FakeUser } from './tines-server.js';

const DEPARTMENTS = ['Security', 'Engineering', 'IT', 'Finance', 'Sales', 'People'] as const;

export interface FakeDirectory {
  csv: string;
  /** Emails of the people listed as departed; the first is a tenant admin. */
  departed: string[];
  suspended: string[];
  /** Tenant accounts the directory does not list (outsiders aside). */
  unlisted: string[];
}

const quote = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

/**
 * The directory of `users` (the tenant at its start): people of `orgDomain`
 * only. Picks are from the last third by id, away from the accounts a story
 * changes early on; an active tenant admin (there if there is one) is one
 * of the departed.
 */
export function fakeDirectory(users: FakeUser[], orgDomain: string, now = Date.now()): FakeDirectory {
  const inOrg = users.filter((u) => u.email.toLowerCase().endsWith(`@${orgDomain}`));
  const late = inOrg.slice(Math.floor((inOrg.length * 2) / 3)).filter((u) => u.is_active !== false);
  const admin = late.find((u) => u.admin) ?? inOrg.find((u) => u.admin && u.is_active !== false);
  if (!admin) throw new Error('the tenant has no active tenant admin to depart');
  const others = late.filter((u) => u !== admin);
  const departed = [admin, others[3]!, others[7]!].map((u) => u.email);
  const suspended = [others[11]!.email];
  const unlisted = [others[15]!.email, others[19]!.email];
  // When each left, as HR recorded it: the admin six weeks ago, the others a fortnight and four months ago.
  const daysAgo = new Map([...departed.map((e, i) => [e, [45, 14, 120][i]!] as const), [suspended[0]!, 3]]);
  const date = (days: number | undefined) => (days === undefined ? '' : new Date(now - days * 86_400_000).toISOString().slice(0, 10));
  const rows = inOrg
    .filter((u) => !unlisted.includes(u.email))
    .map((u, i) => {
      const status = departed.includes(u.email) ? 'departed' : suspended.includes(u.email) ? 'suspended' : 'active';
      const name = i % 9 === 0 ? `${u.last_name}, ${u.first_name}` : `${u.first_name} ${u.last_name}`;
      return [u.email, name, status, date(daysAgo.get(u.email)), DEPARTMENTS[u.id % DEPARTMENTS.length]!, `E${String(u.id).padStart(5, '0')}`]
        .map(quote)
        .join(',');
    });
  return { csv: `email,name,status,status_changed_at,department,external_id\r\n${rows.join('\r\n')}\r\n`, departed, suspended, unlisted };
}
