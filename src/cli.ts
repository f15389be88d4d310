#!/usr/bin/env node
// tines-connector <command>: configuration first (exit 2 on any error, before
// any network or database call), then the command, then a clean close.
import dotenv from 'dotenv';
import { pino } from 'pino';
import { ConfigError, loadConfig } from './config.js';
import { createContext, type CommandContext } from './commands/context.js';
import { createLogger } from './log.js';

type Handler = (ctx: CommandContext) => Promise<number>;

// Each command's module is loaded only when it runs: a one-shot `sync` need not
// pay for the daemon's metrics library at start-up.
const COMMANDS: Record<string, { load: () => Promise<Handler>; help: string; logsTo?: 'stdout' }> = {
  run: {
    load: async () => (await import('./commands/run.js')).runCommand,
    help: 'run                                     the daemon: sync at start, then on SYNC_SCHEDULE',
    logsTo: 'stdout',
  },
  sync: { load: async () => (await import('./commands/sync.js')).syncCommand, help: 'sync [--allow-mass-removal] [--json]   migrate, one sync now, print its summary' },
  migrate: { load: async () => (await import('./commands/migrate.js')).migrateCommand, help: 'migrate                                 apply pending migrations' },
  status: { load: async () => (await import('./commands/status.js')).statusCommand, help: 'status [--json]                         state, last run, last success, user counts' },
  reconnect: {
    load: async () => (await import('./commands/reconnect.js')).reconnectCommand,
    help: 'reconnect                               one authenticated call; on success the connector is active',
  },
  delete: { load: async () => (await import('./commands/delete.js')).deleteCommand, help: 'delete --yes                            remove the connector and all its rows' },
  report: {
    load: async () => (await import('./commands/report.js')).reportCommand,
    help: 'report [--json]                         insights: joiners, leavers, idle, privileged, external',
  },
  connectors: {
    load: async () => (await import('./commands/connectors.js')).connectorsCommand,
    help: 'connectors add|list|show|set-key|remove|rekey   registered connectors: other Tines tenants (see README)',
  },
  query: { load: async () => (await import('./commands/query.js')).queryCommand, help: 'query "<SQL>" [--json]                  one read-only statement' },
};

export function usage(): string {
  return ['usage: tines-connector <command>', '', ...Object.values(COMMANDS).map((c) => `  ${c.help}`), '  demo [--syncs N] [--data-dir DIR] [--schedule CRON]   a simulated tenant and the real daemon; Ctrl-C stops', '', 'Configuration comes from the environment (and .env); see README.md.'].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(`${usage()}\n`);
    return name ? 0 : 2;
  }
  // The demo brings its own tenant and configuration.
  if (name === 'demo') return (await import('./commands/demo.js')).demoCommand(args);
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`unknown command "${name}"\n\n${usage()}\n`);
    return 2;
  }
  dotenv.config({ quiet: true });
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`tines-connector: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger(config.logLevel, pino.destination({ fd: command.logsTo === 'stdout' ? 1 : 2, sync: true }));
  // `migrate` reports what it applies, so opening the database must not apply it first.
  // Commands that look (or delete) never install the schema in a database that has none.
  const looksOnly = name === 'status' || name === 'report' || name === 'query' || name === 'delete' || (name === 'connectors' && ['list', 'show', 'remove'].includes(args[0] ?? ''));
  const ctx = createContext(config, log, args, { migrate: name === 'migrate' ? false : looksOnly ? 'if-installed' : true });
  try {
    return await (await command.load())(ctx);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    log.error({ command: name, err: { message, name: (err as Error)?.name } }, `${name} failed: ${message}`);
    process.stderr.write(`tines-connector ${name}: ${message}\n`);
    return 1;
  } finally {
    await ctx.close().catch(() => undefined);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`tines-connector: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
