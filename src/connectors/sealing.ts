// Sealed API keys of registered connectors: AES-256-GCM under a master key
// (CONNECTOR_SECRETS_KEY), a random 12-byte nonce per seal, and the connector's
// id as associated data, so a sealed key copied to another row does not open.
// A key id names the master key that sealed each value (a one-way hash of it),
// so a rotation knows which values still need resealing.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

/** A master key and its id. The key bytes are non-enumerable: no log line or JSON copy carries them. */
export interface MasterKey {
  readonly id: string;
  readonly key: Buffer;
}

/** There is no master key, so registered connectors can be neither saved nor opened. */
export class MasterKeyMissingError extends Error {
  constructor() {
    super(
      'no master key: set CONNECTOR_SECRETS_KEY or CONNECTOR_SECRETS_KEY_FILE (32 random bytes, base64 or hex, e.g. `openssl rand -base64 32`) ' +
        'to register connectors and open their sealed keys',
    );
    this.name = 'MasterKeyMissingError';
  }
}

/** A sealed key that does not open: sealed under a master key not configured here, or not this connector's. */
export class UnsealError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsealError';
  }
}

/** 32 bytes written as 64 hex digits or as base64 (padded or not); throws naming what is wrong, never echoing it. */
export function parseMasterKey(text: string): Buffer {
  const t = text.trim();
  let bytes: Buffer | undefined;
  if (/^[0-9a-f]{64}$/i.test(t)) bytes = Buffer.from(t, 'hex');
  else if (/^[A-Za-z0-9+/]{43}=?$/.test(t) || /^[A-Za-z0-9_-]{43}=?$/.test(t)) bytes = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (!bytes || bytes.length !== KEY_BYTES) {
    throw new Error(
      `must be ${KEY_BYTES} bytes written as 64 hex digits or as base64 (e.g. \`openssl rand -base64 32\`); got ${t.length} characters that are neither`,
    );
  }
  return bytes;
}

/** `mk-` and 12 hex digits of a domain-separated SHA-256 of the key: names it, reveals nothing of it. */
export function masterKeyId(key: Buffer): string {
  return `mk-${createHash('sha256').update('tines-connector master key id\0').update(key).digest('hex').slice(0, 12)}`;
}

export function masterKey(key: Buffer): MasterKey {
  const mk = { id: masterKeyId(key) } as MasterKey;
  Object.defineProperty(mk, 'key', { value: key, enumerable: false });
  return Object.freeze(mk);
}

function associatedData(connectorId: number): Buffer {
  return Buffer.from(`tines-connector:connector:${connectorId}`);
}

export interface Sealed {
  /** nonce ‖ ciphertext ‖ tag */
  readonly sealed: Buffer;
  readonly keyId: string;
}

export function seal(plaintext: string, connectorId: number, key: MasterKey): Sealed {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key.key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData(connectorId));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return { sealed: Buffer.concat([nonce, body, cipher.getAuthTag()]), keyId: key.id };
}

/**
 * Opens a sealed key with the master key its id names (among `keys`: the
 * current one and the previous one during a rotation). Throws
 * MasterKeyMissingError when there is none, UnsealError when it does not open.
 */
export function unseal(sealed: Buffer, keyId: string, connectorId: number, keys: readonly MasterKey[]): string {
  if (keys.length === 0) throw new MasterKeyMissingError();
  const key = keys.find((k) => k.id === keyId);
  if (!key) {
    throw new UnsealError(
      `the API key is sealed under master key ${keyId}, which is not configured here (CONNECTOR_SECRETS_KEY is ${keys[0]!.id}` +
        `${keys[1] ? `, CONNECTOR_SECRETS_KEY_PREVIOUS is ${keys[1].id}` : ''}); set the master key it was sealed with, or set a new key with \`connectors set-key\``,
    );
  }
  if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new UnsealError('the sealed API key is truncated');
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.key, sealed.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(connectorId));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    return Buffer.concat([decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    throw new UnsealError(
      `the sealed API key does not open under master key ${keyId}: it was altered or belongs to another connector; set a new key with \`connectors set-key\``,
    );
  }
}
