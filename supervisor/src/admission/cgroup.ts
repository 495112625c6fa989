// The CPU quota and memory limit this process runs under, from its cgroup. In a container the host's
// /proc/stat and /proc/meminfo describe every pod on the machine, so they say nothing about what this
// node may use; its cgroup does. Reads cgroup v1 (cpu / memory controllers) and v2 (the unified tree).
// Every path is read under `root`, so a unit test can hand in a fake /proc and /sys.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Where a memory limit is set: usage is re-read from there as jobs come and go. */
export interface MemoryGroup {
  version: 1 | 2;
  dir: string;
}

export interface CgroupLimits {
  /** Cores the CPU quota allows; undefined when there is no quota. */
  cpus?: number;
  /** The file the quota was read from, for the start-up log. */
  cpuFile?: string;
  /** Bytes; undefined when there is no limit. */
  memoryLimit?: number;
  /** Working set of the group whose limit binds, bytes. */
  memoryUsage?: number;
  memoryGroup?: MemoryGroup;
}

/**
 * v1 writes "no limit" as the largest page-aligned 63-bit value (9223372036854771712, not exact in a
 * double); anything this large, or above the machine's RAM, limits nothing.
 */
const UNLIMITED_V1 = 2 ** 62;

export interface ProcCgroup {
  /** 0 for the v2 unified hierarchy. */
  id: number;
  controllers: string[];
  path: string;
}

/** /proc/<pid>/cgroup: `hierarchy-id:controller,list:/path`, one line per hierarchy. */
export function parseProcCgroup(text: string): ProcCgroup[] {
  const out: ProcCgroup[] = [];
  for (const line of text.split('\n')) {
    const a = line.indexOf(':');
    const b = line.indexOf(':', a + 1);
    if (a < 0 || b < 0) continue;
    out.push({ id: Number(line.slice(0, a)), controllers: line.slice(a + 1, b).split(',').filter(Boolean), path: line.slice(b + 1) });
  }
  return out;
}

export interface CgroupMount {
  /** The directory of the hierarchy that is mounted: not "/" when a container sees only its own subtree. */
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/** The cgroup mounts in /proc/<pid>/mountinfo: `id parent dev root mountpoint opts [optional...] - fstype source superopts`. */
export function parseMountInfo(text: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (sep < 0 || f.length < sep + 4) continue;
    const fsType = f[sep + 1]!;
    if (fsType !== 'cgroup' && fsType !== 'cgroup2') continue;
    out.push({ root: unescape(f[3]!), mountPoint: unescape(f[4]!), fsType, superOptions: f[sep + 3]!.split(',') });
  }
  return out;
}

/** mountinfo writes space, tab, newline and backslash in paths as octal escapes. */
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/**
 * The directories of this process's group for one controller, innermost first, up to the top of what
 * is mounted: a limit may be set on any ancestor (a Kubernetes pod's, above its containers'). v1 wins
 * when the controller is mounted there: on a hybrid host the v2 tree holds no controllers.
 */
export function groupDirs(controller: 'cpu' | 'memory', groups: ProcCgroup[], mounts: CgroupMount[], root = '/'): { version: 1 | 2; dirs: string[] } | undefined {
  const v1 = groups.find((g) => g.id !== 0 && g.controllers.includes(controller));
  const v1Mount = v1 && mounts.find((m) => m.fsType === 'cgroup' && m.superOptions.includes(controller) && within(v1.path, m.root));
  if (v1 && v1Mount) return { version: 1, dirs: ancestors(root, v1Mount, v1.path) };
  const v2 = groups.find((g) => g.id === 0);
  const v2Mount = v2 && mounts.find((m) => m.fsType === 'cgroup2' && within(v2.path, m.root));
  if (v2 && v2Mount) return { version: 2, dirs: ancestors(root, v2Mount, v2.path) };
  return undefined;
}

const within = (p: string, mountRoot: string) => mountRoot === '/' || p === mountRoot || p.startsWith(`${mountRoot}/`);

function ancestors(root: string, m: CgroupMount, groupPath: string): string[] {
  const top = path.join(root, m.mountPoint);
  const rel = m.root === '/' ? groupPath : groupPath.slice(m.root.length);
  const dirs: string[] = [];
  for (let d = path.join(top, rel); ; d = path.dirname(d)) {
    dirs.push(d);
    if (d === top || !d.startsWith(top)) return dirs;
  }
}

