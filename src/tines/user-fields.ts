// The one list of a Tines user's fields the connector stores in columns: the
// wire key, the column in tines_users (and the sync's staging table), its kind,
// and what a change of it means. Everything else is generated from it: the
// wire schema (tines/schema.ts), the staging DDL, the COPY columns and the
// encoder (sync/staging.ts), and the diff's column lists (sync/diff.ts). A new
// field is one line here plus a migration that adds its column to tines_users.
// (The id, the memberships and the raw object are structural, not listed.)

export type FieldKind = 'text' | 'boolean' | 'timestamp' | 'text[]';

export interface UserField {
  /** The key in the user object Tines sends. */
  readonly wire: string;
  /** The column in tines_users and in the staging table. */
  readonly column: string;
  readonly kind: FieldKind;
  /**
   * `event`: a change is a user_updated event naming the field. `silent`: a
   * change rewrites the row without an event (timestamps, usage).
   */
  readonly change: 'event' | 'silent';
  /** Tines may leave it out (older tenants): null then keeps the stored value, never overwrites it. */
  readonly absentKeepsStored?: boolean;
  /** SQL comparing two values of it as equal when this expression of each is (e.g. as sets); plain IS DISTINCT FROM otherwise. */
  readonly comparedAs?: (expr: string) => string;
}

export const USER_FIELDS: readonly UserField[] = [
  { wire: 'email', column: 'email', kind: 'text', change: 'event' },
  { wire: 'first_name', column: 'first_name', kind: 'text', change: 'event' },
  { wire: 'last_name', column: 'last_name', kind: 'text', change: 'event' },
  { wire: 'admin', column: 'admin', kind: 'boolean', change: 'event', absentKeepsStored: true },
  { wire: 'is_active', column: 'is_active', kind: 'boolean', change: 'event', absentKeepsStored: true },
  // The same permissions in another order are no change (migration 006).
  {
    wire: 'tenant_permissions',
    column: 'tenant_permissions',
    kind: 'text[]',
    change: 'event',
    absentKeepsStored: true,
    comparedAs: (x) => `tines_sorted_text(${x})`,
  },
  { wire: 'scim_uid', column: 'scim_uid', kind: 'text', change: 'event' },
  { wire: 'created_at', column: 'tines_created_at', kind: 'timestamp', change: 'silent' },
  { wire: 'updated_at', column: 'tines_updated_at', kind: 'timestamp', change: 'silent' },
  { wire: 'last_seen', column: 'last_seen_at', kind: 'timestamp', change: 'silent' },
];

/** A field's value once normalised: text, a boolean, an ISO 8601 UTC timestamp, or text[]; null when Tines sent none. */
export type FieldValue = string | boolean | string[] | null;

/** The SQL type of each kind's column. */
export const SQL_TYPE: Readonly<Record<FieldKind, string>> = { text: 'text', boolean: 'boolean', timestamp: 'timestamptz', 'text[]': 'text[]' };
