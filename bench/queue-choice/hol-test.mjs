// Functional probe: pg-boss 10 stately queue, a key with an active job and a newer queued job at the head of the queue.
import PgBoss from 'pg-boss';
const boss = new PgBoss({ connectionString: 'postgres://postgres@127.0.0.1/qbench_hol', supervise: false, schedule: false });
boss.on('error', (e) => console.error('event error', e.message));
await boss.start();
await boss.createQueue('q', { policy: 'stately' });
await boss.send('q', { n: 'A' }, { singletonKey: 'x' });
const [a] = await boss.fetch('q');
console.log('fetched', a.data.n);
console.log('send B (key x while A active):', await boss.send('q', { n: 'B' }, { singletonKey: 'x' }));
console.log('send B2 (key x, second queued):', await boss.send('q', { n: 'B2' }, { singletonKey: 'x' }));
await new Promise((r) => setTimeout(r, 20));
console.log('send C (key y):', await boss.send('q', { n: 'C' }, { singletonKey: 'y' }));
for (let i = 0; i < 3; i++) {
  try { const jobs = await boss.fetch('q'); console.log('fetch ->', jobs?.map((j) => j.data.n) ?? jobs); } catch (e) { console.log('fetch threw:', e.message); }
}
try { const jobs = await boss.fetch('q', { batchSize: 5 }); console.log('fetch batch 5 ->', jobs?.map((j) => j.data.n)); } catch (e) { console.log('fetch batch threw:', e.message); }
await boss.complete('q', a.id);
console.log('after completing A, fetch ->', (await boss.fetch('q', { batchSize: 5 }))?.map((j) => j.data.n));
// singleton slot dedupe: same key, same 60 s slot, after completion
await boss.createQueue('s', { policy: 'stately' });
const s1 = await boss.send('s', { n: 1 }, { singletonKey: 'k', singletonSeconds: 60 });
const [j1] = await boss.fetch('s'); await boss.complete('s', j1.id);
const s2 = await boss.send('s', { n: 2 }, { singletonKey: 'k', singletonSeconds: 60 });
console.log('slot dedupe: first', !!s1, 'second in same minute after completion', s2);
await boss.stop({ graceful: false });
