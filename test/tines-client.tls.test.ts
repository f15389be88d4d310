// A certificate that fails verification is not a network hiccup: the request
// fails at once (one TLS handshake, no backoff) with the reason, kind network.
// Real HTTPS servers on loopback, with certificates made here by openssl.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TinesRequestError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { TinesClient } from '../src/tines/client.js';
import { tlsCertificateProblem } from '../src/tines/retry.js';
import { backends, createTestDb } from './helpers/backends.js';
import { childCwd, childEnv, runCli } from './helpers/cli.js';

const KEY = 'tines-tls-test-key-5d1e0c';

/** openssl, in `dir`: an EC key and certificate per call. */
function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

interface TlsServer {
  url: string;
  /** TLS handshakes attempted (connections). */
  connections: number;
  /** Requests that got through (none should). */
  requests: number;
  close(): Promise<void>;
}

async function tlsServer(key: string, cert: string): Promise<TlsServer> {
  const server = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) });
  const s: TlsServer = {
    url: '',
    connections: 0,
    requests: 0,
    close: () =>
      new Promise((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
  server.on('connection', () => s.connections++);
  server.on('tlsClientError', () => undefined);
  server.on('request', (_req, res) => {
    s.requests++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"admin/users":[],"meta":{"count":0}}');
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  s.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return s;
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tines-connector-tls-'));
  // Self-signed, for 127.0.0.1.
  openssl(dir, [
    'req',
    '-x509',
    ...EC,
    '-keyout',
    'self.key',
    '-out',
    'self.pem',
    '-days',
    '2',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  ]);
  // A CA, a leaf for 127.0.0.1 and a leaf for another name, both signed by it.
  openssl(dir, ['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=tines-connector test CA']);
  for (const [name, san] of [
    ['leaf', 'IP:127.0.0.1'],
    ['other', 'DNS:tines.invalid'],
  ] as const) {
    openssl(dir, ['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
    openssl(dir, [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    ]);
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function client(baseUrl: string): TinesClient {
  return new TinesClient({ baseUrl, apiKey: KEY, pageSize: 2, requestsPerMinute: 100000, timeoutMs: 5000, maxRetries: 5, logger: createLogger('silent') });
}

async function failure(p: Promise<unknown>): Promise<TinesRequestError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TinesRequestError);
  return err as TinesRequestError;
}

describe('TLS certificate errors are not retried', () => {
  it('a self-signed certificate: one handshake, kind network, the reason in the message, the key nowhere', async () => {
    const server = await tlsServer(join(dir, 'self.key'), join(dir, 'self.pem'));
    try {
      const started = performance.now();
      const err = await failure(client(server.url).checkAccess());
      expect(err.kind).toBe('network');
      expect(err.message).toMatch(/TLS certificate refused: the server presents a self-signed certificate .*DEPTH_ZERO_SELF_SIGNED_CERT.*not retried/);
      expect(err.message).not.toContain(KEY);
      expect(server.connections).toBe(1);
      expect(server.requests).toBe(0);
      // Five retries with backoff would take seconds.
      expect(performance.now() - started).toBeLessThan(2_000);
    } finally {
      await server.close();
    }
  });

  it('a certificate from an unknown CA: one handshake, kind network', async () => {
    const server = await tlsServer(join(dir, 'leaf.key'), join(dir, 'leaf.pem'));
    try {
      const err = await failure(client(server.url).checkAccess());
      expect(err.kind).toBe('network');
      expect(err.message).toMatch(/TLS certificate refused: the certificate is issued by an unknown CA .*UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
      expect(server.connections).toBe(1);
    } finally {
      await server.close();
    }
  });

  it.each([
    'DEPTH_ZERO_SELF_SIGNED_CERT',
    'SELF_SIGNED_CERT_IN_CHAIN',
    'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
    'CERT_HAS_EXPIRED',
    'CERT_NOT_YET_VALID',
    'ERR_TLS_CERT_ALTNAME_INVALID',
  ])('%s is a certificate failure', (code) => {
    expect(tlsCertificateProblem(code)).toEqual(expect.any(String));
  });

  it.each(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'ERR_NETWORK', 'toString', undefined])('%s is not', (code) => {
    expect(tlsCertificateProblem(code)).toBeUndefined();
  });
});

describe.each(backends())('`sync` against a tenant whose certificate names another host (%s)', (backend) => {
  const cwd = childCwd();

  it('exits 1 at once with the TLS reason; the run is failed with kind network; one handshake', async () => {
    const server = await tlsServer(join(dir, 'other.key'), join(dir, 'other.pem'));
    const testDb = await createTestDb(backend);
    try {
      // The CA is trusted (as a company CA would be), so what fails is the host name alone.
      const env = childEnv({
        ...testDb.env,
        TINES_TENANT_DOMAIN: server.url,
        TINES_API_KEY: KEY,
        TINES_MAX_RETRIES: '5',
        NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem'),
        LOG_LEVEL: 'warn',
      });
      const started = Date.now();
      const r = await runCli(['sync', '--json'], env, { cwd });
      expect(r.code, r.stderr).toBe(1);
      const outcome = JSON.parse(r.stdout) as { result: string; errorKind: string; message: string };
      expect(outcome).toMatchObject({ result: 'failed', errorKind: 'network' });
      expect(outcome.message).toMatch(/TLS certificate refused: the certificate does not name this host .*ERR_TLS_CERT_ALTNAME_INVALID/);
      expect(r.stderr).not.toMatch(/retrying Tines request/);
      expect(`${r.stdout}${r.stderr}`).not.toContain(KEY);
      expect(server.connections).toBe(1);
      expect(Date.now() - started).toBeLessThan(15_000);
      const db = await testDb.open();
      try {
        const run = (
          await db.query<{ status: string; error_kind: string; error_message: string }>(
            'SELECT status, error_kind, error_message FROM sync_runs ORDER BY id DESC LIMIT 1',
          )
        ).rows[0];
        expect(run).toMatchObject({ status: 'failed', error_kind: 'network' });
        expect(run!.error_message).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID/);
      } finally {
        await db.close();
      }
    } finally {
      await server.close();
      await testDb.dispose();
    }
  });
});
