// The connector row: registration from configuration, and its state machine
// (active → failing / reconnect_required → active), each change with an event.
import { createHash } from 'node:crypto';
import { ConnectorDeletedError } from '../errors.js';
import type { Queryable } from './database.js';

export type ConnectorStatus = 'active' | 'reconnect_required' | 'failing';

export interface ConnectorRow {
  id: number;
  name: string;
  tenant_domain: string;
  status: ConnectorStatus;
  status_reason: string | null;
  status_changed_at: string;
  api_key_fingerprint: string | null;
  refused_key_fingerprint: string | null;
  consecutive_failures: number;
  last_sync_at: string | null;
  last_success_at: string | null;
  inactive_after_days: number;
  org_email_domains: string[] | null;
  created_at: string;
  updated_at: string;
}

/** Failures in a row after which an active connector is marked failing. */
export const FAILING_AFTER = 3;

/** A one-way fingerprint: enough to tell keys apart, useless to recover one. */
export function keyFingerprint(key: string): string {
  return `sha256:${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

export interface Registration {
  name: string;
  tenantDomain: string;
  fingerprint: string | null;
  inactiveAfterDays: number;
  orgEmailDomains: readonly string[];
}

/**
 * Inserts or refreshes the connector's row from configuration; writes only when
 * something differs. With `registeredId`, the row this process registered
 * before, it is only refreshed, never created again: a row deleted meanwhile
 * (`delete --yes`) throws ConnectorDeletedError.
 */
export async function registerConnector(db: Queryable, r: Registration, opts: { registeredId?: number } = {}): Promise<ConnectorRow> {
  const domains = r.orgEmailDomains.length > 0 ? [...r.orgEmailDomains] : null;
  if (opts.registeredId !== undefined) return refreshRegisteredConnector(db, r, domains, opts.registeredId);
  const res = await db.query<ConnectorRow>(
    `WITH up AS (
       INSERT INTO connectors AS c (name, tenant_domain, api_key_fingerprint, inactive_after_days, org_email_domains)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (name) DO UPDATE
          SET tenant_domain = EXCLUDED.tenant_domain,
              api_key_fingerprint = COALESCE(EXCLUDED.api_key_fingerprint, c.api_key_fingerprint),
              inactive_after_days = EXCLUDED.inactive_after_days,
              org_email_domains = EXCLUDED.org_email_domains,
              updated_at = now()
        -- A registered connector of that name is not the environment's to rewrite (the sync refuses it).
        WHERE c.source = 'env'
          AND (c.tenant_domain, c.api_key_fingerprint, c.inactive_after_days, c.org_email_domains)
              IS DISTINCT FROM
              (EXCLUDED.tenant_domain, COALESCE(EXCLUDED.api_key_fingerprint, c.api_key_fingerprint),
               EXCLUDED.inactive_after_days, EXCLUDED.org_email_domains)
       RETURNING c.*
     )
     SELECT * FROM up
     UNION ALL
     SELECT * FROM connectors WHERE name = $1 AND NOT EXISTS (SELECT 1 FROM up)`,
    [r.name, r.tenantDomain, r.fingerprint, r.inactiveAfterDays, domains],
  );
  if (res.rows[0]) return res.rows[0];
  // Another process inserted the row after this statement's snapshot was taken
  // and it needed no update: read it with a fresh snapshot.
  const row = await getConnector(db, r.name);
  if (!row) throw new Error(`connector "${r.name}" vanished while it was being registered`);
  return row;
}

/** registerConnector for a row registered before: UPDATE only, by id. */
async function refreshRegisteredConnector(db: Queryable, r: Registration, domains: string[] | null, id: number): Promise<ConnectorRow> {
  const res = await db.query<ConnectorRow>(
    `WITH up AS (
       UPDATE connectors AS c
          SET tenant_domain = $2,
              api_key_fingerprint = COALESCE($3, c.api_key_fingerprint),
              inactive_after_days = $4,
              org_email_domains = $5,
              updated_at = now()
        WHERE c.id = $1
          AND (c.tenant_domain, c.api_key_fingerprint, c.inactive_after_days, c.org_email_domains)
              IS DISTINCT FROM ($2, COALESCE($3, c.api_key_fingerprint), $4, $5)
       RETURNING c.*
     )
     SELECT * FROM up
     UNION ALL
     SELECT * FROM connectors WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM up)`,
    [id, r.tenantDomain, r.fingerprint, r.inactiveAfterDays, domains],
  );
  if (!res.rows[0]) throw new ConnectorDeletedError(r.name, id);
  return res.rows[0];
}

export async function getConnector(db: Queryable, name: string): Promise<ConnectorRow | undefined> {
  const r = await db.query<ConnectorRow>('SELECT * FROM connectors WHERE name = $1', [name]);
  return r.rows[0];
}

/**
 * Moves the connector to `status` with `reason`. When the status really changes,
 * a connector_status_changed event is written in the same statement.
 * Returns the previous status.
 */
export async function setConnectorStatus(
  db: Queryable,
  connectorId: number,
  status: ConnectorStatus,
  reason: string | null,
  opts: { runId?: number | null; refusedFingerprint?: string | null } = {},
): Promise<ConnectorStatus | undefined> {
  const r = await db.query<{ from_status: ConnectorStatus }>(
    `WITH old AS (
       SELECT id, status FROM connectors WHERE id = $1 FOR UPDATE
     ), upd AS (
       UPDATE connectors c
          SET status = $2,
              status_reason = $3,
              status_changed_at = CASE WHEN old.status = $2 THEN c.status_changed_at ELSE now() END,
              refused_key_fingerprint = CASE WHEN $2 = 'reconnect_required' THEN $5 ELSE NULL END,
              updated_at = now()
         FROM old
        WHERE c.id = old.id
          AND (c.status, c.status_reason, c.refused_key_fingerprint) IS DISTINCT FROM
              ($2, $3, CASE WHEN $2 = 'reconnect_required' THEN $5 ELSE NULL END)
       RETURNING old.status AS from_status
     ), ev AS (
       INSERT INTO change_events (connector_id, sync_run_id, kind, details)
       SELECT $1, $4, 'connector_status_changed',
              jsonb_build_object('status', jsonb_build_object('from', from_status, 'to', $2::text), 'reason', $3::text)
         FROM upd WHERE from_status <> $2
     )
     SELECT from_status FROM upd`,
    [connectorId, status, reason, opts.runId ?? null, opts.refusedFingerprint ?? null],
  );
  return r.rows[0]?.from_status;
}

/** A finished sync that applied Tines' answer: failures reset, active again. Returns the status it left, if it changed. */
export async function recordSyncSuccess(db: Queryable, connectorId: number, runId: number, succeeded: boolean): Promise<ConnectorStatus | undefined> {
  await db.query(
    `UPDATE connectors
        SET consecutive_failures = 0,
            -- The clock, not now(): a first load's transaction began when its listing did.
            -- Read once, so a success's last_sync_at and last_success_at are equal.
            last_sync_at = t.at,
            last_success_at = CASE WHEN $2 THEN t.at ELSE last_success_at END,
            updated_at = now()
       FROM (SELECT clock_timestamp() AS at) t
      WHERE id = $1`,
    [connectorId, succeeded],
  );
  const from = await setConnectorStatus(db, connectorId, 'active', null, { runId });
  return from !== 'active' ? from : undefined;
}

/** A failed sync: counted; FAILING_AFTER in a row make an active connector failing. Returns true when it just became failing. */
export async function recordSyncFailure(db: Queryable, connectorId: number, runId: number | null, message: string): Promise<boolean> {
  const r = await db.query<{ consecutive_failures: number; status: ConnectorStatus }>(
    `UPDATE connectors
        SET consecutive_failures = consecutive_failures + 1, last_sync_at = clock_timestamp(), updated_at = now()
      WHERE id = $1
      RETURNING consecutive_failures, status`,
    [connectorId],
  );
  const row = r.rows[0];
  if (row && row.status !== 'reconnect_required' && row.consecutive_failures >= FAILING_AFTER) {
    const from = await setConnectorStatus(db, connectorId, 'failing', `${row.consecutive_failures} syncs in a row failed; last: ${message}`, { runId });
    return from !== undefined && from !== 'failing';
  }
  return false;
}
