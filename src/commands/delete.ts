// `delete --yes`: the connector and every row that belongs to it (ON DELETE CASCADE).
import { embeddedDatabaseMissing, schemaInstalled, type CommandContext } from './context.js';

export async function deleteCommand(ctx: CommandContext): Promise<number> {
  const given = typeof ctx.flags.connector === 'string' ? ctx.flags.connector : undefined;
  const name = given ?? ctx.config.connectorName;
  if (!ctx.flags.yes) {
    ctx.out(
      `This removes connector "${name}" and all its users, memberships, runs and events. Run \`tines-connector delete${given ? ` --connector ${name}` : ''} --yes\` to do it.`,
    );
    return 2;
  }
  if (embeddedDatabaseMissing(ctx.config)) {
    ctx.out(`There is no embedded database in ${ctx.config.database.dataDir} (DATA_DIR), so no connector "${name}"; nothing deleted.`);
    return 0;
  }
  const db = await ctx.db();
  if (!(await schemaInstalled(db))) {
    ctx.out(`No tines-connector schema in ${db.description}, so no connector "${name}"; nothing deleted. (Is DATABASE_URL right?)`);
    return 0;
  }
  const r = await db.query<{ users: number }>(
    `WITH c AS (DELETE FROM connectors WHERE name = $1 RETURNING id)
     SELECT (SELECT count(*) FROM tines_users u WHERE u.connector_id IN (SELECT id FROM c))::int AS users, (SELECT count(*) FROM c)::int AS deleted`,
    [name],
  );
  const row = r.rows[0] as { users: number; deleted?: number } | undefined;
  ctx.out(
    (row?.deleted
      ? `Deleted connector "${name}" and the ${row.users} users stored for it, with their memberships, runs and events.`
      : `No connector named "${name}"; nothing deleted.`) +
      `\nRemember to revoke its API key in Tines (Settings → API keys), so no copy of it can still read your tenant.`,
  );
  return 0;
}
