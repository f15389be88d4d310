// One zod schema turns process.env into one frozen, typed Config.
// Secrets (the Tines key, the database URL) are non-enumerable, so neither
// JSON.stringify, a logger nor a spread copy ever carries them.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import cron from 'node-cron';
import { z } from 'zod';
import { masterKey, parseMasterKey, type MasterKey } from './connectors/sealing.js';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Empty strings count as unset, as in `FOO=` lines of an env file. */
const optionalString = z.preprocess(
  (v) => (typeof v === 'string' && v.trim() === '' ? undefined : typeof v === 'string' ? v.trim() : v),
  z.string().optional(),
);
const int = (def: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.preprocess(
    (v) => (v === undefined || (typeof v === 'string' && v.trim() === '') ? undefined : v),
    z.coerce
      .number({ error: 'must be a whole number' })
      .int('must be a whole number')
      .min(min, `must be at least ${min}`)
      .max(max, `must be at most ${max}`)
      .default(def),
  );
const bool = (def: boolean) =>
  z.preprocess(
    (v) => (v === undefined || (typeof v === 'string' && v.trim() === '') ? undefined : String(v).trim().toLowerCase()),
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'], { error: 'must be true or false' })
      .default(def ? 'true' : 'false')
      .transform((v) => ['true', '1', 'yes', 'on'].includes(v)),
  );

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;

/** `acme.tines.com`, `https://acme.tines.com/some/path` → https origin; http only for loopback. */
export function normalizeTenant(input: string): { baseUrl: string; tenantDomain: string } {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(input) ? input : `https://${input}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new Error(`"${input.replace(/\/\/[^@/]*@/, '//***@')}" is not a domain or URL (expected e.g. acme-1234.tines.com)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new Error(`scheme ${url.protocol} is not supported (use https://)`);
  }
  if (!url.hostname) throw new Error(`"${input}" has no host name`);
  if (url.username || url.password) throw new Error('must not contain credentials');
  if (url.protocol === 'http:' && !LOOPBACK.test(url.hostname)) {
    throw new Error(`plain http:// is only accepted for loopback hosts; use https://${url.host}`);
  }
  return { baseUrl: url.origin, tenantDomain: url.host };
}

/** A connector's name, wherever it is given (CONNECTOR_NAME, `connectors add`, the admin API). */
export const connectorNameSchema = z
  .string()
  .min(1, 'is required')
  .max(100, 'must be at most 100 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'may contain only letters, digits, ".", "_" and "-" (and start with a letter or digit)');

/** A 5- or 6-field cron expression node-cron accepts (SYNC_SCHEDULE, a connector's own schedule). */
export function isValidCron(v: string): boolean {
  return [5, 6].includes(v.trim().split(/\s+/).length) && cron.validate(v);
}

const schema = z.object({
  // Required by the commands that serve the environment's connector (run, sync, reconnect): see loadConfig.
  TINES_TENANT_DOMAIN: optionalString,
  TINES_API_KEY: optionalString,
  TINES_API_KEY_FILE: optionalString,
  CONNECTOR_NAME: optionalString.pipe(connectorNameSchema.default('tines')),
  DATABASE_URL: optionalString.pipe(
    z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
  ),
  DATA_DIR: optionalString.pipe(z.string().default('./data')),
  SYNC_SCHEDULE: optionalString.pipe(z.string().default('*/15 * * * *').refine(isValidCron, 'is not a valid 5- or 6-field cron expression')),
  SYNC_TIMEZONE: optionalString.pipe(
    z
      .string()
      .default('UTC')
      .refine((tz) => {
        // UTC needs no check; asking ICU about a zone costs ~20 ms of every start-up.
        if (tz === 'UTC') return true;
        try {
          new Intl.DateTimeFormat('en-US', { timeZone: tz });
          return true;
        } catch {
          return false;
        }
      }, 'is not a known IANA time zone (e.g. UTC, Europe/Dublin)'),
  ),
  SYNC_ON_START: bool(true),
  TINES_PAGE_SIZE: int(500, 1, 500),
  // Any positive integer: one past what a double holds exactly is no ceiling to speak of either.
  TINES_REQUESTS_PER_MINUTE: z.preprocess(
    (v) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) && Number(v) > Number.MAX_SAFE_INTEGER ? String(Number.MAX_SAFE_INTEGER) : v),
    int(400, 1),
  ),
  TINES_TIMEOUT_MS: int(30_000, 1),
  TINES_MAX_RETRIES: int(5, 0, 100),
  REMOVAL_GUARD_PERCENT: int(20, 0, 100),
  REMOVAL_GUARD_MIN: int(10, 0),
  HEALTH_PORT: int(8080, 0, 65535),
  SHUTDOWN_TIMEOUT_MS: int(20_000, 0),
  EMBEDDED_PG_PORT: int(0, 0, 65535),
  INACTIVE_AFTER_DAYS: int(90, 1, 36500),
  // Checked here, with everything else, so its problems are reported together with theirs.
  ORG_EMAIL_DOMAINS: optionalString.transform((v, ctx) => {
    const domains = (v ?? '')
      .split(',')
      .map((d) => d.trim().toLowerCase().replace(/^@/, ''))
      .filter(Boolean);
    for (const d of domains) {
      if (!/^[a-z0-9.-]+\.[a-z0-9-]+$/.test(d)) ctx.addIssue({ code: 'custom', message: `"${d}" is not a domain name` });
    }
    return domains;
  }),
  LOG_LEVEL: optionalString.pipe(z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info')),
  // Many connectors in one deployment (CONTRACT.md): the master key of sealed keys, the admin API, scheduling, retention.
  CONNECTOR_SECRETS_KEY: optionalString,
  CONNECTOR_SECRETS_KEY_FILE: optionalString,
  CONNECTOR_SECRETS_KEY_PREVIOUS: optionalString,
  CONNECTOR_SECRETS_KEY_PREVIOUS_FILE: optionalString,
  ADMIN_PORT: int(8081, 0, 65535),
  ADMIN_TOKEN: optionalString,
  ADMIN_TOKEN_FILE: optionalString,
  SYNC_CONCURRENCY: int(4, 1, 1000),
  SYNC_SPREAD_SECONDS: int(60, 0, 86_400),
  // A fleet: how long a sync whose process died may hold its connector before another process syncs it.
  SYNC_STALL_SECONDS: int(120, 30, 86_400),
  RUNS_RETENTION_DAYS: int(90, 1, 36_500),
  // Unset: pretty text when the log goes to a terminal, JSON lines otherwise (see log.ts).
  LOG_FORMAT: optionalString.pipe(z.enum(LOG_FORMATS, { error: `must be one of ${LOG_FORMATS.join(', ')}` }).optional()),
});

