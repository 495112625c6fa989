import winston from 'winston';
import type { LogLevel } from './config/types.ts';

export type Logger = winston.Logger;

// A log line that cannot be written (its reader gone: EPIPE) is dropped. Unhandled, the stream's
// error became an uncaught exception, whose own log line failed the same way, and so on: a node
// whose parent died spun a core at 100% and never ran its shutdown.
let outputGuarded = false;
function dropUnwritableOutput(): void {
  if (outputGuarded) return;
  outputGuarded = true;
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
}

/** Logs go to stderr: a handler's stdout may carry media or parsed tool output. */
export function createLogger(opts: { level: LogLevel; json: boolean; fields?: Record<string, string>; file?: string }): Logger {
  dropUnwritableOutput();
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
