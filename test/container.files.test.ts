// No Docker engine runs here, so the container files are checked for what can
// be checked without one: they parse, they agree with each other and with the
// build output, and .env.example names every variable the code reads.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ENV_VARIABLES } from '../src/config.js';

const dockerfile = readFileSync('Dockerfile', 'utf8');
const stages = dockerfile.split(/^FROM /m).slice(1);
const runtime = stages[stages.length - 1]!;

describe('Dockerfile', () => {
  it('builds in one stage and runs on a slim Node 20 image in another', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(stages[0]).toMatch(/npm ci/);
    expect(runtime).toMatch(/^node:20[\w.-]*slim/);
    expect(runtime).toMatch(/npm prune --omit=dev|--from=build .*node_modules/);
  });

  it('runs as a non-root user in production mode, with a health check, exec-form CMD and SIGTERM', () => {
    expect(runtime).toMatch(/^USER (?!root)\w+/m);
    expect(runtime).toMatch(/NODE_ENV=production/);
    // Healthy means able to work: the database answers and is migrated (/readyz), not merely a running process (/healthz).
    expect(runtime).toMatch(/^HEALTHCHECK .*\n?.*\/readyz/m);
    expect(runtime).not.toMatch(/^HEALTHCHECK .*\n?.*\/healthz/m);
    expect(runtime).toMatch(/^STOPSIGNAL SIGTERM$/m);
    const cmd = /^CMD (\[.*\])$/m.exec(runtime);
    expect(cmd, 'CMD must be in exec form').not.toBeNull();
    const argv = JSON.parse(cmd![1]!) as string[];
    expect(argv[0]).toBe('node');
    // The entry file exists in the build output the image copies.
    expect(existsSync(argv[1]!)).toBe(true);
    expect(argv.slice(2)).toEqual(['run']);
  });

  it('copies into the runtime image everything the entry file needs', () => {
    const copied = [...runtime.matchAll(/^COPY --from=build \S* ?\/app\/(\S+)/gm)].map((m) => m[1]);
    for (const needed of ['package.json', 'node_modules', 'dist/bin', 'migrations']) expect(copied).toContain(needed);
    // The build stage has what tsc compiles and what rolldown bundles it with.
    for (const src of ['src', 'migrations', 'tsconfig.json', 'rolldown.config.mjs', 'package-lock.json']) expect(stages[0]).toContain(src);
  });
});

describe('docker-compose.yml', () => {
  const compose = parse(readFileSync('docker-compose.yml', 'utf8')) as {
    services: Record<string, Record<string, unknown>>;
    volumes: Record<string, unknown>;
  };

  it('runs PostgreSQL 16 with a named volume and a pg_isready health check', () => {
    const pg = compose.services.postgres!;
    expect(pg.image).toBe('postgres:16');
    const volume = String((pg.volumes as string[])[0]).split(':')[0]!;
    expect(Object.keys(compose.volumes)).toContain(volume);
    expect(JSON.stringify(pg.healthcheck)).toContain('pg_isready');
  });

  it('builds the connector from the Dockerfile, with .env, after PostgreSQL is healthy, restarting unless stopped', () => {
    const c = compose.services.connector!;
    expect(c.build).toBe('.');
    expect(c.env_file).toBe('.env');
    expect(c.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    expect(c.restart).toBe('unless-stopped');
    expect(String((c.environment as Record<string, string>).DATABASE_URL)).toMatch(/^postgres:\/\/.*@postgres:5432\//);
  });
});

describe('docker-compose.yml and its documentation', () => {
  const text = readFileSync('docker-compose.yml', 'utf8');
  const compose = parse(text) as { services: Record<string, Record<string, unknown>> };
  const example = readFileSync('.env.example', 'utf8');
  const readme = readFileSync('README.md', 'utf8');

  it('every variable the compose file reads from .env is in .env.example with a comment, and in the README', () => {
    const used = [...new Set([...text.matchAll(/\$\{(\w+)(?::-[^}]*)?\}/g)].map((m) => m[1]!))];
    expect(used).toEqual(expect.arrayContaining(['POSTGRES_PASSWORD']));
    for (const name of used) {
      const line = new RegExp(`^#? ?${name}=`, 'm').exec(example);
      expect(line, `${name} is missing from .env.example`).not.toBeNull();
      expect((example.slice(0, line!.index).trimEnd().split('\n').pop() ?? '').startsWith('#'), `${name} has no comment above it`).toBe(true);
      expect(readme, `${name} is not in the README`).toContain(`\`${name}\``);
    }
  });

  it('publishes PostgreSQL on the host`s loopback only, so the README`s psql line reaches it', () => {
    const ports = (compose.services.postgres!.ports as string[]).map(String);
    expect(ports).toHaveLength(1);
    expect(ports[0]).toMatch(/^127\.0\.0\.1:\$\{POSTGRES_PORT:-5432\}:5432$/);
    expect(readme).toMatch(/psql "postgres:\/\/tines:\$POSTGRES_PASSWORD@127\.0\.0\.1:\$\{POSTGRES_PORT:-5432\}\/tines"/);
  });

  it('the README shows `docker compose exec connector tines-connector query`, and the image puts tines-connector on PATH', () => {
    expect(readme).toMatch(/docker compose exec connector tines-connector query /);
    expect(runtime).toMatch(/ln -s \/app\/dist\/bin\/cli\.js \/usr\/local\/bin\/tines-connector/);
  });
});

describe('.env.example', () => {
  it('names every variable the configuration reads, each with a comment', () => {
    const text = readFileSync('.env.example', 'utf8');
    for (const name of ENV_VARIABLES) {
      const line = new RegExp(`^#? ?${name}=`, 'm').exec(text);
      expect(line, `${name} is missing from .env.example`).not.toBeNull();
      const before = text.slice(0, line!.index).trimEnd().split('\n').pop() ?? '';
      expect(before.startsWith('#'), `${name} has no comment above it`).toBe(true);
    }
  });
});
