// Connect, then Save: a connector's input is checked, its key is tried with one
// authenticated call to Tines, and only a key Tines accepted is sealed and
// saved. The CLI (`connectors add`, `set-key`) and the admin API share this.
import { z } from 'zod';
import { connectorNameSchema, isValidCron, normalizeTenant, type Settings } from '../config.js';
import type { Database } from '../db/database.js';
import { keyFingerprint, setConnectorStatus } from '../db/connectors.js';
import { ConnectorInputError, ConnectorNameTakenError, ConnectorNotFoundError, TinesAuthError } from '../errors.js';
import type { Logger } from '../log.js';
import { TinesClient } from '../tines/client.js';
import type { ConnectorTarget } from './target.js';
import { baseUrlOf, currentMasterKey, findConnector, insertRegistered, replaceKey, type RegisteredConnector } from './registry.js';

/** The longest API key accepted; Tines' are far shorter. */
const MAX_KEY_CHARS = 4096;

/** A field that must be a string: missing is "is required", anything else "must be a string". */
const requiredString = () => z.string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') });

const apiKeySchema = requiredString()
  .transform((k) => k.trim())
  .pipe(
    z
      .string()
      .min(1, 'is empty')
      .max(MAX_KEY_CHARS, `must be at most ${MAX_KEY_CHARS} characters`)
      .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces'),
  );

const domainSchema = requiredString().transform((v, ctx) => {
  try {
    return normalizeTenant(v.trim());
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const scheduleSchema = z
  .string()
  .transform((v) => v.trim())
  .refine(isValidCron, 'is not a valid 5- or 6-field cron expression')
  .nullish();

/** `{name, tenant_domain, api_key, schedule?}`, as the admin API takes it; unknown fields are refused. */
export const newConnectorSchema = z.strictObject({
  name: requiredString().pipe(connectorNameSchema),
  tenant_domain: domainSchema,
  api_key: apiKeySchema,
  schedule: scheduleSchema,
});

export const newKeySchema = z.strictObject({ api_key: apiKeySchema });

/** Each bad field of a zod error with its message (the first per field); unknown fields are named as such. */
export function fieldsOf(error: z.ZodError): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) fields[k] ??= 'is not a known field';
      continue;
    }
    const f = issue.path.length ? issue.path.join('.') : 'body';
    fields[f] ??= issue.message;
  }
  return fields;
}

export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input);
  if (!r.success) throw new ConnectorInputError(fieldsOf(r.error));
  return r.data;
}

export interface ConnectDeps {
  config: Settings;
  db: Database;
  log: Logger;
  signal?: AbortSignal;
}

/**
 * One authenticated call to Tines (page 1 of the users, one user), no retry,
 * bounded by TINES_TIMEOUT_MS. Resolves with the tenant's user count; rejects
 * with TinesAuthError (refused: 401/403) or TinesRequestError (unreachable, ...).
 */
export async function checkKey(deps: Pick<ConnectDeps, 'config' | 'log' | 'signal'>, baseUrl: string, apiKey: string): Promise<{ count: number | null }> {
  const { config } = deps;
  const client = new TinesClient({
    baseUrl,
    apiKey,
    pageSize: 1,
    requestsPerMinute: config.tines.requestsPerMinute,
    timeoutMs: config.tines.timeoutMs,
    maxRetries: 0,
    logger: deps.log.child({ component: 'tines-client' }),
  });
  return client.checkAccess(deps.signal);
}

export type NewConnector = z.output<typeof newConnectorSchema>;

/**
 * `connectors add` / `POST /api/connectors` (input already parsed with
 * newConnectorSchema): master key present, name free, key accepted by Tines,
 * then saved. Nothing is saved on any error.
 */
export async function addConnector(deps: ConnectDeps, v: NewConnector): Promise<{ connector: RegisteredConnector; count: number | null }> {
  currentMasterKey(deps.config);
  if (deps.config.connectorName === v.name && environmentConnectorConfigured(deps.config)) {
    throw new ConnectorNameTakenError(v.name, "is the environment's connector (CONNECTOR_NAME)");
  }
  if (await findConnector(deps.db, v.name)) throw new ConnectorNameTakenError(v.name);
  const { count } = await checkKey(deps, v.tenant_domain.baseUrl, v.api_key);
  const connector = await insertRegistered(deps.db, deps.config, {
    name: v.name,
    tenantDomain: v.tenant_domain.tenantDomain,
    schedule: v.schedule ?? null,
    apiKey: v.api_key,
  });
  deps.log.info({ connector: connector.name, tenant: connector.tenant_domain, apiKeyFingerprint: connector.api_key_fingerprint }, 'connector registered');
  return { connector, count };
}

/** `connectors set-key` / `PUT /api/connectors/{name}/key` (key parsed with newKeySchema): checked like add; on success the connector is active again. */
export async function setConnectorKey(
  deps: ConnectDeps,
  name: string,
  apiKey: string,
): Promise<{ connector: RegisteredConnector; count: number | null; from: string | undefined }> {
  currentMasterKey(deps.config);
  const existing = await findConnector(deps.db, name);
  if (!existing || existing.source !== 'registry') throw new ConnectorNotFoundError(name, 'registered connector');
  const { count } = await checkKey(deps, baseUrlOf(existing.tenant_domain), apiKey);
  const { row, from } = await replaceKey(deps.db, deps.config, name, apiKey);
  deps.log.info({ connector: name, apiKeyFingerprint: row.api_key_fingerprint }, 'connector key replaced');
  return { connector: row, count, from };
}

/**
 * Reconnect: one authenticated call with the key in force now; accepted → the
 * connector is active again (failures reset); refused → reconnect_required,
 * and the TinesAuthError is rethrown; unreachable → rethrown, nothing changed.
 */
export async function reconnectTarget(
  deps: ConnectDeps,
  target: ConnectorTarget,
): Promise<{ count: number | null; from: string | undefined; fingerprint: string }> {
  const apiKey = await target.readKey();
  const fingerprint = keyFingerprint(apiKey);
  const row = await findConnector(deps.db, target.name);
  if (!row) throw new ConnectorNotFoundError(target.name);
  try {
    const { count } = await checkKey(deps, target.baseUrl, apiKey);
    await deps.db.query('UPDATE connectors SET consecutive_failures = 0, updated_at = now() WHERE id = $1', [row.id]);
    const from = await setConnectorStatus(deps.db, row.id, 'active', null);
    return { count, from, fingerprint };
  } catch (err) {
    if (err instanceof TinesAuthError) await setConnectorStatus(deps.db, row.id, 'reconnect_required', err.message, { refusedFingerprint: fingerprint });
    throw err;
  }
}

/** Whether this configuration has an environment's connector (TINES_TENANT_DOMAIN set). */
export function environmentConnectorConfigured(config: Settings): boolean {
  return Boolean(config.tines?.tenantDomain);
}
