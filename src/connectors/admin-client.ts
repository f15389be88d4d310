// Local commands' way to the admin API of the daemon that holds the embedded
// database: HTTP over the unix socket in DATA_DIR (see startAdminSocket).
import http from 'node:http';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The socket in DATA_DIR; one name for the server and its clients. */
export const ADMIN_SOCKET = 'tines-connector-admin.sock';

export function adminSocketPath(dataDir: string): string {
  return join(dataDir, ADMIN_SOCKET);
}

export interface AdminAnswer {
  status: number;
  body: Record<string, unknown> & { error?: { code: string; message: string; fields?: Record<string, string> } };
}

/** One request to the running daemon's admin socket; undefined when no daemon listens there. */
export async function callAdminSocket(dataDir: string, method: string, path: string, payload?: unknown): Promise<AdminAnswer | undefined> {
  const socketPath = adminSocketPath(dataDir);
  if (!existsSync(socketPath)) return undefined;
  const data = payload === undefined ? undefined : JSON.stringify(payload);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> =
      data === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) };
    const req = http.request({ socketPath, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as AdminAnswer['body'] });
        } catch {
          reject(new Error(`the daemon answered ${res.statusCode} with something that is not JSON`));
        }
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNREFUSED' || err.code === 'ENOENT' ? resolve(undefined) : reject(err)));
    req.end(data);
  });
}
