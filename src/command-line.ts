// The command line in one table: every command (a subcommand such as
// `connectors add` is an entry of its own), its arguments, its flags, its
// usage text and what it needs; and the parser that reads argv against the
// table with node:util parseArgs in strict mode. An unknown flag, a missing
// value or a stray argument is an error that names it (exit 2); `--help`
// anywhere prints that command's usage and runs nothing.
//
// Adding a command is one entry in COMMANDS: its name, a synopsis of its
// positional arguments, its flags, a summary, what it needs, and a lazy load of
// its handler, which receives the parsed flags and positionals in its context.
import { parseArgs } from 'node:util';
import type { Config, Settings } from './config.js';
import type { CommandContext, MigrateOnOpen } from './commands/context.js';
import { VERSION } from './version.js';

export const PROGRAM = 'tines-connector';

export interface FlagSpec {
  type: 'boolean' | 'string';
  /** A one-letter alias (`-y`). */
  short?: string;
  /** The value's placeholder in usage text (`N`, `FILE`); string flags only. */
  value?: string;
  help: string;
}

export interface PositionalSpec {
  /** Shown in usage: `"<SQL>"`, `NAME`, `FILE`. */
  name: string;
  required: boolean;
}

/** The parsed flags (by long name, without dashes) and positional arguments of one invocation. */
export interface ParsedArgs {
  flags: Readonly<Record<string, string | boolean | undefined>>;
  positionals: readonly string[];
}

/**
 * What a command needs before it runs:
 * - `connector`: the environment's connector (TINES_TENANT_DOMAIN and its key) and the database;
 * - `database`: the database settings only (commands that read, migrate or delete rows);
 * - `nothing`: no configuration at all (the demo brings its own).
 */
export type Needs = 'connector' | 'database' | 'nothing';

interface Common {
  /** `sync`, or `connectors add` for a subcommand. */
  name: string;
  summary: string;
  positionals?: readonly PositionalSpec[];
  flags?: Readonly<Record<string, FlagSpec>>;
  /** More lines for `<command> --help`. */
  details?: string;
  /** Where its logs go: stderr by default, so stdout stays the command's answer. */
  logsTo?: 'stdout';
  /** Whether opening the database applies pending migrations (see MigrateOnOpen); default true. */
  migrate?: MigrateOnOpen;
  /** It never syncs nor calls Tines: bad variables only syncing reads (SYNC_SCHEDULE, TINES_PAGE_SIZE…) do not stop it. */
  notSyncing?: true;
}

export type CommandSpec = Common &
  (
    | { needs: 'connector'; load: () => Promise<(ctx: CommandContext<Config>) => Promise<number>> }
    | { needs: 'database'; load: () => Promise<(ctx: CommandContext<Settings>) => Promise<number>> }
    | { needs: 'nothing'; load: () => Promise<(args: ParsedArgs) => Promise<number>> }
  );

const JSON_FLAG: FlagSpec = { type: 'boolean', help: 'print one JSON document instead of text' };
const CONNECTOR_FLAG: FlagSpec = { type: 'string', value: 'NAME', help: "the connector (default: CONNECTOR_NAME, the environment's)" };
const KEY_FLAGS: Readonly<Record<string, FlagSpec>> = {
  'key-file': { type: 'string', value: 'FILE', help: 'read the Tines API key from FILE' },
  'key-stdin': { type: 'boolean', help: 'read the Tines API key from stdin (not echoed on a terminal); never give a key as an argument' },
};
const CONNECT_EXIT =
  'Exit codes: 0 saved, 1 Tines unreachable (nothing saved), 2 bad input, name taken or no master key, 3 key refused by Tines (nothing saved).';

