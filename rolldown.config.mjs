// The shipped CLI: dist/bin/cli.js, one ES module (plus a chunk per lazily
// loaded command) bundled from tsc's output in dist/src. A `sync` then loads a
// dozen files instead of about 400, which is a third of a no-change sync's
// start-up (see README, Performance). The embedded database stays a plain
// dependency: its WebAssembly files are found next to its own modules.
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
