// Prints the markdown table of the results/*.json files named on the command line.
import fs from 'node:fs';
const rows = process.argv.slice(2).map((f) => { const j = JSON.parse(fs.readFileSync(f)); return j.result ?? j; });
const fmt = (v) => (v == null ? '–' : typeof v === 'number' ? v.toLocaleString('en-US') : String(v));
const seg = (r, k, f) => (r.segments?.[k] ? fmt(r.segments[k][f]) : '–');
const lines = [
  ['run', (r) => r.tag],
  ['minutes × replicas × connectors', (r) => `${r.minutes} × ${r.replicas} × ${r.connectors}`],
  ['load average (mean / max)', (r) => `${r.load1_avg} / ${r.load1_max}`],
  ['slots due in window', (r) => fmt(r.slots_due)],
  ['slots run', (r) => fmt(r.slot_runs_done)],
  ['slots not run (of which a later run covered)', (r) => `${fmt(r.missed_slots)} (${fmt(r.missed_but_collapsed_into_later_run)})`],
  ['duplicate slot runs (a finished slot run again)', (r) => fmt(r.duplicate_slot_runs)],
  ['re-runs of the killed slot', (r) => fmt(r.reruns_of_killed_slot)],
  ['overlapping runs of one connector', (r) => fmt(r.overlapping_runs) + (r.runs_with_unknown_end != null ? ` (runs with unknown end: ${r.runs_with_unknown_end})` : '')],
  ['lateness p50 / p99 / max, whole window (ms)', (r) => `${fmt(r.lateness_p50_ms)} / ${fmt(r.lateness_p99_ms)} / ${fmt(r.lateness_max_ms)}`],
  ['steady before kill: run / due, p50 / p99 (ms)', (r) => r.segments?.steady_before_kill ? `${fmt(r.segments.steady_before_kill.done)} / ${fmt(r.segments.steady_before_kill.slots_due)}, ${seg(r, 'steady_before_kill', 'lateness_p50_ms')} / ${seg(r, 'steady_before_kill', 'lateness_p99_ms')}` : '–'],
  ['kill minute … +5: run / due, p99 (ms)', (r) => r.segments?.kill_minute_to_plus5 ? `${fmt(r.segments.kill_minute_to_plus5.done)} / ${fmt(r.segments.kill_minute_to_plus5.slots_due)}, ${seg(r, 'kill_minute_to_plus5', 'lateness_p99_ms')}` : '–'],
  ['outage minute … +4: run / due, p99 (ms)', (r) => r.segments?.outage_minute_to_plus4 ? `${fmt(r.segments.outage_minute_to_plus4.done)} / ${fmt(r.segments.outage_minute_to_plus4.slots_due)}, ${seg(r, 'outage_minute_to_plus4', 'lateness_p99_ms')}` : '–'],
  ['after recovery: run / due, p99 (ms)', (r) => r.segments?.after_recovery ? `${fmt(r.segments.after_recovery.done)} / ${fmt(r.segments.after_recovery.slots_due)}, ${seg(r, 'after_recovery', 'lateness_p99_ms')}` : '–'],
  ['SIGKILL: syncs in flight → all ran elsewhere after (ms)', (r) => r.failover ? `${r.failover.inflight} → ${fmt(r.failover.next_run_max_ms)} (${r.failover.per.map((p) => p.next_ms).join(', ')})` : '–'],
  ['outage: first run after database back (ms)', (r) => r.outage ? fmt(r.outage.first_run_after_ms) : '–'],
  ['CPU ms per job (all worker processes)', (r) => fmt(r.cpu_ms_per_job)],
  ['RSS max per process (MB)', (r) => fmt(r.rss_mb_max_per_process)],
  ['DB connections max, queue library (all processes)', (r) => fmt(r.db_connections_max.queue_lib)],
  ['due-but-not-started depth: median / max', (r) => `${fmt(r.queue_due_p50)} / ${fmt(r.queue_due_max)}`],
  ['enqueue of 1000 jobs p50 / max (ms)', (r) => { const e = [...r.enqueue_ms].sort((a, b) => a - b); return e.length ? `${e[e.length >> 1]} / ${e.at(-1)}` : '–'; }],
  ['graceful stop (SIGTERM → exit, ms)', (r) => fmt(r.graceful_stop_ms)],
  ['worker deaths / runner restarts (graphile)', (r) => r.lib === 'graphile' ? `${fmt(r.worker_fatal)} / ${fmt(r.runner_restarts)}` : '–'],
  ['guard skips (pg-boss standard)', (r) => fmt(r.guard_skips)],
];
console.log(`| | ${rows.map((r) => r.lib).join(' | ')} |`);
console.log(`|---|${rows.map(() => '---').join('|')}|`);
for (const [label, f] of lines) console.log(`| ${label} | ${rows.map((r) => { try { return f(r); } catch { return '–'; } }).join(' | ')} |`);
