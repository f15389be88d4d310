// Pins loadConfig: defaults, tenant normalisation, cron, ranges, aggregated errors.
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, loadSettings, normalizeTenant, type Config } from '../src/config.js';
import { problemsOf } from './helpers/config.js';

const BASE = { TINES_TENANT_DOMAIN: 'acme-1234.tines.com', TINES_API_KEY: 'tk_test_key_123' } as const;

function load(extra: Record<string, string | undefined> = {}): Config {
  return loadConfig({ ...BASE, ...extra });
}

describe('loadConfig defaults', () => {
  it('applies the contract default of every optional variable', () => {
    const c = load();
    expect(c.connectorName).toBe('tines');
    expect(c.tines.baseUrl).toBe('https://acme-1234.tines.com');
    expect(c.tines.tenantDomain).toBe('acme-1234.tines.com');
    expect(c.tines.apiKey).toBe('tk_test_key_123');
    expect(c.tines.apiKeyFile).toBeUndefined();
    expect(c.tines.pageSize).toBe(500);
    expect(c.tines.requestsPerMinute).toBe(400);
    expect(c.tines.timeoutMs).toBe(30_000);
    expect(c.tines.maxRetries).toBe(5);
    expect(c.database.url).toBeUndefined();
    expect(c.database.dataDir).toBe(resolve('./data'));
    expect(c.database.embeddedPgPort).toBeUndefined();
    expect(c.sync.schedule).toBe('*/15 * * * *');
    expect(c.sync.timezone).toBe('UTC');
    expect(c.sync.onStart).toBe(true);
    expect(c.sync.removalGuardPercent).toBe(20);
    expect(c.sync.removalGuardMin).toBe(10);
    expect(c.healthPort).toBe(8080);
    expect(c.shutdownTimeoutMs).toBe(20_000);
    expect(c.inactiveAfterDays).toBe(90);
    expect(c.orgEmailDomains).toEqual([]);
    expect(c.logLevel).toBe('info');
  });

  it('treats empty and blank values as unset (FOO= lines of an env file)', () => {
    const c = load({ TINES_PAGE_SIZE: '', SYNC_SCHEDULE: '  ', LOG_LEVEL: '', CONNECTOR_NAME: '', DATABASE_URL: '', SYNC_ON_START: '' });
    expect(c.tines.pageSize).toBe(500);
    expect(c.sync.schedule).toBe('*/15 * * * *');
    expect(c.logLevel).toBe('info');
    expect(c.connectorName).toBe('tines');
    expect(c.database.url).toBeUndefined();
    expect(c.sync.onStart).toBe(true);
  });

  it('reads every variable when set', () => {
    const c = load({
      CONNECTOR_NAME: 'tines-prod_1',
      DATABASE_URL: 'postgresql://u:p@db:5432/x',
      DATA_DIR: '/var/lib/conn',
      SYNC_SCHEDULE: '0 */5 * * * *',
      SYNC_TIMEZONE: 'Europe/Dublin',
      SYNC_ON_START: 'false',
      TINES_PAGE_SIZE: '50',
      TINES_REQUESTS_PER_MINUTE: '100000',
      TINES_TIMEOUT_MS: '1500',
      TINES_MAX_RETRIES: '0',
      REMOVAL_GUARD_PERCENT: '100',
      REMOVAL_GUARD_MIN: '0',
      HEALTH_PORT: '0',
      SHUTDOWN_TIMEOUT_MS: '0',
      EMBEDDED_PG_PORT: '5433',
      INACTIVE_AFTER_DAYS: '30',
      ORG_EMAIL_DOMAINS: ' Example.com, @corp.example ,,',
      LOG_LEVEL: 'debug',
    });
    expect(c.connectorName).toBe('tines-prod_1');
    expect(c.database.url).toBe('postgresql://u:p@db:5432/x');
    expect(c.database.dataDir).toBe('/var/lib/conn');
    expect(c.database.embeddedPgPort).toBe(5433);
    expect(c.sync).toEqual({ schedule: '0 */5 * * * *', timezone: 'Europe/Dublin', onStart: false, removalGuardPercent: 100, removalGuardMin: 0 });
    expect(c.tines.pageSize).toBe(50);
    expect(c.tines.requestsPerMinute).toBe(100000);
    expect(c.tines.timeoutMs).toBe(1500);
    expect(c.tines.maxRetries).toBe(0);
    expect(c.healthPort).toBe(0);
    expect(c.shutdownTimeoutMs).toBe(0);
    expect(c.inactiveAfterDays).toBe(30);
    expect(c.orgEmailDomains).toEqual(['example.com', 'corp.example']);
    expect(c.logLevel).toBe('debug');
  });

  it.each([
    ['true', true],
    ['1', true],
    ['yes', true],
    ['ON', true],
    ['false', false],
    ['0', false],
    ['no', false],
    ['off', false],
  ])('SYNC_ON_START=%s is %s', (raw, want) => {
    expect(load({ SYNC_ON_START: raw }).sync.onStart).toBe(want);
  });
});

