// Backoff with full jitter, Retry-After parsing, an abortable sleep, and the
// TLS failures no retry can heal.
import { SyncAbortedError } from '../errors.js';

export const BACKOFF_BASE_MS = 500;
export const BACKOFF_CAP_MS = 30_000;
export const RETRY_AFTER_CAP_MS = 120_000;

/** Full jitter: uniform in [0, min(cap, base * 2^attempt)). attempt starts at 0. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt));
}

/** Retry-After as delta-seconds or an HTTP date, capped; undefined when absent or unreadable. */
export function parseRetryAfter(value: unknown, now: number = Date.now()): number | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const v = value.trim();
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(v)) ms = Number(v) * 1000;
  else {
    const at = Date.parse(v);
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.min(Math.max(0, Math.ceil(ms)), RETRY_AFTER_CAP_MS);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(new SyncAbortedError());
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new SyncAbortedError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * TLS certificate failures, by the code Node gives them (OpenSSL's names, and
 * Node's own for the host name): the certificate is wrong, not the network, and
 * seconds of backoff will not change it. Each with what it means for an operator.
 */
const TLS_CERTIFICATE_PROBLEMS: Readonly<Record<string, string>> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the server presents a self-signed certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'the certificate chain ends in a self-signed root this host does not trust (a TLS-inspecting proxy?)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the certificate is issued by an unknown CA',
  UNABLE_TO_GET_ISSUER_CERT: 'the certificate is issued by an unknown CA',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the certificate is issued by an unknown CA',
  UNABLE_TO_DECRYPT_CERT_SIGNATURE: 'the certificate signature cannot be read',
  CERT_SIGNATURE_FAILURE: 'the certificate signature is invalid',
  CERT_HAS_EXPIRED: 'the certificate has expired',
  CERT_NOT_YET_VALID: 'the certificate is not valid yet (is the clock right?)',
  ERROR_IN_CERT_NOT_BEFORE_FIELD: 'the certificate has an invalid validity period',
  ERROR_IN_CERT_NOT_AFTER_FIELD: 'the certificate has an invalid validity period',
  CERT_REVOKED: 'the certificate is revoked',
  CERT_UNTRUSTED: 'the certificate is not trusted',
  CERT_REJECTED: 'the certificate is rejected',
  INVALID_CA: 'a CA certificate in the chain is invalid',
  INVALID_PURPOSE: 'the certificate is not meant for a TLS server',
  PATH_LENGTH_EXCEEDED: 'the certificate chain is too long',
  HOSTNAME_MISMATCH: 'the certificate does not name this host',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the certificate does not name this host',
};

/** What is wrong with the server's certificate when `code` is a TLS certificate failure; undefined for anything else. */
export function tlsCertificateProblem(code: string | undefined): string | undefined {
  return code !== undefined && Object.hasOwn(TLS_CERTIFICATE_PROBLEMS, code) ? TLS_CERTIFICATE_PROBLEMS[code] : undefined;
}
