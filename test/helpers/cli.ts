// The real `tines-connector` bin (`node dist/bin/cli.js`, the bundle) run once as a child
// process: the environment is only what the test gives, the working directory
// has no .env, and a child that hangs is killed.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll } from 'vitest';

export const CLI = resolve('dist/bin/cli.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** PATH and HOME of this process, then `vars`: the whole environment of a child, built from scratch. */
export function childEnv(vars: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...vars };
}

/**
 * A new empty directory for the child's working directory, so no .env is
 * found there; removed after the tests of the file (or describe) it is made in.
 */
export function childCwd(prefix = 'tines-connector-cli-cwd-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs the CLI with exactly `env` in `cwd`; SIGKILL after `timeoutMs`. */
export function runCli(args: string[], env: Record<string, string>, opts: { cwd: string; timeoutMs?: number }): Promise<CliResult> {
  const { cwd, timeoutMs = 45_000 } = opts;
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', fail);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, stderr });
    });
  });
}
