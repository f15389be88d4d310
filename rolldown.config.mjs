// The shipped CLI: dist/bin/cli.js, one ES module (plus a chunk per lazily
// loaded command) bundled from tsc's output in dist/src. A `sync` then loads a
// dozen files instead of about 400, which is a third of a no-change sync's
// start-up (see README, Performance). The embedded database stays a plain
// dependency: its WebAssembly files are found next to its own modules.
//
// Two paths of bundled packages find files by their own location, and would
// break in the bundle; the connector uses neither, and must not start to:
// pino transports (a worker thread loading a file by path; the connector logs
// through pino.destination) and node-cron tasks given as a file path (forked
// as a child process; the connector schedules a function).
import { defineConfig } from 'rolldown';

export default defineConfig({
  input: { cli: 'dist/src/cli.js' },
  platform: 'node',
  external: [/^node:/, /^@electric-sql\/pglite/],
  logLevel: 'warn',
  output: {
    dir: 'dist/bin',
    format: 'esm',
    entryFileNames: '[name].js',
    chunkFileNames: '[name].js',
    cleanDir: true,
  },
});