/** v2 cpu.max: `max 100000` (no quota) or `<quota> <period>` in microseconds. */
export function parseCpuMax(text: string): number | undefined {
  const [quota, period] = text.trim().split(/\s+/);
  return quota === 'max' ? undefined : cores(Number(quota), Number(period ?? 100_000));
}

/** v1 cpu.cfs_quota_us / cpu.cfs_period_us; a quota of -1 is none. */
export const parseCfs = (quota: string, period: string): number | undefined => cores(Number(quota.trim()), Number(period.trim()));

const cores = (quota: number, period: number) => (quota > 0 && period > 0 ? quota / period : undefined);

/** memory.max (v2, `max` is none) or memory.limit_in_bytes (v1, a huge value is none). */
export function parseMemoryLimit(text: string, hostMemory: number): number | undefined {
  const v = Number(text.trim());
  if (!Number.isFinite(v) || v <= 0 || v >= UNLIMITED_V1 || v > hostMemory) return undefined;
  return v;
}

/**
 * Usage less the inactive page cache, as Kubernetes and the Go egress's `memory_source: cgroup` count
 * it: a node writing recordings fills its group with cache the kernel takes back before any OOM kill,
 * and counting it would refuse every job once the first file was large.
 */
export function workingSet(usage: number, statText: string | undefined, version: 1 | 2): number {
  const key = version === 1 ? 'total_inactive_file' : 'inactive_file';
  const m = statText && new RegExp(`^${key} (\\d+)$`, 'm').exec(statText);
  return Math.max(0, usage - (m ? Number(m[1]) : 0));
}

const read = (file: string): string | undefined => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};

/** The working set of a group now, bytes; undefined if it cannot be read (the group went away). */
export function readMemoryUsage(g: MemoryGroup): number | undefined {
  const usage = Number(read(path.join(g.dir, g.version === 1 ? 'memory.usage_in_bytes' : 'memory.current'))?.trim() ?? NaN);
  if (!Number.isFinite(usage)) return undefined;
  return workingSet(usage, read(path.join(g.dir, 'memory.stat')), g.version);
}

function readQuota(version: 1 | 2, dir: string): { cpus?: number; file: string } {
  if (version === 2) {
    const file = path.join(dir, 'cpu.max');
    const text = read(file);
    return { cpus: text === undefined ? undefined : parseCpuMax(text), file };
  }
  const file = path.join(dir, 'cpu.cfs_quota_us');
  const quota = read(file);
  const period = read(path.join(dir, 'cpu.cfs_period_us'));
  return { cpus: quota === undefined || period === undefined ? undefined : parseCfs(quota, period), file };
}

/** This process's cgroup limits. Outside any cgroup (or off Linux) everything is undefined. */
export function readCgroupLimits(opts: { root?: string; hostMemory?: number } = {}): CgroupLimits {
  const root = opts.root ?? '/';
  const hostMemory = opts.hostMemory ?? os.totalmem();
  const procCgroup = read(path.join(root, 'proc/self/cgroup'));
  const mountInfo = read(path.join(root, 'proc/self/mountinfo'));
  if (procCgroup === undefined || mountInfo === undefined) return {};
  const groups = parseProcCgroup(procCgroup);
  const mounts = parseMountInfo(mountInfo);
  const out: CgroupLimits = {};

  const cpu = groupDirs('cpu', groups, mounts, root);
  for (const dir of cpu?.dirs ?? []) {
    const q = readQuota(cpu!.version, dir);
    if (q.cpus !== undefined && (out.cpus === undefined || q.cpus < out.cpus)) Object.assign(out, { cpus: q.cpus, cpuFile: q.file });
  }

  const memory = groupDirs('memory', groups, mounts, root);
  for (const dir of memory?.dirs ?? []) {
    const text = read(path.join(dir, memory!.version === 1 ? 'memory.limit_in_bytes' : 'memory.max'));
    const limit = text === undefined ? undefined : parseMemoryLimit(text, hostMemory);
    if (limit !== undefined && (out.memoryLimit === undefined || limit < out.memoryLimit)) {
      out.memoryLimit = limit;
      out.memoryGroup = { version: memory!.version, dir };
    }
  }
  if (out.memoryGroup) {
    const usage = readMemoryUsage(out.memoryGroup);
    if (usage === undefined) {
      // A limit whose usage cannot be read cannot be budgeted against: use the host's figures.
      delete out.memoryLimit;
      delete out.memoryGroup;
    } else out.memoryUsage = usage;
  }
  return out;
}
