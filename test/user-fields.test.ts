// The one list of stored user fields matches the schema: every listed column
// exists in tines_users with the type the staging table gives it, and every
// column of tines_users that holds a Tines field is listed.
import { describe, expect, it } from 'vitest';
import { SQL_TYPE, USER_FIELDS } from '../src/tines/user-fields.js';
import { backends, openTestDb } from './helpers/backends.js';

/** tines_users columns that are not Tines fields: the key, the raw object, and the connector's own bookkeeping. */
const NOT_FIELDS = ['connector_id', 'tines_user_id', 'raw', 'raw_hash', 'first_seen_at', 'removed_at', 'row_updated_at'];

describe.each(backends())('USER_FIELDS against tines_users (%s)', (backend) => {
  const t = openTestDb(backend);

  it('lists exactly the field columns, with their types', async () => {
    const r = await t.db.query<{ column_name: string; type: string }>(
      `SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS type
         FROM pg_attribute a WHERE a.attrelid = 'tines_users'::regclass AND a.attnum > 0 AND NOT a.attisdropped`,
    );
    const stored = Object.fromEntries(r.rows.filter((c) => !NOT_FIELDS.includes(c.column_name)).map((c) => [c.column_name, c.type]));
    const pgType: Record<string, string> = { text: 'text', boolean: 'boolean', timestamptz: 'timestamp with time zone', 'text[]': 'text[]' };
    expect(stored).toEqual(Object.fromEntries(USER_FIELDS.map((f) => [f.column, pgType[SQL_TYPE[f.kind]]])));
  });
});