describe('tenant domain normalisation', () => {
  it.each([
    ['acme-1234.tines.com', 'https://acme-1234.tines.com', 'acme-1234.tines.com'],
    ['  acme.tines.com  ', 'https://acme.tines.com', 'acme.tines.com'],
    ['https://acme.tines.com/', 'https://acme.tines.com', 'acme.tines.com'],
    ['https://ACME.Tines.com/api/v1/admin/users/', 'https://acme.tines.com', 'acme.tines.com'],
    ['acme.tines.com/some/path/', 'https://acme.tines.com', 'acme.tines.com'],
    ['https://acme.tines.com:8443/x?y=1#z', 'https://acme.tines.com:8443', 'acme.tines.com:8443'],
    ['http://localhost:3000/', 'http://localhost:3000', 'localhost:3000'],
    ['http://LOCALHOST', 'http://localhost', 'localhost'],
    ['http://127.0.0.1:8080/api', 'http://127.0.0.1:8080', '127.0.0.1:8080'],
    ['http://127.10.20.30', 'http://127.10.20.30', '127.10.20.30'],
    ['http://[::1]:9000/', 'http://[::1]:9000', '[::1]:9000'],
  ])('%j → %s', (input, baseUrl, tenantDomain) => {
    expect(normalizeTenant(input.trim())).toEqual({ baseUrl, tenantDomain });
    const c = load({ TINES_TENANT_DOMAIN: input });
    expect(c.tines.baseUrl).toBe(baseUrl);
    expect(c.tines.tenantDomain).toBe(tenantDomain);
  });

  it.each([
    'http://acme.tines.com',
    'http://acme.tines.com/',
    'http://localhost.evil.example',
    'http://127.0.0.1.evil.example',
    'http://10.0.0.1',
    'http://[::2]',
  ])('rejects plain http for the non-loopback host %s', (input) => {
    const problems = problemsOf({ ...BASE, TINES_TENANT_DOMAIN: input });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^TINES_TENANT_DOMAIN .*http/);
  });

  it.each(['ftp://acme.tines.com', 'https://', 'acme tines com', 'https://user:pw@acme.tines.com'])('rejects %j', (input) => {
    const problems = problemsOf({ ...BASE, TINES_TENANT_DOMAIN: input });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^TINES_TENANT_DOMAIN /);
  });

  it('does not echo credentials embedded in the tenant URL', () => {
    const problems = problemsOf({ ...BASE, TINES_TENANT_DOMAIN: 'https://user:s3cretpw@acme.tines.com' });
    expect(problems.join('\n')).not.toContain('s3cretpw');
  });

  it('requires TINES_TENANT_DOMAIN', () => {
    for (const v of [undefined, '', '   ']) {
      const problems = problemsOf({ TINES_API_KEY: 'k', TINES_TENANT_DOMAIN: v });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^TINES_TENANT_DOMAIN is required/);
    }
  });
});

describe('SYNC_SCHEDULE', () => {
  it.each(['*/15 * * * *', '0 3 * * 1-5', '0 */15 * * * *', '  30 2 * * *  '])('accepts %j', (expr) => {
    expect(load({ SYNC_SCHEDULE: expr }).sync.schedule).toBe(expr.trim());
  });

  it.each(['not a cron', '* * * *', '* * * * * * *', '61 * * * *', '* 25 * * *', 'every 5 minutes please'])('rejects %j', (expr) => {
    const problems = problemsOf({ ...BASE, SYNC_SCHEDULE: expr });
    expect(problems).toEqual([expect.stringMatching(/^SYNC_SCHEDULE .*cron/)]);
  });
});

