// Registered connectors in `connectors` (source 'registry'): their rows, their
// sealed keys, and the ConnectorTarget a sync of one uses (its key unsealed in
// memory, read afresh from the row each time, so a new key needs no reload).
import type { Settings } from '../config.js';
import { keyFingerprint, setConnectorStatus, type ConnectorRow } from '../db/connectors.js';
import type { Queryable } from '../db/database.js';
import { ConnectorDeletedError, ConnectorNameTakenError, ConnectorNotFoundError } from '../errors.js';
import { MasterKeyMissingError, seal, unseal, UnsealError, type MasterKey } from './sealing.js';
import { environmentTarget, type ConnectorSource, type ConnectorTarget } from './target.js';

/** A registered connector as the scheduler and the commands see it: never its key. */
export interface RegisteredConnector {
  id: number;
  name: string;
  tenant_domain: string;
  source: ConnectorSource;
  /** Its own cron expression; null: SYNC_SCHEDULE. */
  schedule: string | null;
  status: ConnectorRow['status'];
  status_reason: string | null;
  api_key_fingerprint: string | null;
  sealed_key_id: string | null;
  consecutive_failures: number;
  last_sync_at: string | null;
  last_success_at: string | null;
  created_at: string;
  updated_at: string;
}

/** The columns any listing shows: everything but the sealed key itself. */
const COLUMNS = `id, name, tenant_domain, source, schedule, status, status_reason, api_key_fingerprint, sealed_key_id,
                 consecutive_failures, last_sync_at, last_success_at, created_at, updated_at`;

/** https for a tenant domain, http only for loopback (the stored domain already passed normalizeTenant). */
export function baseUrlOf(tenantDomain: string): string {
  return `${/^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(:\d+)?$/i.test(tenantDomain) ? 'http' : 'https'}://${tenantDomain}`;
}

/** Every connector in the table, the environment's too (status, listings). */
export async function listConnectors(db: Queryable): Promise<RegisteredConnector[]> {
  return (await db.query<RegisteredConnector>(`SELECT ${COLUMNS} FROM connectors ORDER BY name`)).rows;
}

/** Registered connectors only: what `run` serves beside the environment's. */
export async function listRegistered(db: Queryable): Promise<RegisteredConnector[]> {
  return (await db.query<RegisteredConnector>(`SELECT ${COLUMNS} FROM connectors WHERE source = 'registry' ORDER BY id`)).rows;
}

export async function findConnector(db: Queryable, name: string): Promise<RegisteredConnector | undefined> {
  return (await db.query<RegisteredConnector>(`SELECT ${COLUMNS} FROM connectors WHERE name = $1`, [name])).rows[0];
}

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: string })?.code === '23505';
}

export interface NewRegistration {
  name: string;
  tenantDomain: string;
  schedule: string | null;
  apiKey: string;
}

/**
 * Inserts a registered connector with its key sealed under the current master
 * key (the row's id, taken first, is the seal's associated data). Throws
 * ConnectorNameTakenError when the name exists, also when another insert of it
 * won a race.
 */
export async function insertRegistered(db: Queryable, config: Settings, r: NewRegistration): Promise<RegisteredConnector> {
  const key = currentMasterKey(config);
  const id = Number((await db.query<{ id: number }>(`SELECT nextval(pg_get_serial_sequence('connectors', 'id')) AS id`)).rows[0]!.id);
  const sealed = seal(r.apiKey, id, key);
  const domains = config.orgEmailDomains.length > 0 ? [...config.orgEmailDomains] : null;
  try {
    const res = await db.query<RegisteredConnector>(
      `INSERT INTO connectors (id, name, tenant_domain, source, schedule, sealed_api_key, sealed_key_id, api_key_fingerprint,
                               inactive_after_days, org_email_domains)
       OVERRIDING SYSTEM VALUE
       VALUES ($1, $2, $3, 'registry', $4, $5, $6, $7, $8, $9)
       RETURNING ${COLUMNS}`,
      [id, r.name, r.tenantDomain, r.schedule, sealed.sealed, sealed.keyId, keyFingerprint(r.apiKey), config.inactiveAfterDays, domains],
    );
    return res.rows[0]!;
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConnectorNameTakenError(r.name);
    throw err;
  }
}

/**
 * A new key for a registered connector (`set-key`, the seed's Reconnect): sealed,
 * its fingerprint stored, failures reset, and the connector active again.
 */
export async function replaceKey(
  db: Queryable,
  config: Settings,
  name: string,
  apiKey: string,
): Promise<{ row: RegisteredConnector; from: string | undefined }> {
  const key = currentMasterKey(config);
  const row = await findConnector(db, name);
  if (!row || row.source !== 'registry') throw new ConnectorNotFoundError(name, 'registered connector');
  const sealed = seal(apiKey, row.id, key);
  const res = await db.query<RegisteredConnector>(
    `UPDATE connectors SET sealed_api_key = $2, sealed_key_id = $3, api_key_fingerprint = $4, consecutive_failures = 0, updated_at = now()
      WHERE id = $1 AND source = 'registry' RETURNING ${COLUMNS}`,
    [row.id, sealed.sealed, sealed.keyId, keyFingerprint(apiKey)],
  );
  if (!res.rows[0]) throw new ConnectorNotFoundError(name, 'registered connector');
  const from = await setConnectorStatus(db, row.id, 'active', null);
  return { row: { ...res.rows[0], status: 'active', status_reason: null }, from };
}