/** Shortest ADMIN_TOKEN accepted: a guessable token would open every tenant's key to the network. */
const ADMIN_TOKEN_MIN = 16;

/** Every environment variable the connector reads. */
export const ENV_VARIABLES: readonly string[] = Object.keys(schema.shape);

/**
 * Every setting. The environment's connector (its tenant and key) is there only
 * when TINES_TENANT_DOMAIN is set: commands that only read, migrate or delete
 * rows need nothing of Tines.
 */
export interface Settings {
  readonly connectorName: string;
  readonly tines: {
    /** The environment's connector: both set, or neither. */
    readonly baseUrl?: string;
    readonly tenantDomain?: string;
    /** Non-enumerable. Use readApiKey(config) so a mounted key file is re-read. */
    readonly apiKey?: string;
    readonly apiKeyFile?: string;
    readonly pageSize: number;
    readonly requestsPerMinute: number;
    readonly timeoutMs: number;
    readonly maxRetries: number;
  };
  readonly database: {
    /** Non-enumerable: it may hold a password. Unset: the embedded database. */
    readonly url?: string;
    readonly dataDir: string;
    readonly embeddedPgPort?: number;
  };
  readonly sync: {
    readonly schedule: string;
    readonly timezone: string;
    readonly onStart: boolean;
    readonly removalGuardPercent: number;
    readonly removalGuardMin: number;
  };
  readonly registry: {
    /** Non-enumerable. The master keys that open sealed keys: CONNECTOR_SECRETS_KEY, then the previous one. Empty: none set. */
    readonly masterKeys: readonly MasterKey[];
    readonly syncConcurrency: number;
    readonly spreadSeconds: number;
    /** A fleet: a sync whose process died is taken over by another process within this many seconds. */
    readonly stallSeconds: number;
    readonly runsRetentionDays: number;
  };
  readonly admin: {
    readonly port: number;
    /** Non-enumerable. Unset: no admin API. */
    readonly token?: string;
  };
  readonly healthPort: number;
  readonly shutdownTimeoutMs: number;
  readonly inactiveAfterDays: number;
  readonly orgEmailDomains: readonly string[];
  readonly logLevel: (typeof LOG_LEVELS)[number];
  /** Unset: chosen by where the log goes (see log.ts). */
  readonly logFormat?: LogFormat;
}

