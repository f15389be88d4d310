// A running daemon hears of a connector added, re-keyed, rescheduled or removed
// on the PostgreSQL server at once: LISTEN on the channel migration 010's
// trigger notifies. One dedicated connection; when it drops it is opened again
// with backoff, and a reload follows (notifications sent meanwhile are lost).
// The embedded database needs none of this: its changes come through this
// very process (the admin API or its socket), which reloads itself.
import pg from 'pg';
import type { Logger } from '../log.js';
import { sleep } from '../tines/retry.js';

export const REGISTRY_CHANNEL = 'tines_connector_registry';

/** Calls onChange (debounced) after each notification and after each reconnect; stop() ends it. */
export function watchRegistry(url: string, log: Logger, onChange: () => void): { stop(): Promise<void> } {
  const stopping = new AbortController();
  let client: pg.Client | undefined;
  let debounce: NodeJS.Timeout | undefined;
  const changed = () => {
    clearTimeout(debounce);
    debounce = setTimeout(onChange, 100);
  };
  const loop = (async () => {
    for (let attempt = 0; !stopping.signal.aborted; attempt++) {
      const c = new pg.Client({ connectionString: url, keepAlive: true, application_name: 'tines-connector registry watch' });
      client = c;
      try {
        const ended = new Promise<void>((resolve) => {
          c.on('error', (err) => {
            log.warn({ err: { message: err.message } }, 'registry watch connection failed; reconnecting');
            resolve();
          });
          c.on('end', () => resolve());
        });
        await c.connect();
        await c.query(`LISTEN ${REGISTRY_CHANNEL}`);
        c.on('notification', changed);
        if (attempt > 0) changed(); // what was notified while it was down
        attempt = 0;
        log.debug('listening for connector changes');
        await ended;
      } catch (err) {
        if (!stopping.signal.aborted) log.warn({ err: { message: (err as Error).message } }, 'cannot listen for connector changes; retrying');
      } finally {
        await c.end().catch(() => undefined);
      }
      await sleep(Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5)), stopping.signal).catch(() => undefined);
    }
  })();
  return {
    async stop() {
      stopping.abort();
      clearTimeout(debounce);
      await client?.end().catch(() => undefined);
      await loop;
    },
  };
}
