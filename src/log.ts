// pino JSON lines (or pino-pretty text for a person at a terminal); one child
// logger per component, and one `component` key per line.
import { isatty } from 'node:tty';
import { pino, type Logger } from 'pino';
import type { LogFormat } from './config.js';

export type { Logger };

/** Paths pino blanks wherever they appear in a logged object. */
export const REDACT_PATHS = [
  'apiKey',
  '*.apiKey',
  'key',
  'authorization',
  'Authorization',
  '*.authorization',
  '*.Authorization',
  'headers',
  '*.headers',
  'config.headers',
  'err.config',
  'err.request',
  'err.response.config',
  'databaseUrl',
  '*.databaseUrl',
  'password',
  '*.password',
];

export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'tines-connector' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
      onChild: oneComponent,
    },
    destination ?? pino.destination({ fd: 1, sync: true }),
  );
}

const COMPONENT = /,"component":"(?:[^"\\]|\\.)*"/g;

/**
 * A component's child of another component's logger (the Tines client under a
 * sync) names only its own component: pino writes every binding of every
 * ancestor, so the line would otherwise carry two `component` keys. (onChild is
 * inherited by every child.)
 */
function oneComponent(child: Logger): void {
  const bound = child as unknown as Record<symbol, string>;
  const chindings = bound[pino.symbols.chindingsSym] ?? '';
  const found = chindings.match(COMPONENT);
  if (found && found.length > 1) {
    const last = found[found.length - 1]!;
    bound[pino.symbols.chindingsSym] = `${chindings.replace(COMPONENT, '')}${last}`;
  }
}

/**
 * Where log lines go, as LOG_FORMAT says: JSON lines, or text through
 * pino-pretty (loaded only then). Unset: text when `fd` is a terminal, JSON
 * lines otherwise (a container's log, a pipe, a file). `onClosed` is called
 * once when the reader of `fd` has gone (EPIPE: `run | head`); later lines
 * are dropped.
 */
export async function logDestination(format: LogFormat | undefined, fd: 1 | 2, onClosed?: () => void): Promise<pino.DestinationStream> {
  const sink = pino.destination({ fd, sync: true });
  let closed = false;
  sink.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    if (!closed) {
      closed = true;
      onClosed?.();
    }
  });
  if ((format ?? (isatty(fd) ? 'pretty' : 'json')) === 'json') return sink;
  const { default: pretty } = await import('pino-pretty');
  return pretty({ destination: sink, colorize: isatty(fd), singleLine: true, ignore: 'pid,hostname,service', translateTime: 'SYS:HH:MM:ss.l' });
}
