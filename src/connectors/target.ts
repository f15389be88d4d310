// Which connector a sync or a key check serves: its name, its tenant, and how
// to get its key now. The environment's connector is one kind; registered
// connectors (with sealed keys) are another. The sync needs nothing else of them.
import { readApiKey, type Settings } from '../config.js';

export type ConnectorSource = 'env' | 'registry';

export interface ConnectorTarget {
  /** Its row in `connectors` (unique). */
  readonly name: string;
  /** host[:port], as stored in `connectors.tenant_domain`. */
  readonly tenantDomain: string;
  /** The tenant's origin: https, or http for a loopback host. */
  readonly baseUrl: string;
  readonly source: ConnectorSource;
  /**
   * The key in force now, read at the moment it is needed (a key file is
   * re-read, a sealed key is unsealed in memory only). Rejects when it cannot
   * be had; the message names why and never holds the key.
   */
  readKey(): Promise<string>;
}

/** The connector the environment configures: TINES_TENANT_DOMAIN, its key, named CONNECTOR_NAME. */
export function environmentTarget(config: Settings): ConnectorTarget {
  const { tenantDomain, baseUrl } = config.tines;
  // loadConfig requires both; loadSettings (TINES_TENANT_DOMAIN unset: no environment's connector) has neither.
  if (!tenantDomain || !baseUrl) throw new Error("there is no environment's connector: TINES_TENANT_DOMAIN is not set");
  return {
    name: config.connectorName,
    tenantDomain,
    baseUrl,
    source: 'env',
    readKey: async () => readApiKey(config),
  };
}
