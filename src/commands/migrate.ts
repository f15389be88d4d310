// `migrate`: apply pending migrations.
import { migrate } from '../db/migrate.js';
import type { CommandContext } from './context.js';

export async function migrateCommand(ctx: CommandContext): Promise<number> {
  const db = await ctx.db();
  const applied = await migrate(db, ctx.log.child({ component: 'migrate' }), { queueUrl: ctx.config.database.url });
  ctx.out(applied.length > 0 ? `applied ${applied.length} migrations: ${applied.join(', ')}` : 'the database is up to date');
  return 0;
}
