import winston from 'winston';
import type { LogLevel } from './config/types.ts';

export type Logger = winston.Logger;

/** Logs go to stderr: a handler's stdout may carry media or parsed tool output. */
export function createLogger(opts: { level: LogLevel; json: boolean; fields?: Record<string, string>; file?: string }): Logger {
  const format = opts.json
    ? winston.format.combine(winston.format.timestamp(), winston.format.json())
    : winston.format.combine(
        winston.format.timestamp(),
        winston.format.printf(({ timestamp, level, message, ...rest }) => {
          const extra = Object.keys(rest).length ? ' ' + JSON.stringify(rest) : '';
          return `${String(timestamp)} ${level.toUpperCase().padEnd(5)} ${String(message)}${extra}`;
        }),
      );
  return winston.createLogger({
    level: opts.level,
    defaultMeta: opts.fields,
    format,
    transports: [
      new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] }),
      ...(opts.file ? [new winston.transports.File({ filename: opts.file, level: 'debug', format: winston.format.combine(winston.format.timestamp(), winston.format.json()) })] : []),
    ],
  });
}