/** The settings with the environment's connector: what `run`, `sync` and `reconnect` need. */
export interface Config extends Settings {
  readonly tines: Settings['tines'] & { readonly baseUrl: string; readonly tenantDomain: string };
}

function hide<T extends object>(obj: T, key: string, value: unknown): T {
  Object.defineProperty(obj, key, { value, enumerable: false, writable: false, configurable: false });
  return obj;
}

function deepFreeze<T>(obj: T): T {
  for (const v of Object.values(obj as object)) if (v && typeof v === 'object') deepFreeze(v);
  return Object.freeze(obj);
}

/**
 * Parses the environment for a command that serves the environment's connector:
 * TINES_TENANT_DOMAIN and a key are required. Throws ConfigError naming every
 * bad variable at once.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return parseEnvironment(env, true) as Config;
}

/**
 * Parses the environment for a command that needs no connector of the
 * environment: the Tines variables are checked when set, and required by none.
 * `onlyDatabase` (a command that only reads, migrates or deletes rows): the
 * variables only syncing reads (SYNC_ONLY) do not stop it. Throws ConfigError
 * naming every bad variable at once.
 */
export function loadSettings(env: NodeJS.ProcessEnv = process.env, opts: { onlyDatabase?: boolean } = {}): Settings {
  return parseEnvironment(env, false, opts.onlyDatabase === true);
}

/**
 * Variables only the commands that sync read (the schedule, the Tines client's
 * limits, the daemon's ports and grace): a command that only reads, migrates or
 * deletes rows (loadSettings with onlyDatabase) does not stop on them. `run`,
 * `sync` and `reconnect` (with or without a connector of the environment) still
 * refuse every bad one, all at once.
 */
const SYNC_ONLY = new Set([
  'SYNC_SCHEDULE',
  'SYNC_TIMEZONE',
  'SYNC_ON_START',
  'TINES_PAGE_SIZE',
  'TINES_REQUESTS_PER_MINUTE',
  'TINES_TIMEOUT_MS',
  'TINES_MAX_RETRIES',
  'HEALTH_PORT',
  'SHUTDOWN_TIMEOUT_MS',
  'EMBEDDED_PG_PORT',
]);

