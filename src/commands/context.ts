// What every command gets: the frozen config, a logger (stderr, so stdout stays
// the command's answer), stdout, and the database opened on first use.
import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import { migrate } from '../db/migrate.js';
import { openDatabase } from '../db/open.js';
import type { Logger } from '../log.js';

export interface CommandContext {
  config: Config;
  log: Logger;
  out: (text: string) => void;
  args: string[];
  /** Opens (once) and migrates the configured database. */
  db(): Promise<Database>;
  close(): Promise<void>;
}

export function createContext(config: Config, log: Logger, args: string[], opts: { migrate?: boolean } = {}): CommandContext {
  let opened: Promise<Database> | undefined;
  return {
    config,
    log,
    args,
    out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
    db() {
      opened ??= (async () => {
        const db = await openDatabase(config, log);
        if (opts.migrate !== false) {
          try {
            await migrate(db, log.child({ component: 'migrate' }));
          } catch (err) {
            await db.close().catch(() => undefined);
            throw err;
          }
        }
        return db;
      })();
      return opened;
    },
    async close() {
      if (opened) await (await opened.catch(() => undefined))?.close();
    },
  };
}

export function hasFlag(args: readonly string[], flag: string): boolean {
  return args.includes(flag);
}
