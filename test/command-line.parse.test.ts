// The parser against a table of its own: a command with subcommands is one
// entry per subcommand (as `connectors add` and `people import` register), and
// each gets its flags and positionals parsed strictly.
import { describe, expect, it } from 'vitest';
import { parseCommandLine, type CommandSpec } from '../src/command-line.js';

const handler = async () => async () => 0;
const TABLE: CommandSpec[] = [
  { name: 'status', summary: 'look', flags: { json: { type: 'boolean', help: 'json' } }, needs: 'database', load: handler },
  {
    name: 'connectors add',
    summary: 'add one',
    flags: { name: { type: 'string', value: 'N', help: 'its name' }, 'key-stdin': { type: 'boolean', help: 'read the key' } },
    needs: 'database',
    load: handler,
  },
  {
    name: 'connectors show',
    summary: 'show one',
    positionals: [{ name: 'NAME', required: true }],
    flags: { json: { type: 'boolean', help: 'json' } },
    needs: 'database',
    load: handler,
  },
  { name: 'query', summary: 'sql', positionals: [{ name: '"<SQL>"', required: true }], needs: 'database', load: handler },
];

describe('parseCommandLine', () => {
  it('finds a subcommand and parses its flags and positionals', () => {
    const p = parseCommandLine(['connectors', 'show', 'acme', '--json'], TABLE);
    expect(p).toMatchObject({ kind: 'run', command: { name: 'connectors show' }, args: { flags: { json: true }, positionals: ['acme'] } });
    const a = parseCommandLine(['connectors', 'add', '--name', 'acme', '--key-stdin'], TABLE);
    expect(a).toMatchObject({ kind: 'run', args: { flags: { name: 'acme', 'key-stdin': true }, positionals: [] } });
  });

  it('a group alone lists its subcommands (exit 2); with --help, exit 0; an unknown subcommand is named (exit 2)', () => {
    const alone = parseCommandLine(['connectors'], TABLE);
    expect(alone).toMatchObject({ kind: 'print', code: 2 });
    expect(alone.kind === 'print' && alone.text).toMatch(/connectors add .*\n.*connectors show NAME/);
    expect(parseCommandLine(['connectors', '--help'], TABLE)).toMatchObject({ kind: 'print', code: 0, stream: 'stdout' });
    expect(parseCommandLine(['help', 'connectors'], TABLE)).toMatchObject({ kind: 'print', code: 0 });
    const bad = parseCommandLine(['connectors', 'frob'], TABLE);
    expect(bad).toMatchObject({ kind: 'print', code: 2 });
    expect(bad.kind === 'print' && bad.text).toMatch(/unknown subcommand "frob"/);
  });

  it('a subcommand`s --help is its own usage', () => {
    const p = parseCommandLine(['connectors', 'add', '--help'], TABLE);
    expect(p.kind === 'print' && p.text).toMatch(/^usage: tines-connector connectors add \[--name N\] \[--key-stdin\]/);
  });

  it('a missing value, a missing or extra positional: exit 2 naming it', () => {
    for (const [argv, names] of [
      [['connectors', 'add', '--name'], '--name'],
      [['connectors', 'show'], 'NAME'],
      [['connectors', 'show', 'a', 'b'], '"b"'],
      [['status', '-j'], '-j'],
    ] as const) {
      const p = parseCommandLine(argv, TABLE);
      expect(p, argv.join(' ')).toMatchObject({ kind: 'print', code: 2, stream: 'stderr' });
      expect(p.kind === 'print' && p.text).toContain(names);
    }
  });

  it('a statement that opens with a `--` comment is an argument, not a flag; `--` ends the flags', () => {
    expect(parseCommandLine(['query', '-- count them\nSELECT 1'], TABLE)).toMatchObject({ kind: 'run', args: { positionals: ['-- count them\nSELECT 1'] } });
    expect(parseCommandLine(['query', ' -- x\rSELECT 1'], TABLE)).toMatchObject({ kind: 'run', args: { positionals: [' -- x\rSELECT 1'] } });
    expect(parseCommandLine(['query', '--', '--help'], TABLE)).toMatchObject({ kind: 'run', args: { positionals: ['--help'] } });
  });
});
