// What a Tines user looks like on the wire, accepted liberally: ids as numbers
// or numeric strings, optional fields absent or null, unknown fields kept in raw.
import { z } from 'zod';

const id = z
  .union([z.number().int().nonnegative(), z.string().regex(/^\d{1,16}$/).transform(Number)])
  .refine(Number.isSafeInteger, 'id is beyond 2^53');
const text = z.union([z.string(), z.number().transform(String)]).nullish();
const bool = z.boolean().nullish();
/** Timestamps are normalised to ISO; an unparseable one is kept only in raw. */
const timestamp = z
  .union([z.string(), z.number()])
  .nullish()
  .transform((v) => {
    if (v === null || v === undefined || v === '') return null;
    const d = new Date(v);
    return Number.isNaN(d.getTime()) ? null : d.toISOString();
  });

export const membershipSchema = z.object({
  team_id: id,
  team_name: text,
  role: text,
});

export const userSchema = z.object({
  id,
  email: text,
  first_name: text,
  last_name: text,
  admin: bool,
  is_active: bool,
  tenant_permissions: z.array(z.string()).nullish(),
  scim_uid: text,
  created_at: timestamp,
  updated_at: timestamp,
  last_seen: timestamp,
  team_memberships: z.array(membershipSchema).nullish(),
});

const pageNumber = z.union([z.number().int(), z.string().regex(/^\d+$/).transform(Number)]).nullish();
/** Fields the client does not page by are informational: an odd value must not fail a page. */
const informational = z.unknown().optional();

export const metaSchema = z
  .object({
    // Tines documents current_page/previous_page as links; some tenants send numbers.
    current_page: informational,
    previous_page: informational,
    next_page: z.union([z.string(), z.number().transform(String)]).nullish(),
    next_page_number: pageNumber,
    per_page: pageNumber.catch(undefined),
    pages: pageNumber,
    count: pageNumber,
  })
  .partial();

export interface TinesMembership {
  teamId: number;
  teamName: string | null;
  role: string | null;
}

export interface TinesUser {
  id: number;
  email: string | null;
  firstName: string | null;
  lastName: string | null;
  /** null: Tines did not say; the stored value stays. */
  admin: boolean | null;
  /** null: Tines did not say (older tenants); the stored value stays, never false. */
  isActive: boolean | null;
  tenantPermissions: string[] | null;
  scimUid: string | null;
  createdAt: string | null;
  updatedAt: string | null;
  lastSeen: string | null;
  /** null: the object had no team_memberships field, so memberships stay as they are. */
  memberships: TinesMembership[] | null;
  /** The object exactly as Tines sent it. */
  raw: Record<string, unknown>;
}

export type PageMeta = z.infer<typeof metaSchema>;

/** Validates one user object; returns an error message instead of throwing. */
export function parseUser(raw: unknown): TinesUser | string {
  const r = userSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    return `${issue?.path.join('.') || 'user'}: ${issue?.message ?? 'invalid'}`;
  }
  const u = r.data;
  let memberships: TinesMembership[] | null = null;
  if (u.team_memberships) {
    // A team listed twice keeps its last entry.
    const byTeam = new Map<number, TinesMembership>();
    for (const m of u.team_memberships) byTeam.set(m.team_id, { teamId: m.team_id, teamName: m.team_name ?? null, role: m.role ?? null });
    memberships = [...byTeam.values()];
  }
  return {
    id: u.id,
    email: u.email ?? null,
    firstName: u.first_name ?? null,
    lastName: u.last_name ?? null,
    admin: u.admin ?? null,
    isActive: u.is_active ?? null,
    tenantPermissions: u.tenant_permissions ?? null,
    scimUid: u.scim_uid ?? null,
    createdAt: u.created_at,
    updatedAt: u.updated_at,
    lastSeen: u.last_seen,
    memberships,
    raw: raw as Record<string, unknown>,
  };
}
