// Shared by the benches (bench/run.ts, bench/kinds.ts): percentiles, polling, an egress node with its
// debug and health endpoints, the figures table, and stopping everything on exit or on a signal.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LocalDeployment } from '../tests/rig/deployment.ts';
import { freePort } from '../tests/rig/ports.ts';
import { startEgressNode, type EgressNode } from '../tests/support/egress-node.ts';

export const makeLog = (tag: string) => (msg: string) => console.log(`[${tag} +${(performance.now() / 1000).toFixed(1)}s] ${msg}`);

// ---- numbers ----

export interface Spread {
  n: number;
  p50: number;
  p90: number;
  max: number;
  min: number;
  mean: number;
}

/** Nearest-rank percentiles. */
export function spread(values: number[]): Spread {
  const v = [...values].sort((a, b) => a - b);
  const at = (p: number) => v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))]!;
  return { n: v.length, p50: at(50), p90: at(90), max: v[v.length - 1]!, min: v[0]!, mean: v.reduce((a, b) => a + b, 0) / v.length };
}

export async function waitUntil<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, everyMs: number): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export const ratioText = (measured: number, baseline: number) => `${(measured / baseline).toFixed(2)}×`;

// ---- nodes ----

export interface JobSummary {
  egressId: string;
  status: string;
  cpu: number | null;
}
export interface JobDetail extends JobSummary {
  processes: { pid: number; pgid: number; name: string }[];
}

export interface BenchNode {
  node: EgressNode;
  pid: number;
  jobs(): Promise<JobSummary[]>;
  job(id: string): Promise<JobDetail | undefined>;
  health(): Promise<{ CpuLoad: number; ActiveJobs: number; CanAccept: boolean }>;
  stop(): Promise<void>;
}

/** An egress node (bin/egress serve) with a debug port and a health port. */
export async function startNode(d: LocalDeployment, extra: Record<string, unknown>): Promise<BenchNode> {
  const [debugPort, healthPort] = await Promise.all([freePort(), freePort()]);
  const node = await startEgressNode(d, { logging: { level: 'info' }, debug_handler_port: debugPort, health_port: healthPort, ...extra });
  const get = async (port: number, path: string): Promise<Response> => fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
  let stopped: Promise<void> | undefined;
  return {
    node,
    // bin/egress execs node: the child's pid is the supervisor's.
    pid: node.process.pid!,
    jobs: async () => (await (await get(debugPort, '/jobs')).json()) as JobSummary[],
    job: async (id) => {
      const res = await get(debugPort, `/jobs/${encodeURIComponent(id)}`);
      return res.status === 404 ? undefined : ((await res.json()) as JobDetail);
    },
    health: async () => (await (await get(healthPort, '/')).json()) as { CpuLoad: number; ActiveJobs: number; CanAccept: boolean },
    stop: () => (stopped ??= node.stop('SIGINT').then(() => undefined)),
  };
}

// ---- the table ----

/** Prints a Markdown-style table: the first row is the head. */
export function printTable(table: string[][]): void {
  const columns = Math.max(...table.map((r) => r.length));
  const w = Array.from({ length: columns }, (_, c) => Math.max(...table.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => `| ${w.map((width, c) => (r[c] ?? '').padEnd(width)).join(' | ')} |`;
  console.log(line(table[0]!));
  console.log(`|${w.map((width) => '-'.repeat(width + 2)).join('|')}|`);
  for (const r of table.slice(1)) console.log(line(r));
}

// ---- running a bench ----

/**
 * Runs `main`, then the cleanups it registered (last first), then `report`, and exits; on SIGINT or
 * SIGTERM the cleanups run at once and the process exits 130.
 */
export async function runBench(name: string, main: (cleanups: (() => Promise<unknown> | unknown)[]) => Promise<void>, report: () => void): Promise<never> {
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  const cleanup = async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        console.error(`${name} cleanup:`, err);
      }
    }
  };
  let interrupted = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      interrupted = true;
      console.error(`${name}: ${sig}, stopping everything`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  let code = 0;
  try {
    await main(cleanups);
  } catch (err) {
    code = 1;
    console.error(`${name} failed:`, err);
  }
  if (interrupted) return new Promise<never>(() => undefined);
  console.log(`[${name}] stopping everything`);
  await cleanup();
  report();
  process.exit(code);
}
