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
import { createLogger, logDestination } from './log.js';

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
  return environments ? loadConfig(process.env) : loadSettings(process.env);
}

async function runCommand(command: CommandSpec, args: ParsedArgs): Promise<number> {
  if (command.needs === 'nothing') return (await command.load())(args);
  let config: Settings;
  try {
    config = configurationFor(command, args);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`tines-connector ${command.name}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const fd = command.logsTo === 'stdout' ? 1 : 2;
  // The log's reader gone (`run | head`): the daemon stops as on SIGTERM (its run ends cleanly, exit 0); a one-shot command ends quietly.
  const onLogClosed = () => (command.name === 'run' ? process.kill(process.pid, 'SIGTERM') : process.exit(0));
  const log = createLogger(config.logLevel, await logDestination(config.logFormat, fd, onLogClosed));
  const ctx = createContext(config, log, args, { migrate: command.migrate ?? true });
  try {
    // configurationFor gave the connector's Config to the commands that need it.
    const handler = (await command.load()) as (c: typeof ctx) => Promise<number>;
    return await handler(ctx);
  } catch (err) {
    // Once, for a person; as a JSON line only when the logs are asked to be JSON.
    const message = explainFailure(err, config);
    if (config.logFormat === 'json') log.error({ command: command.name, err: { message, name: (err as Error)?.name } }, `${command.name} failed: ${message}`);
    else process.stderr.write(`tines-connector ${command.name}: ${message}\n`);
    return 1;
  } finally {
    await ctx.close().catch(() => undefined);
  }
}

export async function main(argv: string[]): Promise<number> {
  endQuietlyOnClosedPipe();
  const parsed = parseCommandLine(argv);
  if (parsed.kind === 'print') {
    (parsed.stream === 'stdout' ? process.stdout : process.stderr).write(`${parsed.text}\n`);
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
