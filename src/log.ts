import pino, { type Logger } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** pino JSON to stdout; every component takes a child logger with `component` set. */
export function createLogger(level: LogLevel = 'info', destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = { level, base: { pid: process.pid } };
  return destination ? pino(options, destination) : pino(options);
}

/** For tests and library use: drops everything. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
