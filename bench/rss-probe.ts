// Preloaded into the measured sync process (node --import): on exit it writes
// its peak resident set size (KiB) where BENCH_RSS_FILE says.
import { writeFileSync } from 'node:fs';

const file = process.env.BENCH_RSS_FILE;
if (file) process.on('exit', () => writeFileSync(file, String(process.resourceUsage().maxRSS)));
