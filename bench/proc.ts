// /proc readers for the bench: a process's resident memory, and CPU time summed by process group.
// Kept independent of the supervisor's own monitor (supervisor/src/admission/proc.ts), so the bench
// checks the node's figures rather than repeating them.
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

/** Clock ticks per second, the unit of /proc/<pid>/stat times (100 on Linux almost everywhere). */
export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** A /proc/<pid>/status field in kB (VmRSS, VmHWM, ...), as bytes; undefined if the process is gone. */
export function statusBytes(pid: number, field: string): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

interface Stat {
  pid: number;
  ppid: number;
  pgid: number;
  /** utime + stime, in seconds */
  cpuSeconds: number;
}

function readStat(pid: number): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may hold spaces and parentheses: the fields start after the last ')'.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // f[0] state, f[1] ppid, f[2] pgrp, ..., f[11] utime, f[12] stime
    return { pid, ppid: Number(f[1]), pgid: Number(f[2]), cpuSeconds: (Number(f[11]) + Number(f[12])) / CLK_TCK };
  } catch {
    return undefined;
  }
}

export function allStats(): Stat[] {
  const out: Stat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) out.push(s);
  }
  return out;
}

/** CPU seconds used so far by every live process of each group. */
export function cpuByGroup(pgids: Iterable<number>): Map<number, number> {
  const wanted = new Set(pgids);
  const sums = new Map<number, number>([...wanted].map((g) => [g, 0]));
  for (const s of allStats()) if (wanted.has(s.pgid)) sums.set(s.pgid, sums.get(s.pgid)! + s.cpuSeconds);
  return sums;
}

/** CPU seconds used so far by one process. */
export function cpuOfPid(pid: number): number | undefined {
  return readStat(pid)?.cpuSeconds;
}

/** Aggregate CPU times from /proc/stat, in ticks: busy (everything but idle and iowait) and total. */
export function systemTimes(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/** Busy fraction of the whole machine (0..1) between two systemTimes() samples. */
export function busyBetween(a: { busy: number; total: number }, b: { busy: number; total: number }): number {
  return b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0;
}

export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

/** The spare handlers (handler_pool) of the node process `nodePid`: its children started with EGRESS_HANDLER_SPARE=1. */
export function sparePids(nodePid: number): number[] {
  return allStats()
    .filter((s) => s.ppid === nodePid)
    .map((s) => s.pid)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes('EGRESS_HANDLER_SPARE=1');
      } catch {
        return false;
      }
    });
}

/** Proportional set size of a process (its shared pages divided among their users), from smaps_rollup. */
export function pssBytes(pid: number): number | undefined {
  try {
    const m = /^Pss:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Pids whose command name (/proc/<pid>/comm) is `name`. */
export function pidsNamed(name: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/comm`, 'utf8').trim() === name) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
