// Client of an egress node's debug HTTP server (`debug_handler_port`), for `egress jobs`.
//   GET  /jobs            → JobSummary[]
//   GET  /jobs/:id        → JobDetail
//   POST /jobs/:id/stop   → { info }        (graceful; answers once the outputs are finalized)
//   POST /jobs/:id/kill   → 202 { killed }
//   errors                → { error: "egress not found" } with a 4xx/5xx status
import { CliError, UsageError, networkReason, isNetworkError } from './errors.ts';

export interface JobSummary {
  egressId: string;
  requestType: string;
  /** EgressStatus name (EGRESS_ACTIVE), or its number */
  status: string | number;
  /** ISO time, or Unix ms/ns */
  startedAt: string | number | null;
  pids: number[];
  /** cores used over the last second */
  cpu: number | null;
  memoryBytes: number | null;
}

export interface JobProcess {
  pid: number;
  pgid: number;
  name: string;
  commandLine: string;
}

export interface JobDetail {
  egressId: string;
  requestType: string;
  status: string | number;
  request: unknown;
  info: unknown;
  processes: JobProcess[];
  commandLines: string[];
  cpu: number | null;
  memoryBytes: number | null;
}

export interface DebugUrlFlags {
  debugUrl?: string;
  port?: string;
}

/** `--debug-url`, else http://127.0.0.1:<--port or EGRESS_DEBUG_PORT>. */
export function resolveDebugUrl(flags: DebugUrlFlags, env: NodeJS.ProcessEnv): string {
  if (flags.debugUrl) {
    let url: URL;
    try {
      url = new URL(flags.debugUrl);
    } catch {
      throw new UsageError(`invalid --debug-url "${flags.debugUrl}"`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`invalid --debug-url "${flags.debugUrl}": expected http:// or https://`);
    return flags.debugUrl.replace(/\/+$/, '');
  }
  const raw = flags.port ?? env.EGRESS_DEBUG_PORT;
  if (raw === undefined || raw === '') {
    throw new UsageError("no debug port: give --debug-url, --port or set EGRESS_DEBUG_PORT (the node's debug_handler_port)");
  }
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`invalid ${flags.port !== undefined ? '--port' : 'EGRESS_DEBUG_PORT'} "${raw}": expected a port number 1-65535`);
  }
  return `http://127.0.0.1:${port}`;
}

export class DebugClient {
  constructor(
    readonly baseUrl: string,
    private readonly timeoutMs = 10_000,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  list(): Promise<JobSummary[]> {
    return this.request<JobSummary[]>('GET', '/jobs');
  }

  inspect(egressId: string): Promise<JobDetail> {
    return this.request<JobDetail>('GET', `/jobs/${encodeURIComponent(egressId)}`);
  }

  /** Graceful stop; resolves once the node has finalized the outputs. */
  stop(egressId: string, timeoutMs = 120_000): Promise<{ info: unknown }> {
    return this.request<{ info: unknown }>('POST', `/jobs/${encodeURIComponent(egressId)}/stop`, timeoutMs);
  }

  kill(egressId: string): Promise<{ killed: unknown }> {
    return this.request<{ killed: unknown }>('POST', `/jobs/${encodeURIComponent(egressId)}/kill`);
  }

  private async request<T>(method: 'GET' | 'POST', path: string, timeoutMs = this.timeoutMs): Promise<T> {
    const url = `${this.baseUrl}${path}`;
    let res: Response;
    try {
      res = await this.fetchImpl(url, { method, signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      if (isNetworkError(err)) throw new CliError(`cannot reach the egress node's debug server at ${this.baseUrl}: ${networkReason(err)}`);
      throw new CliError(`${method} ${url}: ${(err as Error).message}`);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw new CliError(`${method} ${url}: reading the answer failed: ${networkReason(err)}`);
    }
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (!res.ok) {
      const message =
        typeof body === 'object' && body !== null && typeof (body as { error?: unknown }).error === 'string'
          ? (body as { error: string }).error
          : text.trim().split('\n')[0] || res.statusText;
      throw new CliError(`debug server: ${message} (HTTP ${res.status})`);
    }
    if (body === undefined) throw new CliError(`debug server: ${method} ${path} answered ${res.status} without JSON`);
    return body as T;
  }
}