/** Every command. One source of truth: the usage text, the parser and the dispatcher all read it. */
export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'run',
    summary: 'the daemon: sync at start, then on SYNC_SCHEDULE, until SIGTERM/SIGINT',
    needs: 'connector',
    logsTo: 'stdout',
    load: async () => (await import('./commands/run.js')).runCommand,
  },
  {
    name: 'sync',
    summary: 'migrate, one sync now, print its summary',
    details: 'Exit codes: 0 succeeded, 1 failed, 2 bad configuration, 3 reconnect required, 4 held back (nothing removed), 5 another sync is running.',
    flags: {
      'allow-mass-removal': { type: 'boolean', help: 'remove users even beyond REMOVAL_GUARD_PERCENT / REMOVAL_GUARD_MIN (once)' },
      json: JSON_FLAG,
      connector: CONNECTOR_FLAG,
    },
    // With --connector NAME, only the database settings (see cli.ts).
    needs: 'connector',
    load: async () => (await import('./commands/sync.js')).syncCommand,
  },
  {
    name: 'migrate',
    notSyncing: true,
    summary: 'apply pending migrations',
    needs: 'database',
    migrate: false,
    load: async () => (await import('./commands/migrate.js')).migrateCommand,
  },
  {
    name: 'status',
    notSyncing: true,
    summary: 'each connector: state, reason, last run, last success, user counts',
    flags: { json: JSON_FLAG, connector: { ...CONNECTOR_FLAG, help: 'only this connector' } },
    needs: 'database',
    migrate: 'if-installed',
    load: async () => (await import('./commands/status.js')).statusCommand,
  },
  {
    name: 'reconnect',
    summary: 'one authenticated call to Tines; on success the connector is active again',
    details: 'Exit codes: 0 Tines accepted the key, 1 Tines unreachable, 2 no such connector, 3 still refused.',
    flags: { connector: CONNECTOR_FLAG },
    needs: 'connector',
    load: async () => (await import('./commands/reconnect.js')).reconnectCommand,
  },
  {
    name: 'delete',
    notSyncing: true,
    summary: 'remove the connector (CONNECTOR_NAME) and every row that belongs to it',
    flags: { yes: { type: 'boolean', help: 'really delete (without it, nothing is deleted and the exit code is 2)' }, connector: CONNECTOR_FLAG },
    needs: 'database',
    migrate: 'if-installed',
    load: async () => (await import('./commands/delete.js')).deleteCommand,
  },
  {
    name: 'query',
    notSyncing: true,
    summary: 'one read-only statement (SELECT, WITH, VALUES, TABLE, SHOW, EXPLAIN)',
    positionals: [{ name: '"<SQL>"', required: true }],
    flags: {
      format: { type: 'string', value: 'table|json|csv', help: 'output format (default table)' },
      json: { type: 'boolean', help: 'the same as --format json' },
    },
    details: 'Table cells are shown whole; control characters in text are shown escaped (\\n, \\u001b). JSON and CSV carry the data as stored.',
    needs: 'database',
    migrate: 'if-installed',
    load: async () => (await import('./commands/query.js')).queryCommand,
  },
  {
    name: 'report',
    notSyncing: true,
    summary: 'insights per connector: joiners, leavers, idle, privileged, external',
    flags: { json: JSON_FLAG, connector: { ...CONNECTOR_FLAG, help: 'only this connector' } },
    needs: 'database',
    migrate: 'if-installed',
    load: async () => (await import('./commands/report.js')).reportCommand,
  },
  {
    name: 'connectors add',
    summary: 'register another Tines tenant: one call to Tines checks the key, then it is saved, sealed',
    flags: {
      name: { type: 'string', value: 'NAME', help: 'the connector\'s unique name (letters, digits, ".", "_", "-"; at most 100)' },
      domain: { type: 'string', value: 'DOMAIN', help: 'the tenant: acme-1234.tines.com or https://acme-1234.tines.com' },
      ...KEY_FLAGS,
      schedule: { type: 'string', value: 'CRON', help: 'its own sync schedule (default SYNC_SCHEDULE)' },
    },
    details: `${CONNECT_EXIT}\nNeeds CONNECTOR_SECRETS_KEY (or _FILE): the master key its API key is sealed under.`,
    needs: 'database',
    load: async () => (await import('./commands/connectors.js')).connectorsAdd,
  },
  {
    name: 'connectors list',
    notSyncing: true,
    summary: 'every connector: source, tenant, state, schedule, key fingerprint, last success',
    flags: { json: JSON_FLAG },
    needs: 'database',
    migrate: 'if-installed',
    load: async () => (await import('./commands/connectors.js')).connectorsList,
  },
  {
    name: 'connectors show',
    notSyncing: true,
    summary: 'one connector with its last runs',
    positionals: [{ name: 'NAME', required: true }],
    flags: { json: JSON_FLAG },
    needs: 'database',
    migrate: 'if-installed',
    load: async () => (await import('./commands/connectors.js')).connectorsShow,
  },
  {
    name: 'connectors set-key',
    summary: "a registered connector's new key, checked like add; on success it is active again",
    positionals: [{ name: 'NAME', required: true }],
    flags: KEY_FLAGS,
    details: CONNECT_EXIT,
    needs: 'database',
    load: async () => (await import('./commands/connectors.js')).connectorsSetKey,
  },
  {
    name: 'connectors remove',
    summary: 'remove a registered connector and every row that belongs to it',
    positionals: [{ name: 'NAME', required: true }],
    flags: { yes: { type: 'boolean', help: 'really remove (without it, nothing is removed and the exit code is 2)' } },
    needs: 'database',
    migrate: 'if-installed',
    load: async () => (await import('./commands/connectors.js')).connectorsRemove,
  },
  {
    name: 'connectors rekey',
    summary: 'reseal every key under the current master key (after CONNECTOR_SECRETS_KEY changed; the old one in CONNECTOR_SECRETS_KEY_PREVIOUS)',
    details: 'Exit codes: 0 every key is under the current master key, 1 some did not open (listed), 2 no master key.',
    needs: 'database',
    load: async () => (await import('./commands/connectors.js')).connectorsRekey,
  },
  {
    name: 'people import',
    notSyncing: true,
    summary: "load the organisation's directory (CSV) as one source's full snapshot: who is behind each account",
    positionals: [{ name: 'FILE.csv', required: true }],
    flags: {
      source: { type: 'string', value: 'NAME', help: "the snapshot's source: only its people can be departed by it (default directory)" },
      'allow-mass-departure': { type: 'boolean', help: 'depart people even beyond REMOVAL_GUARD_PERCENT / REMOVAL_GUARD_MIN (once)' },
      json: JSON_FLAG,
    },
    details:
      'A header row is required with an "email" column; name, status (active|suspended|departed), status_changed_at, department, manager_email and external_id are optional.\n' +
      'Exit codes: 0 loaded, 1 failed, 2 bad rows or an unreadable file (nothing loaded), 4 held: too many departures (nothing loaded).',
    needs: 'database',
    load: async () => (await import('./commands/people.js')).peopleImportCommand,
  },
  {
    name: 'demo',
    summary: 'a simulated tenant, the real daemon and the embedded database; Ctrl-C stops',
    flags: {
      syncs: { type: 'string', value: 'N', help: 'stop after N syncs (default: run until Ctrl-C)' },
      'data-dir': { type: 'string', value: 'DIR', help: 'keep the embedded database in DIR (default: a new temporary directory)' },
      schedule: { type: 'string', value: 'CRON', help: 'the sync schedule (default every 3 seconds: */3 * * * * *)' },
    },
    needs: 'nothing',
    load: async () => (await import('./commands/demo.js')).demoCommand,
  },
];

