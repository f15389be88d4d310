// The admin HTTP API (CONTRACT.md, "Many connectors in one deployment"): list,
// add (Connect, then Save), re-key, reconnect, sync now and remove connectors.
// fastify with zod validation; every request carries the ADMIN_TOKEN, compared
// in constant time; bodies over 64 KB are refused; errors are
// {"error": {"code", "message", "fields"?}}. No answer ever holds a key.
import { createHash, timingSafeEqual } from 'node:crypto';
import { chmodSync, rmSync } from 'node:fs';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Settings } from '../config.js';
import type { Database } from '../db/database.js';
import { ConnectorInputError, ConnectorNameTakenError, ConnectorNotFoundError, TinesAuthError, TinesRequestError } from '../errors.js';
import type { Logger } from '../log.js';
import { addConnector, newConnectorSchema, newKeySchema, reconnectTarget, setConnectorKey } from './connect.js';
import { currentMasterKey, findConnector, listConnectors, recentRuns, rekeyAll, removeConnector, targetByName } from './registry.js';
import { MasterKeyMissingError } from './sealing.js';
import { getConnector, keyFingerprint, reconnectPending } from '../db/connectors.js';

export const ADMIN_BODY_LIMIT = 64 * 1024;

/** What the API asks of the daemon that serves it. */
export interface AdminControl {
  /** Starts a sync of the named connector now: accepted, busy (one is running), or unknown (not served here). */
  syncNow(name: string): 'accepted' | 'busy' | 'unknown';
  /** Called after a connector was added, re-keyed or removed, so the schedule follows at once. */
  changed(): void;
}

export interface AdminApiOptions {
  config: Settings;
  db: Database;
  log: Logger;
  control: AdminControl;
  /** Required bearer token; undefined only on the DATA_DIR socket, which file permissions guard. */
  token: string | undefined;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields?: Record<string, string>,
  ) {
    super(message);
  }
}

