// Reads a node's debug endpoint (supervisor/src/http/debug.ts) in tests.
export interface JobDetail {
  egressId: string;
  status: string;
  processes: { pid: number; pgid: number; name: string; commandLine: string }[];
  commandLines: string[];
}

export async function jobDetail(debugPort: number, egressId: string): Promise<JobDetail> {
  const res = await fetch(`http://127.0.0.1:${debugPort}/jobs/${egressId}`);
  if (!res.ok) throw new Error(`GET /jobs/${egressId}: ${res.status} ${await res.text()}`);
  return (await res.json()) as JobDetail;
}

/** A zombie counts as gone: it holds no resources, and PID 1 in a container may never reap it. */
export { processAlive as isAlive } from '../../shared/src/scratch.ts';
