// pino JSON lines on stdout; one child logger per component.
import { pino, type Logger } from 'pino';

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
    },
    destination ?? pino.destination({ fd: 1, sync: true }),
  );
}