/** The outcome of reading argv: run a command, or print a text and exit with a code. */
export type Parsed = { kind: 'run'; command: CommandSpec; args: ParsedArgs } | { kind: 'print'; stream: 'stdout' | 'stderr'; text: string; code: number };

/** `sync [--allow-mass-removal] [--json]`, `query "<SQL>" [--format table|json|csv] [--json]`. */
export function synopsis(command: CommandSpec): string {
  const positionals = (command.positionals ?? []).map((p) => (p.required ? p.name : `[${p.name}]`));
  const flags = Object.entries(command.flags ?? {}).map(([name, f]) => `[--${name}${f.type === 'string' ? ` ${f.value ?? 'VALUE'}` : ''}]`);
  return [command.name, ...positionals, ...flags].join(' ');
}

/** `<command> --help`: synopsis, summary, flags, details. */
export function commandUsage(command: CommandSpec): string {
  const flagLines = Object.entries(command.flags ?? {}).map(
    ([name, f]) => [`${f.short ? `-${f.short}, ` : ''}--${name}${f.type === 'string' ? ` ${f.value ?? 'VALUE'}` : ''}`, f.help] as const,
  );
  flagLines.push(['-h, --help', 'print this help and exit']);
  const width = Math.max(...flagLines.map(([l]) => l.length));
  return [
    `usage: ${PROGRAM} ${synopsis(command)}`,
    '',
    command.summary,
    '',
    'options:',
    ...flagLines.map(([l, h]) => `  ${l.padEnd(width)}  ${h}`),
    ...(command.details ? ['', command.details] : []),
    ...(command.needs !== 'nothing'
      ? [
          '',
          command.needs === 'connector'
            ? 'Needs TINES_TENANT_DOMAIN and TINES_API_KEY (or TINES_API_KEY_FILE), and the database settings.'
            : 'Needs only the database settings (DATABASE_URL, or DATA_DIR for the embedded database).',
        ]
      : []),
  ].join('\n');
}

