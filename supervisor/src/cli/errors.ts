// How the CLI fails: one line `egress: <message>` on stderr, exit 1 for server/runtime errors and
// 2 for usage/input errors. Everything that can go wrong is turned into a CliError here.
import { CommanderError } from 'commander';
import type { ServerError } from 'livekit-server-sdk';

export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_RUNTIME,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A usage or input problem (bad flag, bad request file): exit code 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT_USAGE);
    this.name = 'UsageError';
  }
}

/** The innermost useful reason of a fetch failure: `connect ECONNREFUSED 127.0.0.1:7880`, `timed out`. */
export function networkReason(err: unknown): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return 'timed out';
  let e: unknown = err;
  // undici wraps the socket error: TypeError('fetch failed', { cause: Error('connect ECONNREFUSED …') })
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  if (e instanceof Error) {
    if ('errors' in e && Array.isArray(e.errors) && e.errors[0] instanceof Error) return e.errors[0].message;
    // undici refuses the fetch standard's "bad ports" (1, 7, 9, 21, 6000 …) before connecting
    if (e.message === 'bad port') return 'the port is on the fetch standard\'s blocked list';
    return e.message || e.name;
  }
  return String(e);
}

/** True when `err` is a transport failure (no HTTP answer at all). */
export function isNetworkError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return true;
  return err instanceof TypeError && err.message === 'fetch failed';
}

/**
 * A Twirp error answer from livekit-server: `not_found: egress not found`. livekit-server prefixes
 * errors it relays from psrpc with `twirp error unknown: `, which says nothing: it is dropped.
 */
export function describeServerError(err: ServerError): string {
  const message =
    err.message
      .trim()
      .replace(/^twirp error [a-z_]+: /, '')
      // the auth middleware answers in plain text and quotes the token it refused: keep the reason only
      .replace(/^invalid token: \S+, error: /, 'invalid token: ')
      .replace(/\beyJ[\w-]*\.[\w-]+\.[\w-]+/g, '<token>') || err.name;
  const code = err.code || (err.status === 401 ? 'unauthenticated' : err.status === 403 ? 'permission_denied' : undefined);
  if (code) return `${code}: ${message}`;
  return `HTTP ${err.status}${err.name ? ` ${err.name}` : ''}: ${message}`;
}

/**
 * livekit-server-sdk's ServerError (an HTTP answer), told by its shape: the SDK loads only with the
 * API client (cli/api.ts), never for `--help` or `serve`.
 */
function isServerError(err: unknown): err is ServerError {
  return err instanceof Error && typeof (err as Partial<ServerError>).status === 'number';
}

/**
 * Turns whatever a livekit-server call threw into a CliError. `url` names the server in the
 * "cannot reach" message.
 */
export function fromServerCall(err: unknown, url: string): CliError {
  if (err instanceof CliError) return err;
  if (isServerError(err)) return new CliError(describeServerError(err));
  if (isNetworkError(err)) return new CliError(`cannot reach livekit-server at ${url}: ${networkReason(err)}`);
  return new CliError(err instanceof Error ? err.message : String(err));
}

/** The single line and exit code for any error that reaches the top of the CLI. */
export function finalError(err: unknown): { line: string; exitCode: number } {
  if (err instanceof CommanderError) {
    // commander's own texts start with "error: "
    const message = err.message.replace(/^error:\s*/, '');
    return { line: `egress: ${oneLine(message)}`, exitCode: EXIT_USAGE };
  }
  if (err instanceof CliError) return { line: `egress: ${oneLine(err.message)}`, exitCode: err.exitCode };
  const message = err instanceof Error ? err.message : String(err);
  return { line: `egress: ${oneLine(message)}`, exitCode: EXIT_RUNTIME };
}

/** Collapses a message to one line: the CLI's failure output is always exactly one line. */
export function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, '; ').trim();
}
