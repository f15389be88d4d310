#!/usr/bin/env node
// tines-connector <command>: the command line first (exit 2 on a bad flag, usage
// and version without touching anything), then the configuration the command
// needs (exit 2 on any error, before any network or database call), then the
// command, then a clean close.
import dotenv from 'dotenv';
import { parseCommandLine, type CommandSpec, type ParsedArgs } from './command-line.js';
import { ConfigError, loadConfig, loadSettings, type Settings } from './config.js';
import { createContext } from './commands/context.js';
import { explainFailure } from './commands/explain.js';
import { visible } from './commands/format.js';
import { CommandRefusal, errorMessage } from './errors.js';
import { createLogger, logDestination, type Logger } from './log.js';
import type { LogFormat } from './config.js';
import { pino } from 'pino';

/**
 * A reader that stops reading (`query … | head`) closes the pipe: the command
 * ends there, quietly and successfully, instead of failing on `write EPIPE`.
 */
function endQuietlyOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(0);
      throw err;
    });
  }
}

/**
 * The configuration the command needs; a ConfigError names every bad variable at
 * once. A command about the environment's connector needs it whole, unless it is
 * told another connector (`--connector NAME`), or it is `run` without
 * TINES_TENANT_DOMAIN, which then serves the registered connectors only.
 */
function configurationFor(command: CommandSpec, args: ParsedArgs): Settings {
  dotenv.config({ quiet: true });
  const environments =
    command.needs === 'connector' && args.flags.connector === undefined && (command.name !== 'run' || Boolean(process.env.TINES_TENANT_DOMAIN?.trim()));
  if (environments) return loadConfig(process.env);
  // Commands that only read, migrate or delete rows do not stop on what only syncing reads.
  return loadSettings(process.env, { onlyDatabase: command.notSyncing === true });
}

/** LOG_FORMAT as the environment says, before (or without) a valid configuration. */
function requestedLogFormat(): LogFormat | undefined {
  const f = process.env.LOG_FORMAT?.trim().toLowerCase();
  return f === 'json' || f === 'pretty' ? f : undefined;
}

/**
 * A failure said once, the same way for every command and every kind (a bad
 * flag, the configuration, the command itself): `tines-connector <cmd>: …` on
 * stderr for a person; one JSON line (component `cli`) with LOG_FORMAT=json.
 * The message is shown with its control characters escaped; Tines' text may be in it.
 */
function reportFailure(commandName: string | undefined, message: string, format: LogFormat | undefined, log?: Logger): void {
  const prefix = `tines-connector${commandName ? ` ${commandName}` : ''}`;
  if (format === 'json') {
    const to = log ?? createLogger('info', pino.destination({ fd: 2, sync: true }));
    to.child({ component: 'cli' }).error({ command: commandName }, `${commandName ? `${commandName} failed: ` : ''}${message}`);
    return;
  }
  process.stderr.write(`${prefix}: ${message.split('\n').map(visible).join('\n')}\n`);
}

async function runCommand(command: CommandSpec, args: ParsedArgs): Promise<number> {
  if (command.needs === 'nothing') {
    try {
      return await (
        await command.load()
      )(args);
    } catch (err) {
      reportFailure(command.name, errorMessage(err), requestedLogFormat());
      return err instanceof CommandRefusal ? err.exitCode : 1;
    }
  }
  let config: Settings;
  try {
    config = configurationFor(command, args);
  } catch (err) {
    if (err instanceof ConfigError) {
      reportFailure(command.name, err.message, requestedLogFormat());
      return 2;
    }
    throw err;
  }
  const fd = command.logsTo === 'stdout' ? 1 : 2;
  // The log's reader gone (`run | head`): the daemon stops as on SIGTERM (its run ends cleanly, exit 0); a one-shot command ends quietly.
  const onLogClosed = () => (command.name === 'run' ? process.kill(process.pid, 'SIGTERM') : process.exit(0));
  // Every line names its component: the command's, unless a part of it (migrate, sync, the Tines client) names its own.
  const log = createLogger(config.logLevel, await logDestination(config.logFormat, fd, onLogClosed)).child({ component: command.name });
  const ctx = createContext(config, log, args, { migrate: command.migrate ?? true });
  try {
    // configurationFor gave the connector's Config to the commands that need it.
    const handler = (await command.load()) as (c: typeof ctx) => Promise<number>;
    return await handler(ctx);
  } catch (err) {
    // Once, for a person; as a JSON line only when the logs are asked to be JSON.
    reportFailure(command.name, explainFailure(err, config), config.logFormat === 'json' ? 'json' : undefined, log);
    return err instanceof CommandRefusal ? err.exitCode : 1;
  } finally {
    await ctx.close().catch(() => undefined);
  }
}

export async function main(argv: string[]): Promise<number> {
  endQuietlyOnClosedPipe();
  const parsed = parseCommandLine(argv);
  if (parsed.kind === 'print') {
    // A usage error is a failure like any other (one JSON line with LOG_FORMAT=json); help and version are answers.
    if (parsed.stream === 'stderr' && requestedLogFormat() === 'json') reportFailure(undefined, parsed.text, 'json');
    else (parsed.stream === 'stdout' ? process.stdout : process.stderr).write(`${parsed.text}\n`);
    return parsed.code;
  }
  return runCommand(parsed.command, parsed.args);
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