/** The overview: every command (or every subcommand of `group`) with its synopsis and summary. */
export function usage(table: readonly CommandSpec[] = COMMANDS, group?: string): string {
  const shown = group ? table.filter((c) => c.name.startsWith(`${group} `)) : table;
  const rows = shown.map((c) => [synopsis(c), c.summary] as const);
  const width = Math.min(48, Math.max(...rows.map(([s]) => s.length)));
  return [
    `usage: ${PROGRAM} ${group ? `${group} <subcommand>` : '<command>'} [options]`,
    '',
    ...rows.map(([s, summary]) => (s.length > width ? `  ${s}\n  ${''.padEnd(width)}  ${summary}` : `  ${s.padEnd(width)}  ${summary}`)),
    '',
    group
      ? `\`${PROGRAM} ${group} <subcommand> --help\` describes one.`
      : `\`${PROGRAM} <command> --help\` describes one; \`${PROGRAM} --version\` prints the version.\nConfiguration comes from the environment (and .env); see README.md.`,
  ].join('\n');
}

const HELP = new Set(['--help', '-h']);
const VERSION_FLAGS = new Set(['--version', '-V', 'version']);

/**
 * An argument that begins with `-` but cannot be a flag (what would be its name
 * holds blanks: a statement that opens with a `--` comment) is a positional.
 */
function looksLikeFlag(arg: string): boolean {
  if (!arg.startsWith('-') || arg === '-') return false;
  const name = arg.replace(/^--?/, '').split('=')[0]!;
  return name.length > 0 && !/\s/.test(name);
}

