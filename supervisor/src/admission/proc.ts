// Reads CPU and memory from /proc. Jobs are measured by process group: every process a handler
// reported (itself, gst-launch, later Chromium) leads a group, and everything in it counts.
import { readdirSync, readFileSync } from 'node:fs';

const CLOCK_TICKS = 100;
const PAGE_SIZE = 4096;

export interface CpuTimes {
  busy: number;
  total: number;
}

/** System-wide jiffies from the first line of /proc/stat. */
export function systemCpuTimes(): CpuTimes {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  const total = fields.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

export interface ProcSample {
  pid: number;
  ppid: number;
  pgid: number;
  /** utime + stime, seconds */
  cpuSeconds: number;
  rssBytes: number;
}

/** One pass over /proc: every process's group, CPU time and resident memory. */
export function sampleProcesses(): ProcSample[] {
  const out: ProcSample[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // The command name may contain spaces and parentheses; fields start after the last ')'.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.push({
        pid: Number(name),
        ppid: Number(f[1]),
        pgid: Number(f[2]),
        cpuSeconds: (Number(f[11]) + Number(f[12])) / CLOCK_TICKS,
        rssBytes: Number(f[21]) * PAGE_SIZE,
      });
    } catch {
      // The process exited between readdir and read.
    }
  }
  return out;
}

/** MemAvailable from /proc/meminfo, bytes. */
export function availableMemory(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.POSITIVE_INFINITY;
}

/**
 * The node's own processes outside every job: `rootPid` (the supervisor) and its descendants, less the
 * process groups jobs are measured by. Pure.
 */
export function ownProcesses(samples: ProcSample[], rootPid: number, jobPgids: ReadonlySet<number>): ProcSample[] {
  const children = new Map<number, ProcSample[]>();
  for (const p of samples) {
    const siblings = children.get(p.ppid);
    if (siblings) siblings.push(p);
    else children.set(p.ppid, [p]);
  }
  const out: ProcSample[] = [];
  const seen = new Set<number>();
  const stack = samples.filter((p) => p.pid === rootPid);
  while (stack.length) {
    const p = stack.pop()!;
    if (seen.has(p.pid)) continue;
    seen.add(p.pid);
    if (!jobPgids.has(p.pgid)) out.push(p);
    stack.push(...(children.get(p.pid) ?? []));
  }
  return out;
}
