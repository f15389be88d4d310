// Probe: pg-boss 10 dedupe by a deterministic job id (any cron schedule), standard policy.
import crypto from 'node:crypto';
import PgBoss from 'pg-boss';
const uuidFrom = (s) => { const h = crypto.createHash('sha1').update(s).digest(); h[6] = (h[6] & 0x0f) | 0x50; h[8] = (h[8] & 0x3f) | 0x80; const x = h.subarray(0, 16).toString('hex'); return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`; };
const boss = new PgBoss({ connectionString: 'postgres://postgres@127.0.0.1/qbench_probe2', supervise: false, schedule: false });
await boss.start();
await boss.createQueue('sync', { policy: 'standard' });
const id = uuidFrom('connector-42@2026-12-01T00:15:00Z');
console.log('send 1:', await boss.send('sync', { c: 42 }, { id }));
console.log('send 2 (same slot, other replica):', await boss.send('sync', { c: 42 }, { id }));
await boss.insert([{ name: 'sync', id, data: { c: 42 } }]);
const [j] = await boss.fetch('sync'); await boss.complete('sync', j.id);
console.log('send 3 after completion:', await boss.send('sync', { c: 42 }, { id }));
console.log('rows with that id:', (await boss.getJobById('sync', id))?.state);
await boss.stop({ graceful: false });