/** `--syncs -1` as `--syncs=-1` when `-1` is not one of the command's flags. */
function joinDashValues(args: readonly string[], flags: Readonly<Record<string, FlagSpec>>): string[] {
  const known = new Set(Object.entries(flags).flatMap(([name, f]) => [`--${name}`, ...(f.short ? [`-${f.short}`] : [])]));
  const takesValue = (a: string) =>
    Object.entries(flags).some(([name, f]) => f.type === 'string' && (a === `--${name}` || (f.short !== undefined && a === `-${f.short}`)));
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const next = args[i + 1];
    if (takesValue(a) && next !== undefined && next.startsWith('-') && next !== '--' && !known.has(next.split('=')[0]!) && !HELP.has(next)) {
      out.push(`${a.startsWith('--') ? a : `--${Object.entries(flags).find(([, f]) => `-${f.short}` === a)![0]}`}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** Reads argv (without node and the script) against the table. */
export function parseCommandLine(argv: readonly string[], table: readonly CommandSpec[] = COMMANDS): Parsed {
  const [first, ...rest] = argv;
  if (first === undefined) return { kind: 'print', stream: 'stderr', text: usage(table), code: 2 };
  if (HELP.has(first) || first === 'help') {
    const about = rest.join(' ');
    if (!about) return { kind: 'print', stream: 'stdout', text: usage(table), code: 0 };
    const target = table.find((c) => c.name === about);
    if (target) return { kind: 'print', stream: 'stdout', text: commandUsage(target), code: 0 };
    if (table.some((c) => c.name.startsWith(`${about} `))) return { kind: 'print', stream: 'stdout', text: usage(table, about), code: 0 };
    return { kind: 'print', stream: 'stderr', text: `${PROGRAM}: unknown command "${about}"\n\n${usage(table)}`, code: 2 };
  }
  if (VERSION_FLAGS.has(first)) {
    if (rest.length > 0) return { kind: 'print', stream: 'stderr', text: `${PROGRAM} ${first}: unexpected argument ${JSON.stringify(rest[0])}`, code: 2 };
    return { kind: 'print', stream: 'stdout', text: `${PROGRAM} ${VERSION}`, code: 0 };
  }

  // A subcommand (`connectors add`) before a command of that name alone.
  const second = rest[0];
  let command = second !== undefined ? table.find((c) => c.name === `${first} ${second}`) : undefined;
  let args = command ? rest.slice(1) : rest;
  command ??= table.find((c) => c.name === first);
  if (!command) {
    if (table.some((c) => c.name.startsWith(`${first} `))) {
      // A group: alone or with --help it lists its subcommands; anything else is unknown.
      if (second === undefined) return { kind: 'print', stream: 'stderr', text: usage(table, first), code: 2 };
      if (HELP.has(second)) return { kind: 'print', stream: 'stdout', text: usage(table, first), code: 0 };
      return { kind: 'print', stream: 'stderr', text: `${PROGRAM} ${first}: unknown subcommand "${second}"\n\n${usage(table, first)}`, code: 2 };
    }
    return { kind: 'print', stream: 'stderr', text: `${PROGRAM}: unknown command "${first}"\n\n${usage(table)}`, code: 2 };
  }
  const terminator = args.indexOf('--');
  if ((terminator < 0 ? args : args.slice(0, terminator)).some((a) => HELP.has(a))) {
    return { kind: 'print', stream: 'stdout', text: commandUsage(command), code: 0 };
  }

  // A string flag's value that begins with `-` (`--syncs -1`) is its value, not a flag parseArgs calls ambiguous.
  if (terminator < 0) args = joinDashValues(args, command.flags ?? {});
  // Arguments that only look like flags travel through parseArgs as placeholders.
  const stashed: string[] = [];
  if (terminator < 0) args = args.map((a) => (a.startsWith('-') && !looksLikeFlag(a) ? `\u0000${stashed.push(a) - 1}` : a));
  const specs = command.positionals ?? [];
  const fail = (message: string): Parsed => ({
    kind: 'print',
    stream: 'stderr',
    text: `${PROGRAM} ${command.name}: ${message}\nusage: ${PROGRAM} ${synopsis(command)}\n(\`${PROGRAM} ${command.name} --help\` for more)`,
    code: 2,
  });
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: Object.fromEntries(Object.entries(command.flags ?? {}).map(([name, f]) => [name, { type: f.type, ...(f.short ? { short: f.short } : {}) }])),
      strict: true,
      allowPositionals: specs.length > 0,
    });
  } catch (err) {
    // parseArgs names the flag; its advice about `--` is for programs, not for people.
    return fail((err as Error).message.split('\n')[0]!.replace(/\s*To specify a positional argument.*$/, ''));
  }
  const positionals = parsed.positionals.map((p) => (p.startsWith('\u0000') ? stashed[Number(p.slice(1))]! : p));
  const required = specs.filter((p) => p.required).length;
  if (positionals.length < required) return fail(`missing ${specs[positionals.length]!.name}`);
  if (positionals.length > specs.length) return fail(`unexpected argument ${JSON.stringify(positionals[specs.length])}`);
  return { kind: 'run', command, args: { flags: parsed.values as ParsedArgs['flags'], positionals } };
}
