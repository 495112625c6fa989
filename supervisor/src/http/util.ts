// Small helpers shared by the node's HTTP endpoints (health, metrics, debug, templates).
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { EgressError, isErrorCode } from '@egress/shared/errors.ts';

export function sendText(res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  sendText(res, status, JSON.stringify(value), 'application/json');
}

/** 405 with the Allow header; true when the method is not allowed (the caller returns). */
export function rejectMethod(req: IncomingMessage, res: ServerResponse, allowed: readonly string[], json = false): boolean {
  const method = req.method ?? 'GET';
  if (allowed.includes(method)) return false;
  res.setHeader('Allow', allowed.join(', '));
  if (json) sendJson(res, 405, { error: 'method not allowed' });
  else sendText(res, 405, 'method not allowed\n');
  return true;
}

/** The HTTP status for an error: EgressError's mapping, else a psrpc `code` property's mapping, else 500. */
export function httpStatusOf(err: unknown): number {
  if (err instanceof EgressError) return err.httpStatus || 500;
  if (typeof err === 'object' && err !== null) {
    const { httpStatus, code } = err as { httpStatus?: unknown; code?: unknown };
    if (typeof httpStatus === 'number' && httpStatus >= 400 && httpStatus < 600) return httpStatus;
    if (typeof code === 'string' && isErrorCode(code)) return new EgressError(code, '').httpStatus || 500;
  }
  return 500;
}

export const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** The request's path, or undefined when the URL cannot be parsed. */
export function pathnameOf(req: IncomingMessage): string | undefined {
  try {
    return new URL(req.url ?? '/', 'http://localhost').pathname;
  } catch {
    return undefined;
  }
}

export class PortInUseError extends Error {
  constructor(readonly key: string, readonly port: number, message: string) {
    super(message);
    this.name = 'PortInUseError';
  }
}

/** Listens on host:port; a failure names the config key (`health_port 7001 is in use`). */
export function listen(server: Server, port: number, host: string, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE') reject(new PortInUseError(key, port, `${key} ${port} is in use`));
      else if (err.code === 'EACCES') reject(new Error(`${key} ${port}: permission denied`));
      else if (err.code === 'EADDRNOTAVAIL') reject(new Error(`${key} ${port}: address ${host} is not available`));
      else reject(new Error(`${key} ${port}: ${err.message}`));
    };
    const onListening = (): void => {
      server.off('error', onError);
      const address = server.address();
      resolve(address !== null && typeof address === 'object' ? address.port : port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

/** Stops accepting, drops idle and in-flight keep-alive connections, resolves when closed. */
export function closeServer(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    // In-flight requests (a graceful stop can take a while) get a moment, then are cut.
    const timer = setTimeout(() => server.closeAllConnections(), 2000);
    timer.unref();
    server.once('close', () => clearTimeout(timer));
  });
}
