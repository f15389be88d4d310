// The admin HTTP API on a real port: the token (none, wrong, right), body limit,
// unknown fields, each bad input, Connect before Save (422 refused, 502
// unreachable or hanging: nothing saved), a race of two adds of one name, and
// the error shape of every failure. No answer holds a key.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAdminApi, type AdminControl } from '../src/connectors/admin-api.js';
import { generateUsers } from '../src/fake/tines-server.js';
import { backends } from './helpers/backends.js';
import { freePort } from './helpers/daemon.js';
import { createHarness, type Harness } from './helpers/harness.js';

const TOKEN = 'admin-token-3f9c1e7b5a2d4c6e';
const KEY_B = 'tk_api_tenant_b_c0ffee11';
const KEY_C = 'tk_api_tenant_c_d00dfeed';
const WEAK = 'tk_api_weak_0001';

describe.each(backends())('admin API (%s)', (backend) => {
  let h: Harness;
  let app: FastifyInstance;
  let base: string;
  let hang: http.Server;
  let hangUrl: string;
  const bodies: string[] = [];
  const syncs: string[] = [];
  let busy = false;
  const control: AdminControl = {
    syncNow: (name) => (name === 'nobody' ? 'unknown' : busy ? 'busy' : (syncs.push(name), 'accepted')),
    changed: () => undefined,
  };

  const call = async (method: string, path: string, body?: unknown, opts: { token?: string | null; raw?: string } = {}) => {
    const token = opts.token === undefined ? TOKEN : opts.token;
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(token !== null ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined || opts.raw ? { 'content-type': 'application/json' } : {}),
      },
      body: opts.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    });
    const text = await res.text();
    bodies.push(text);
    return { status: res.status, body: JSON.parse(text) as Record<string, any> };
  };
  const names = async () => (await h.rows<{ name: string }>(`SELECT name FROM connectors WHERE source = 'registry' ORDER BY name`)).map((r) => r.name);

  beforeAll(async () => {
    h = await createHarness(backend, generateUsers(3, { seed: 1 }));
    h.fake.addTenant(KEY_B, generateUsers(5, { seed: 2 }));
    h.fake.addTenant(KEY_C, generateUsers(2, { seed: 3 }));
    h.fake.forbiddenKeys.add(WEAK);
    hang = http.createServer(() => undefined);
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', () => r()));
    hangUrl = `http://127.0.0.1:${(hang.address() as AddressInfo).port}`;
    const config = h.config({ CONNECTOR_SECRETS_KEY: randomBytes(32).toString('hex'), ADMIN_TOKEN: TOKEN, TINES_TIMEOUT_MS: '1500' });
    app = await startAdminApi({ config, db: h.db, log: h.logs.logger, control, token: TOKEN, port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await app?.close();
    hang?.closeAllConnections();
    await new Promise((r) => hang?.close(r));
    await h?.close();
    for (const k of [KEY_B, KEY_C, WEAK, TOKEN]) {
      expect(bodies.join('\n')).not.toContain(k);
      expect(h.logs.text).not.toContain(k);
    }
  });

  it('no token, a wrong token, another scheme: 401 in the error shape; nothing else is served without it', async () => {
    for (const token of [null, 'wrong-token-wrong-token', `${TOKEN}x`, '']) {
      const r = await call('GET', '/api/connectors', undefined, { token });
      expect(r.status).toBe(401);
      expect(r.body).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
    }
    const basic = await fetch(`${base}/api/connectors`, { headers: { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` } });
    expect(basic.status).toBe(401);
    expect((await call('POST', '/api/connectors', { name: 'x' }, { token: null })).status).toBe(401);
    expect((await call('GET', '/api/connectors')).status).toBe(200);
  });

  it('POST: Connect, then Save (201); the answer tells the fingerprint, never the key', async () => {
    const r = await call('POST', '/api/connectors', { name: 'tenant-b', tenant_domain: h.fake.url, api_key: KEY_B, schedule: '*/10 * * * *' });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body).toMatchObject({
      users: 5,
      connector: { name: 'tenant-b', source: 'registry', schedule: '*/10 * * * *', status: 'active', api_key_fingerprint: expect.stringMatching(/^sha256:/) },
    });
    expect(JSON.stringify(r.body)).not.toContain('sealed_api_key');
    const list = await call('GET', '/api/connectors');
    expect(list.body.connectors.map((c: { name: string }) => c.name)).toEqual(['tenant-b']);
    const one = await call('GET', '/api/connectors/tenant-b');
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ connector: { name: 'tenant-b' }, runs: [] });
  });

  it('bad input: 400 naming each field; unknown fields refused; bad JSON; nothing saved, Tines not called', async () => {
    const before = h.fake.requests.length;
    let r = await call('POST', '/api/connectors', { name: 'has space', tenant_domain: 'http://acme.tines.com', api_key: '', schedule: '61 * * * *', extra: 1 });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('invalid_input');
    expect(Object.keys(r.body.error.fields).sort()).toEqual(['api_key', 'extra', 'name', 'schedule', 'tenant_domain']);
    expect(r.body.error.fields.extra).toBe('is not a known field');
    expect(r.body.error.fields.tenant_domain).toMatch(/loopback/);
    r = await call('POST', '/api/connectors', { name: 'x'.repeat(101), tenant_domain: 'not a domain!', api_key: KEY_C });
    expect(r.status).toBe(400);
    expect(r.body.error.fields).toEqual({ name: expect.stringMatching(/at most 100/), tenant_domain: expect.stringMatching(/not a domain/) });
    r = await call('POST', '/api/connectors', { tenant_domain: h.fake.url });
    expect(r.status).toBe(400);
    expect(r.body.error.fields).toEqual({ name: 'is required', api_key: 'is required' });
    r = await call('POST', '/api/connectors', { name: 5, tenant_domain: null, api_key: ['a'] });
    expect(r.status).toBe(400);
    expect(r.body.error.fields).toEqual({ name: 'must be a string', tenant_domain: 'must be a string', api_key: 'must be a string' });
    r = await call('POST', '/api/connectors', undefined, { raw: '{"name": ' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('invalid_json');
    r = await call('PUT', '/api/connectors/tenant-b/key', { api_key: KEY_C, name: 'other' });
    expect(r.status).toBe(400);
    expect(r.body.error.fields).toEqual({ name: 'is not a known field' });
    expect(h.fake.requests.length).toBe(before);
    expect(await names()).toEqual(['tenant-b']);
  });

  it('a body over 64 KB: 413', async () => {
    const r = await call('POST', '/api/connectors', { name: 'big', tenant_domain: h.fake.url, api_key: 'k'.repeat(70 * 1024) });
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe('body_too_large');
  });

  it('a name taken: 409, Tines not called', async () => {
    const before = h.fake.requests.length;
    const r = await call('POST', '/api/connectors', { name: 'tenant-b', tenant_domain: h.fake.url, api_key: KEY_C });
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('name_taken');
    expect(h.fake.requests.length).toBe(before);
  });

  it('a key refused (401, 403): 422; Tines unreachable or hanging: 502 within TINES_TIMEOUT_MS; nothing saved', async () => {
    for (const key of ['tk_unknown_0000', WEAK]) {
      const r = await call('POST', '/api/connectors', { name: 'refused', tenant_domain: h.fake.url, api_key: key });
      expect(r.status).toBe(422);
      expect(r.body.error).toMatchObject({ code: 'key_refused', message: expect.stringContaining(key === WEAK ? '403' : '401') });
    }
    const port = await freePort();
    let r = await call('POST', '/api/connectors', { name: 'gone', tenant_domain: `http://127.0.0.1:${port}`, api_key: KEY_C });
    expect(r.status).toBe(502);
    expect(r.body.error.code).toBe('tines_unreachable');
    const t0 = Date.now();
    r = await call('POST', '/api/connectors', { name: 'hung', tenant_domain: hangUrl, api_key: KEY_C });
    expect(r.status).toBe(502);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await names()).toEqual(['tenant-b']);
  });

  it('two adds of one name at once: one 201, the other 409', async () => {
    h.fake.latencyMs = 200; // both pass the name check before either saves
    try {
      const results = await Promise.all([
        call('POST', '/api/connectors', { name: 'tenant-c', tenant_domain: h.fake.url, api_key: KEY_C }),
        call('POST', '/api/connectors', { name: 'tenant-c', tenant_domain: h.fake.url, api_key: KEY_C }),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
    } finally {
      h.fake.latencyMs = 0;
    }
    expect(await names()).toEqual(['tenant-b', 'tenant-c']);
  });

  it('PUT key: 422 refused (the old key stays), 200 accepted and active again; 404 for no such connector', async () => {
    const before = await h.one<{ api_key_fingerprint: string }>(`SELECT api_key_fingerprint FROM connectors WHERE name = 'tenant-c'`);
    let r = await call('PUT', '/api/connectors/tenant-c/key', { api_key: WEAK });
    expect(r.status).toBe(422);
    expect(await h.one(`SELECT api_key_fingerprint FROM connectors WHERE name = 'tenant-c'`)).toEqual(before);
    await h.db.query(`UPDATE connectors SET status = 'reconnect_required' WHERE name = 'tenant-c'`);
    r = await call('PUT', '/api/connectors/tenant-c/key', { api_key: KEY_B });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ was: 'reconnect_required', connector: { status: 'active' } });
    r = await call('PUT', '/api/connectors/nobody/key', { api_key: KEY_B });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('not_found');
  });

  it('reconnect 200; sync 202, 409 while one runs, 404 for no such connector', async () => {
    let r = await call('POST', '/api/connectors/tenant-b/reconnect');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ users: 5, connector: { status: 'active' } });
    r = await call('POST', '/api/connectors/tenant-b/sync');
    expect(r.status).toBe(202);
    expect(syncs).toEqual(['tenant-b']);
    busy = true;
    r = await call('POST', '/api/connectors/tenant-b/sync');
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('sync_running');
    busy = false;
    r = await call('POST', '/api/connectors/nobody/sync');
    expect(r.status).toBe(404);
  });

  it('sync: 409 reconnect_required while Tines refused the very key it holds (the sync would not call Tines); accepted once the key differs', async () => {
    const { api_key_fingerprint: fp } = await h.one<{ api_key_fingerprint: string }>(`SELECT api_key_fingerprint FROM connectors WHERE name = 'tenant-b'`);
    await h.db.query(
      `UPDATE connectors SET status = 'reconnect_required', status_reason = 'Tines answered 401', refused_key_fingerprint = $1 WHERE name = 'tenant-b'`,
      [fp],
    );
    syncs.length = 0;
    let r = await call('POST', '/api/connectors/tenant-b/sync');
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('reconnect_required');
    expect(r.body.error.message).toMatch(/connectors set-key tenant-b/);
    expect(syncs).toEqual([]);
    await h.db.query(`UPDATE connectors SET refused_key_fingerprint = 'sha256:0000000000000000' WHERE name = 'tenant-b'`);
    r = await call('POST', '/api/connectors/tenant-b/sync');
    expect(r.status).toBe(202);
    expect(syncs).toEqual(['tenant-b']);
    await h.db.query(`UPDATE connectors SET status = 'active', status_reason = NULL, refused_key_fingerprint = NULL WHERE name = 'tenant-b'`);
  });

  it("DELETE: 200 with the reminder to revoke the key; 404 after; the environment's connector is not the API's to delete", async () => {
    let r = await call('DELETE', '/api/connectors/tenant-c');
    expect(r.status).toBe(200);
    expect(r.body.reminder).toMatch(/[Rr]evoke/);
    r = await call('DELETE', '/api/connectors/tenant-c');
    expect(r.status).toBe(404);
    await h.sync();
    r = await call('DELETE', '/api/connectors/tines');
    expect(r.status).toBe(409);
    expect(await names()).toEqual(['tenant-b']);
    r = await call('GET', '/api/nothing-here');
    expect(r.status).toBe(404);
    expect(r.body).toEqual({ error: { code: 'not_found', message: expect.any(String) } });
  });
});