/** Removes a connector and every row that belongs to it (ON DELETE CASCADE); false when there was none. */
export async function removeConnector(db: Queryable, name: string): Promise<{ removed: boolean; users: number }> {
  const r = await db.query<{ users: number; removed: number }>(
    `WITH c AS (DELETE FROM connectors WHERE name = $1 RETURNING id)
     SELECT (SELECT count(*) FROM tines_users u WHERE u.connector_id IN (SELECT id FROM c))::int AS users, (SELECT count(*) FROM c)::int AS removed`,
    [name],
  );
  const row = r.rows[0];
  return { removed: (row?.removed ?? 0) > 0, users: row?.users ?? 0 };
}

export interface RekeyResult {
  resealed: string[];
  current: string[];
  failed: { name: string; reason: string }[];
}

/** Reseals every registered key under the current master key (after a rotation); one that does not open is reported, not fatal. */
export async function rekeyAll(db: Queryable, config: Settings): Promise<RekeyResult> {
  const key = currentMasterKey(config);
  const out: RekeyResult = { resealed: [], current: [], failed: [] };
  const rows = await db.query<{ id: number; name: string; sealed_api_key: Uint8Array; sealed_key_id: string }>(
    `SELECT id, name, sealed_api_key, sealed_key_id FROM connectors WHERE source = 'registry' ORDER BY name`,
  );
  for (const row of rows.rows) {
    if (row.sealed_key_id === key.id) {
      out.current.push(row.name);
      continue;
    }
    let apiKey: string;
    try {
      apiKey = unseal(Buffer.from(row.sealed_api_key), row.sealed_key_id, row.id, config.registry.masterKeys);
    } catch (err) {
      out.failed.push({ name: row.name, reason: (err as Error).message });
      continue;
    }
    const sealed = seal(apiKey, row.id, key);
    // Only if nobody set a new key meanwhile.
    const r = await db.query(`UPDATE connectors SET sealed_api_key = $2, sealed_key_id = $3 WHERE id = $1 AND sealed_key_id = $4`, [
      row.id,
      sealed.sealed,
      sealed.keyId,
      row.sealed_key_id,
    ]);
    (r.rowCount > 0 ? out.resealed : out.current).push(row.name);
  }
  return out;
}

export function currentMasterKey(config: Settings): MasterKey {
  const key = config.registry.masterKeys[0];
  if (!key) throw new MasterKeyMissingError();
  return key;
}

/**
 * The sync's view of a registered connector. Its key is read from the row and
 * unsealed at each call, in memory only; a removed connector rejects with
 * ConnectorDeletedError, a key that does not open with UnsealError or
 * MasterKeyMissingError.
 */
export function registeredTarget(db: Queryable, config: Settings, c: Pick<RegisteredConnector, 'id' | 'name' | 'tenant_domain'>): ConnectorTarget {
  return {
    name: c.name,
    tenantDomain: c.tenant_domain,
    baseUrl: baseUrlOf(c.tenant_domain),
    source: 'registry',
    readKey: async () => {
      const r = await db.query<{ sealed_api_key: Uint8Array; sealed_key_id: string }>(
        `SELECT sealed_api_key, sealed_key_id FROM connectors WHERE id = $1 AND source = 'registry'`,
        [c.id],
      );
      const row = r.rows[0];
      if (!row) throw new ConnectorDeletedError(c.name, c.id, 'registry');
      return unseal(Buffer.from(row.sealed_api_key), row.sealed_key_id, c.id, config.registry.masterKeys);
    },
  };
}

/** Errors of a sealed key that no retry mends: the connector is failing at once, with this reason. */
export function isSealProblem(err: unknown): boolean {
  return err instanceof UnsealError || err instanceof MasterKeyMissingError;
}

/**
 * The connector a per-connector command or endpoint names: the environment's
 * (CONNECTOR_NAME, when TINES_TENANT_DOMAIN is set) or a registered one.
 * Throws ConnectorNotFoundError otherwise.
 */
export async function targetByName(db: Queryable, config: Settings, name: string): Promise<ConnectorTarget> {
  if (name === config.connectorName && config.tines?.tenantDomain) return environmentTarget(config);
  const row = await findConnector(db, name);
  if (!row || row.source !== 'registry') throw new ConnectorNotFoundError(name);
  return registeredTarget(db, config, row);
}

/** A connector's last runs, newest first (`connectors show`, `GET /api/connectors/{name}`). */
export async function recentRuns(db: Queryable, connectorId: number, limit = 10): Promise<Record<string, unknown>[]> {
  const r = await db.query(
    `SELECT id, trigger, status, started_at, finished_at, pages_fetched, pages_total, users_seen, users_added, users_updated,
            users_removed, memberships_added, memberships_updated, memberships_removed, error_kind, error_message
       FROM sync_runs WHERE connector_id = $1 ORDER BY started_at DESC, id DESC LIMIT $2`,
    [connectorId, limit],
  );
  return r.rows;
}