/** Both sides hashed first: equal lengths for timingSafeEqual, and no early exit on length. */
function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** What a failure looks like to a client: status, code, message (and fields for bad input). */
function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (hasZodFastifySchemaValidationErrors(err)) {
    const fields: Record<string, string> = {};
    for (const v of err.validation) {
      const keys = (v.params as { keys?: string[] }).keys;
      if (v.keyword === 'unrecognized_keys' && keys) for (const k of keys) fields[k] ??= 'is not a known field';
      else fields[v.instancePath.replace(/^\//, '').replace(/\//g, '.') || 'body'] ??= v.message ?? 'is invalid';
    }
    return new ApiError(
      400,
      'invalid_input',
      `invalid ${err.validationContext ?? 'request'}: ${Object.entries(fields)
        .map(([f, m]) => `${f} ${m}`)
        .join('; ')}`,
      fields,
    );
  }
  if (err instanceof ConnectorInputError) return new ApiError(400, 'invalid_input', err.message, { ...err.fields });
  if (err instanceof ConnectorNameTakenError) return new ApiError(409, 'name_taken', err.message);
  if (err instanceof ConnectorNotFoundError) return new ApiError(404, 'not_found', err.message);
  if (err instanceof MasterKeyMissingError) return new ApiError(503, 'master_key_missing', err.message);
  if (err instanceof TinesAuthError)
    return new ApiError(422, 'key_refused', err.message.replace(/, update TINES_API_KEY or TINES_API_KEY_FILE, then run `tines-connector reconnect`/, ''));
  if (err instanceof TinesRequestError) return new ApiError(502, 'tines_unreachable', `Tines could not be reached or did not answer properly: ${err.message}`);
  const fe = err as FastifyError;
  if (fe?.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new ApiError(413, 'body_too_large', `the body is larger than ${ADMIN_BODY_LIMIT} bytes`);
  if (fe?.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new ApiError(415, 'unsupported_media_type', 'send application/json');
  if (fe?.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || fe?.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || fe instanceof SyntaxError) {
    return new ApiError(400, 'invalid_json', 'the body is not valid JSON');
  }
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) return new ApiError(fe.statusCode, 'bad_request', fe.message);
  return new ApiError(500, 'internal', 'internal error; see the daemon log');
}

const nameParams = z.object({ name: z.string() });

export async function buildAdminApi(opts: AdminApiOptions): Promise<FastifyInstance> {
  const { config, db, control } = opts;
  const log = opts.log;
  const app = Fastify({ bodyLimit: ADMIN_BODY_LIMIT, logger: false, return503OnClosing: true, forceCloseConnections: true });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  app.setErrorHandler((err, req, reply) => {
    const e = toApiError(err);
    if (e.status >= 500 && e.code === 'internal')
      log.error({ err: { message: (err as Error).message, name: (err as Error).name }, method: req.method, url: req.url }, 'admin API request failed');
    void reply.status(e.status).send({ error: { code: e.code, message: e.message, ...(e.fields ? { fields: e.fields } : {}) } });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` } });
  });
  if (opts.token !== undefined) {
    const token = opts.token;
    app.addHook('onRequest', async (req) => {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
      if (!m || !tokenMatches(m[1]!, token)) {
        log.warn({ method: req.method, url: req.url.split('?')[0], ip: req.ip }, 'admin API request without a valid token refused');
        throw new ApiError(401, 'unauthorized', 'send Authorization: Bearer <ADMIN_TOKEN>');
      }
    });
  }
  app.addHook('onResponse', async (req, reply) => {
    log.info({ method: req.method, url: req.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'admin API request');
  });

  const r = app.withTypeProvider<ZodTypeProvider>();
  const deps = (signal?: AbortSignal) => ({ config, db, log, signal });

  r.get('/api/connectors', async () => ({ connectors: await listConnectors(db) }));

  r.get('/api/connectors/:name', { schema: { params: nameParams } }, async (req) => {
    const c = await findConnector(db, req.params.name);
    if (!c) throw new ConnectorNotFoundError(req.params.name);
    return { connector: c, runs: await recentRuns(db, c.id) };
  });

  r.post('/api/connectors', { schema: { body: newConnectorSchema } }, async (req, reply) => {
    const { connector, count } = await addConnector(deps(), req.body);
    control.changed();
    return reply.status(201).send({ connector, users: count });
  });

  r.put('/api/connectors/:name/key', { schema: { params: nameParams, body: newKeySchema } }, async (req) => {
    const { connector, count, from } = await setConnectorKey(deps(), req.params.name, req.body.api_key);
    control.changed();
    return { connector, users: count, ...(from && from !== 'active' ? { was: from } : {}) };
  });

  r.post('/api/connectors/:name/reconnect', { schema: { params: nameParams } }, async (req) => {
    const target = await targetByName(db, config, req.params.name);
    const { count, from } = await reconnectTarget(deps(), target);
    return { connector: await findConnector(db, target.name), users: count, ...(from && from !== 'active' ? { was: from } : {}) };
  });

  r.post('/api/connectors/:name/sync', { schema: { params: nameParams } }, async (req, reply) => {
    // A sync that would not call Tines (refused key, unchanged) is not accepted as if it would.
    const row = await getConnector(db, req.params.name);
    if (row?.status === 'reconnect_required') {
      const key = await targetByName(db, config, row.name)
        .then((t) => t.readKey())
        .catch(() => undefined);
      const pending = key === undefined ? undefined : reconnectPending(row, keyFingerprint(key));
      if (pending) throw new ApiError(409, 'reconnect_required', pending);
    }
    const started = control.syncNow(req.params.name);
    if (started === 'unknown') throw new ConnectorNotFoundError(req.params.name);
    if (started === 'busy') throw new ApiError(409, 'sync_running', `a sync of connector "${req.params.name}" is running`);
    return reply.status(202).send({ accepted: true, connector: req.params.name });
  });

  r.delete('/api/connectors/:name', { schema: { params: nameParams } }, async (req) => {
    const c = await findConnector(db, req.params.name);
    if (!c) throw new ConnectorNotFoundError(req.params.name);
    if (c.source === 'env') {
      throw new ApiError(
        409,
        'environment_connector',
        `connector "${c.name}" is the environment's (TINES_TENANT_DOMAIN, CONNECTOR_NAME): remove it from the configuration, then run \`tines-connector delete --yes\``,
      );
    }
    const { users } = await removeConnector(db, c.name);
    control.changed();
    return {
      removed: c.name,
      users_removed: users,
      reminder: `Revoke the connector's API key (${c.api_key_fingerprint ?? 'fingerprint unknown'}) in Tines (Settings → API keys), so no copy of it can still read the tenant.`,
    };
  });

  // Not in the contract's list: the local socket's way for `connectors rekey` while the daemon holds the embedded database.
  r.post('/api/rekey', async () => ({ ...(await rekeyAll(db, config)), key_id: currentMasterKey(config).id }));
  // Which master key this daemon seals with (its id, a hash prefix): a shell whose CONNECTOR_SECRETS_KEY differs must not
  // have its add, set-key or rekey carried out under the daemon's key while it believes they are under its own.
  r.get('/api/master-key', async () => ({ key_id: currentMasterKey(config).id }));

  return app;
}

/** Serves the API on ADMIN_PORT (all interfaces, token required). */
export async function startAdminApi(opts: Omit<AdminApiOptions, 'token'> & { token: string; port: number; host?: string }): Promise<FastifyInstance> {
  const app = await buildAdminApi(opts);
  await app.listen({ port: opts.port, host: opts.host ?? '0.0.0.0' });
  const addr = app.server.address();
  opts.log.info({ port: addr && typeof addr === 'object' ? addr.port : opts.port }, 'admin API listening: /api/connectors');
  return app;
}

/** Serves the API on a unix socket readable by DATA_DIR's owner only; no token (the file's permissions guard it). */
export async function startAdminSocket(opts: Omit<AdminApiOptions, 'token'> & { path: string }): Promise<FastifyInstance> {
  rmSync(opts.path, { force: true });
  const app = await buildAdminApi({ ...opts, token: undefined });
  app.addHook('onClose', async () => rmSync(opts.path, { force: true }));
  await app.listen({ path: opts.path });
  chmodSync(opts.path, 0o600);
  return app;
}
