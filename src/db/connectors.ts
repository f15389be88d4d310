// The connector state machine, in one place: registration (its row from the
// target and configuration), the states active / reconnect_required / failing
// with each change as an event, the refused key's fingerprint that gates a
// reconnect, and the count of failed syncs in a row.
//
//   active ──FAILING_AFTER failures in a row──▶ failing ──a success──▶ active
//   any ──401/403 (key refused)──▶ reconnect_required (refused fingerprint kept)
//   reconnect_required ──a new key accepted, or `reconnect`──▶ active
import { createHash } from 'node:crypto';
import type { Settings } from '../config.js';
import { environmentTarget, type ConnectorTarget } from '../connectors/target.js';
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
  /** The connector's first sync that found users: those users are its baseline, not joiners. */
  baseline_run_id: number | null;
  baseline_at: string | null;
  baseline_users: number | null;
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

/** The connector's row as the target and configuration describe it; `fingerprint` null when the key could not be read. */
export function registration(config: Settings, fingerprint: string | null, target: ConnectorTarget = environmentTarget(config)): Registration {
  return {
    name: target.name,
    tenantDomain: target.tenantDomain,
    fingerprint,
    inactiveAfterDays: config.inactiveAfterDays,
    orgEmailDomains: config.orgEmailDomains,
  };
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
            -- The clock, not now(): the run's transaction began before its diff was applied.
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

/**
 * The reconnect gate: why a sync must not call Tines with this key (the
 * connector waits for a reconnect and the key is the one Tines refused), or
 * undefined when it may.
 */
export function reconnectPending(connector: ConnectorRow, fingerprint: string): string | undefined {
  if (connector.status !== 'reconnect_required' || connector.refused_key_fingerprint !== fingerprint) return undefined;
  const reason = (connector.status_reason ?? 'Tines refused the key').replace(/\.$/, '');
  const advice =
    (connector as ConnectorRow & { source?: string }).source === 'registry'
      ? `Give it a new Tenant-owner key with \`tines-connector connectors set-key ${connector.name} --key-file FILE\` (or PUT /api/connectors/${connector.name}/key), ` +
        `or run \`tines-connector reconnect --connector ${connector.name}\` once the key is valid again.`
      : 'Put a new Tenant-owner key in TINES_API_KEY or TINES_API_KEY_FILE (the next sync then tries it), ' +
        'or run `tines-connector reconnect` once the key is valid again.';
  return `connector "${connector.name}" needs a reconnect and its API key has not changed, so Tines was not called. Reason: ${reason}. ${advice}`;
}

/** Tines refused the key (401/403): reconnect_required, with the key's fingerprint, until the key changes or `reconnect` succeeds. */
export async function recordKeyRefused(db: Queryable, connectorId: number, reason: string, fingerprint: string, runId: number | null = null): Promise<void> {
  await setConnectorStatus(db, connectorId, 'reconnect_required', reason, { runId, refusedFingerprint: fingerprint });
}

/**
 * The key could not be read (a secret mount gone): no run starts, but it counts
 * as a failed sync, so the connector turns failing after a few and status and
 * alerts show why. Returns true when it just became failing.
 */
export async function recordKeyUnreadable(
  db: Queryable,
  config: Settings,
  target: ConnectorTarget,
  message: string,
  opts: { registeredId?: number; failNow?: boolean } = {},
): Promise<boolean> {
  const connector = await registerTarget(db, config, target, null, opts);
  const justFailing = await recordSyncFailure(db, connector.id, null, message);
  // A sealed key that does not open (no or another master key) is no passing fault: failing now, with why.
  if (!opts.failNow) return justFailing;
  const from = await setConnectorStatus(db, connector.id, 'failing', message);
  return from !== undefined && from !== 'failing';
}

/**
 * The target's row. The environment's connector is registered (or refreshed,
 * with registeredId) from configuration; a registered one (`connectors add`)
 * must exist and is never re-created: a connector removed meanwhile throws
 * ConnectorDeletedError, so its sync leaves no row behind.
 */
export async function registerTarget(
  db: Queryable,
  config: Settings,
  target: ConnectorTarget,
  fingerprint: string | null,
  opts: { registeredId?: number } = {},
): Promise<ConnectorRow> {
  const row = target.source === 'env' ? await registerConnector(db, registration(config, fingerprint, target), opts) : await getConnector(db, target.name);
  if (!row) throw new ConnectorDeletedError(target.name, opts.registeredId ?? 0, target.source);
  const source = (row as ConnectorRow & { source?: string }).source ?? 'env';
  if (source !== target.source) {
    throw new Error(
      `connector "${target.name}" is ${source === 'registry' ? 'a registered' : "the environment's"} connector in the database, not ${target.source === 'env' ? "the environment's" : 'a registered one'}: give CONNECTOR_NAME another name`,
    );
  }
  return row;
}

/** Tines accepted the key again (`reconnect`): no failures in a row, active. Returns the status it left, if it changed. */
export async function recordReconnected(db: Queryable, connectorId: number): Promise<ConnectorStatus | undefined> {
  await db.query('UPDATE connectors SET consecutive_failures = 0, updated_at = now() WHERE id = $1', [connectorId]);
  const from = await setConnectorStatus(db, connectorId, 'active', null);
  return from !== 'active' ? from : undefined;
}

/** A sync's first page came back with a key that was refused before: active again, before the run ends. */
export async function recordKeyAccepted(db: Queryable, connectorId: number, runId: number): Promise<void> {
  await setConnectorStatus(db, connectorId, 'active', null, { runId });
}

/**
 * The connector's first sync found its users (in that sync's transaction): they
 * are the baseline, taken at this transaction's time (their first_seen_at). A
 * sync that finds the connector without any user row again (an operator
 * emptied it) takes a new one.
 */
export async function recordBaseline(db: Queryable, connectorId: number, runId: number, users: number): Promise<void> {
  await db.query('UPDATE connectors SET baseline_run_id = $2, baseline_at = now(), baseline_users = $3 WHERE id = $1', [connectorId, runId, users]);
}
