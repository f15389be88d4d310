// The data directory's lock: one process at a time may open the embedded
// database in DATA_DIR. A pid lock file, created atomically; a file whose
// process is gone (by pid and, where /proc tells, by identity) is taken over,
// so a crash never locks the directory for good. A second process gets a clear
// error (DataDirBusyError) instead of a corrupted directory.
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DataDirBusyError } from '../errors.js';

const LOCK_FILE = 'tines-connector.pid';

/** Data directories this process has open: its own pid in a lock file is only stale when the dir is not among them. */
const openHere = new Set<string>();

/** Whether the process that wrote the lock file (`pid`, with its `identity` when recorded) still runs. */
function isAlive(pid: number, dataDir: string, identity: string | undefined): boolean {
  // Our own pid: either we hold it, or the file is left from an earlier life with the same pid (pid 1 in a container).
  if (pid === process.pid) return openHere.has(dataDir);
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // A live pid whose identity differs is another process that got the number later
  // (after a crash and a reboot, or pid reuse): the holder is gone.
  const now = identity === undefined ? undefined : processIdentity(pid);
  return now === undefined || now === identity;
}

/**
 * Who process `pid` is, beyond its number: the boot it runs in and its start time
 * in clock ticks since that boot, from /proc (Linux); undefined elsewhere. No wall
 * clock is involved, so a clock step cannot make a live holder look gone.
 */
function processIdentity(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm) " start at field 3; starttime is field 22.
    const startTicks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return startTicks && /^\d+$/.test(startTicks) && boot ? `${boot}:${startTicks}` : undefined;
  } catch {
    return undefined;
  }
}

/** Takes the data directory's pid lock; returns its release function. */
export function lockDataDir(dir: string): () => void {
  const dataDir = resolve(dir);
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      // Written aside, then linked into place: the lock file never exists without its pid.
      const mine = `${path}.${process.pid}`;
      // The pid, then who that process is (see processIdentity), when the platform tells.
      writeFileSync(mine, `${process.pid}\n${processIdentity(process.pid) ?? ''}\n`);
      try {
        linkSync(mine, path);
      } finally {
        rmSync(mine, { force: true });
      }
      openHere.add(dataDir);
      return () => {
        openHere.delete(dataDir);
        rmSync(path, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const { pid, identity, text } = readLock(path);
      if (pid !== undefined && isAlive(pid, dataDir, identity)) throw new DataDirBusyError(dataDir, pid);
      removeStaleLock(dataDir, path, pid, text);
    }
  }
  throw new Error(`cannot take the lock file ${path}`);
}

/** The lock file's pid and, when recorded, its holder's identity (files of earlier versions hold the pid only). */
function readLock(path: string): { pid?: number; identity?: string; text?: string } {
  try {
    const text = readFileSync(path, 'utf8');
    const [first, second] = text.split('\n');
    const pid = Number.parseInt(first ?? '', 10);
    return { pid: Number.isInteger(pid) && pid > 0 ? pid : undefined, identity: second?.trim() || undefined, text };
  } catch {
    return {}; // gone meanwhile
  }
}

/**
 * Removes a lock file whose process is gone. Only one process at a time may do
 * it (a second lock file, created exclusively), and only if the file still holds
 * what was judged stale, so two processes that found it stale cannot remove each
 * other's fresh lock.
 */
function removeStaleLock(dataDir: string, path: string, stalePid: number | undefined, staleText: string | undefined): void {
  const guard = `${path}.takeover`;
  let fd: number;
  try {
    fd = openSync(guard, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Another process is taking over; a guard left by a crash is cleared after a while.
    try {
      if (Date.now() - statSync(guard).mtimeMs > 10_000) rmSync(guard, { force: true });
    } catch {
      // gone meanwhile
    }
    throw new DataDirBusyError(dataDir, stalePid ?? 0);
  }
  try {
    closeSync(fd);
    // The whole file, not just the pid: a new holder may have the same pid (pid 1 in a restarted container).
    if (readLock(path).text === staleText) rmSync(path, { force: true });
  } finally {
    rmSync(guard, { force: true });
  }
}