describe('ranges and types', () => {
  it.each(['0', '501', '-1', '12.5', 'lots'])('rejects TINES_PAGE_SIZE=%s', (v) => {
    const problems = problemsOf({ ...BASE, TINES_PAGE_SIZE: v });
    expect(problems).toEqual([expect.stringMatching(/^TINES_PAGE_SIZE /)]);
  });

  it('takes a TINES_REQUESTS_PER_MINUTE beyond what a double holds exactly as no ceiling to speak of', () => {
    expect(load({ TINES_REQUESTS_PER_MINUTE: '9999999999999999999' }).tines.requestsPerMinute).toBe(Number.MAX_SAFE_INTEGER);
    expect(load({ TINES_REQUESTS_PER_MINUTE: '100000000' }).tines.requestsPerMinute).toBe(100_000_000);
  });

  it('accepts TINES_PAGE_SIZE at both bounds', () => {
    expect(load({ TINES_PAGE_SIZE: '1' }).tines.pageSize).toBe(1);
    expect(load({ TINES_PAGE_SIZE: '500' }).tines.pageSize).toBe(500);
  });

  it('names the bound that was crossed', () => {
    expect(problemsOf({ ...BASE, TINES_PAGE_SIZE: '0' })[0]).toContain('at least 1');
    expect(problemsOf({ ...BASE, TINES_PAGE_SIZE: '501' })[0]).toContain('at most 500');
  });

  it.each([
    ['TINES_REQUESTS_PER_MINUTE', '0'],
    ['TINES_TIMEOUT_MS', '0'],
    ['TINES_MAX_RETRIES', '-1'],
    ['REMOVAL_GUARD_PERCENT', '101'],
    ['REMOVAL_GUARD_MIN', '-1'],
    ['HEALTH_PORT', '65536'],
    ['EMBEDDED_PG_PORT', '70000'],
    ['INACTIVE_AFTER_DAYS', '0'],
    ['SHUTDOWN_TIMEOUT_MS', 'soon'],
    ['SYNC_ON_START', 'maybe'],
    ['LOG_LEVEL', 'loud'],
    ['SYNC_TIMEZONE', 'Mars/Olympus_Mons'],
    ['CONNECTOR_NAME', 'has spaces'],
    ['CONNECTOR_NAME', 'x'.repeat(101)],
    ['DATABASE_URL', 'mysql://u:p@h/db'],
    ['ORG_EMAIL_DOMAINS', 'example.com,not a domain'],
  ])('rejects %s=%j by name', (name, value) => {
    const problems = problemsOf({ ...BASE, [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.startsWith(`${name} `)).toBe(true);
  });
});

describe('errors are reported together', () => {
  it('one ConfigError names every bad variable', () => {
    const env = {
      TINES_TENANT_DOMAIN: 'http://acme.tines.com',
      TINES_PAGE_SIZE: '0',
      SYNC_SCHEDULE: 'garbage',
      LOG_LEVEL: 'loud',
      HEALTH_PORT: '70000',
      DATABASE_URL: 'mysql://user:hunter2@db/x',
      SYNC_ON_START: 'perhaps',
    };
    let err: unknown;
    try {
      loadConfig(env);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const ce = err as ConfigError;
    expect(ce.name).toBe('ConfigError');
    const names = ['TINES_TENANT_DOMAIN', 'TINES_PAGE_SIZE', 'SYNC_SCHEDULE', 'LOG_LEVEL', 'HEALTH_PORT', 'DATABASE_URL', 'SYNC_ON_START', 'TINES_API_KEY'];
    for (const n of names) {
      expect(
        ce.problems.some((p) => p.startsWith(`${n} `)),
        n,
      ).toBe(true);
      expect(ce.message).toContain(n);
    }
    expect(ce.problems).toHaveLength(names.length);
    expect(ce.message).not.toContain('hunter2');
  });

  it('loadSettings (commands that only read) does not stop on the variables only syncing reads; it still names every bad one it uses', () => {
    const syncOnly = { SYNC_SCHEDULE: '* * *', TINES_PAGE_SIZE: 'abc', SYNC_ON_START: 'perhaps', HEALTH_PORT: '70000', TINES_MAX_RETRIES: '-1' };
    const settings = loadSettings({ ...syncOnly, DATA_DIR: '/srv/data' }, { onlyDatabase: true });
    expect(settings.database.dataDir).toBe('/srv/data');
    expect(settings.sync.schedule).toBe('*/15 * * * *'); // the default stands in; nothing reads it
    let err: unknown;
    try {
      loadSettings({ ...syncOnly, LOG_LEVEL: 'loud', DATABASE_URL: 'mysql://x' }, { onlyDatabase: true });
    } catch (e) {
      err = e;
    }
    expect((err as ConfigError).problems.map((p) => p.split(' ')[0]).sort()).toEqual(['DATABASE_URL', 'LOG_LEVEL']);
    // The commands that sync still refuse every one of them at once, `run` of registered connectors only too.
    expect(
      problemsOf({ ...BASE, ...syncOnly })
        .map((p) => p.split(' ')[0])
        .sort(),
    ).toEqual(['HEALTH_PORT', 'SYNC_ON_START', 'SYNC_SCHEDULE', 'TINES_MAX_RETRIES', 'TINES_PAGE_SIZE']);
    expect(() => loadSettings(syncOnly)).toThrow(ConfigError);
  });

  it('reports bad ORG_EMAIL_DOMAINS entries together with other bad variables', () => {
    const problems = problemsOf({ ...BASE, ORG_EMAIL_DOMAINS: '@@,foo,example.com', LOG_LEVEL: 'loud' });
    expect(problems.sort()).toEqual([
      'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent',
      'ORG_EMAIL_DOMAINS "@" is not a domain name',
      'ORG_EMAIL_DOMAINS "foo" is not a domain name',
    ]);
  });

  it('reports a bad tenant domain together with schema problems', () => {
    const problems = problemsOf({ TINES_TENANT_DOMAIN: 'http://acme.tines.com', TINES_API_KEY: 'k', TINES_PAGE_SIZE: '501' });
    expect(problems.map((p) => p.split(' ')[0]).sort()).toEqual(['TINES_PAGE_SIZE', 'TINES_TENANT_DOMAIN']);
  });

  it('never puts the API key in the error', () => {
    try {
      loadConfig({ TINES_API_KEY: 'tk_do_not_leak', TINES_PAGE_SIZE: '0' });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).not.toContain('tk_do_not_leak');
      expect(JSON.stringify(err)).not.toContain('tk_do_not_leak');
    }
  });
});