function parseEnvironment(env: NodeJS.ProcessEnv, connectorRequired: boolean, lenientOnSyncing = false): Settings {
  let parsed = schema.safeParse(env);
  if (lenientOnSyncing && !parsed.success) {
    // Parsed again without the bad variables this command does not use: their defaults stand in.
    const unused = parsed.error.issues.map((i) => String(i.path[0])).filter((name) => SYNC_ONLY.has(name));
    if (unused.length > 0) parsed = schema.safeParse(Object.fromEntries(Object.entries(env).filter(([name]) => !unused.includes(name))));
  }
  const problems: string[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0] ?? 'environment');
      problems.push(`${name} ${issue.message}`);
    }
  }
  const e = parsed.success ? parsed.data : undefined;

  let tenant: { baseUrl: string; tenantDomain: string } | undefined;
  const rawDomain = typeof env.TINES_TENANT_DOMAIN === 'string' ? env.TINES_TENANT_DOMAIN.trim() : '';
  if (rawDomain) {
    try {
      tenant = normalizeTenant(rawDomain);
    } catch (err) {
      problems.push(`TINES_TENANT_DOMAIN ${(err as Error).message}`);
    }
  } else if (connectorRequired) {
    problems.push('TINES_TENANT_DOMAIN is required (e.g. acme-1234.tines.com)');
  }

  const key = env.TINES_API_KEY?.trim() || undefined;
  const keyFile = env.TINES_API_KEY_FILE?.trim() || undefined;
  if (key && keyFile) problems.push('TINES_API_KEY and TINES_API_KEY_FILE are both set: set only one');
  else if (!key && !keyFile) {
    if (connectorRequired) problems.push('TINES_API_KEY is required (or TINES_API_KEY_FILE, a file holding the key)');
  } else if (keyFile && connectorRequired) {
    try {
      if (!readKeyFile(keyFile)) problems.push(`TINES_API_KEY_FILE ${keyFile} is empty`);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why =
        code === 'ENOENT'
          ? 'no such file'
          : code === 'EACCES'
            ? 'permission denied'
            : code === 'EISDIR'
              ? 'it is a directory'
              : (code ?? (err as Error).message);
      problems.push(`TINES_API_KEY_FILE ${keyFile} cannot be read (${why}${code && code !== why ? `, ${code}` : ''})`);
    }
  }

  const secret = (name: string): string | undefined => {
    const value = env[name]?.trim() || undefined;
    const file = env[`${name}_FILE`]?.trim() || undefined;
    if (value && file) {
      problems.push(`${name} and ${name}_FILE are both set: set only one`);
      return undefined;
    }
    if (!file) return value;
    try {
      const text = readKeyFile(file);
      if (!text) problems.push(`${name}_FILE ${file} is empty`);
      return text || undefined;
    } catch (err) {
      problems.push(`${name}_FILE cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return undefined;
    }
  };
  const masterKeys: MasterKey[] = [];
  const current = secret('CONNECTOR_SECRETS_KEY');
  const previous = secret('CONNECTOR_SECRETS_KEY_PREVIOUS');
  if (previous && !current) {
    problems.push('CONNECTOR_SECRETS_KEY_PREVIOUS is set without CONNECTOR_SECRETS_KEY: the previous master key only serves a rotation to a current one');
  }
  for (const [name, text] of [
    ['CONNECTOR_SECRETS_KEY', current],
    ['CONNECTOR_SECRETS_KEY_PREVIOUS', previous],
  ] as const) {
    if (!text) continue;
    try {
      masterKeys.push(masterKey(parseMasterKey(text)));
    } catch (err) {
      problems.push(`${name}${env[name]?.trim() ? '' : '_FILE'} ${(err as Error).message}`);
    }
  }
  const adminToken = secret('ADMIN_TOKEN');
  if (adminToken !== undefined && adminToken.length < ADMIN_TOKEN_MIN) {
    problems.push(`ADMIN_TOKEN must be at least ${ADMIN_TOKEN_MIN} characters (e.g. \`openssl rand -hex 24\`)`);
  }

  if (problems.length > 0 || !e) throw new ConfigError(problems);

  const tines = hide(
    {
      ...(tenant ? { baseUrl: tenant.baseUrl, tenantDomain: tenant.tenantDomain } : {}),
      ...(keyFile ? { apiKeyFile: resolve(keyFile) } : {}),
      pageSize: e.TINES_PAGE_SIZE,
      requestsPerMinute: e.TINES_REQUESTS_PER_MINUTE,
      timeoutMs: e.TINES_TIMEOUT_MS,
      maxRetries: e.TINES_MAX_RETRIES,
    },
    'apiKey',
    key,
  );
  const database = hide(
    {
      dataDir: resolve(e.DATA_DIR),
      ...(e.EMBEDDED_PG_PORT > 0 ? { embeddedPgPort: e.EMBEDDED_PG_PORT } : {}),
    },
    'url',
    e.DATABASE_URL,
  );
  const config: Settings = {
    connectorName: e.CONNECTOR_NAME,
    tines,
    database,
    sync: {
      schedule: e.SYNC_SCHEDULE,
      timezone: e.SYNC_TIMEZONE,
      onStart: e.SYNC_ON_START,
      removalGuardPercent: e.REMOVAL_GUARD_PERCENT,
      removalGuardMin: e.REMOVAL_GUARD_MIN,
    },
    registry: hide(
      {
        syncConcurrency: e.SYNC_CONCURRENCY,
        spreadSeconds: e.SYNC_SPREAD_SECONDS,
        stallSeconds: e.SYNC_STALL_SECONDS,
        runsRetentionDays: e.RUNS_RETENTION_DAYS,
      },
      'masterKeys',
      Object.freeze(masterKeys),
    ) as Config['registry'],
    admin: hide({ port: e.ADMIN_PORT }, 'token', adminToken),
    healthPort: e.HEALTH_PORT,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    inactiveAfterDays: e.INACTIVE_AFTER_DAYS,
    orgEmailDomains: e.ORG_EMAIL_DOMAINS,
    logLevel: e.LOG_LEVEL,
    ...(e.LOG_FORMAT ? { logFormat: e.LOG_FORMAT } : {}),
  };
  return deepFreeze(config);
}

function readKeyFile(path: string): string {
  return readFileSync(path, 'utf8').trim();
}

/** The key in force now: a key file is re-read on every call, so rotation needs no restart. */
export function readApiKey(config: Settings): string {
  if (config.tines.apiKeyFile) {
    let key: string;
    try {
      key = readKeyFile(config.tines.apiKeyFile);
    } catch (err) {
      throw new Error(`cannot read TINES_API_KEY_FILE ${config.tines.apiKeyFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
    }
    if (!key) throw new Error(`TINES_API_KEY_FILE ${config.tines.apiKeyFile} is empty`);
    return key;
  }
  if (!config.tines.apiKey) throw new Error('TINES_API_KEY is not set (nor TINES_API_KEY_FILE)');
  return config.tines.apiKey;
}
