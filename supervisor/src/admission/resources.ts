// What this node may use, and how its use is measured. Outside a container the machine is the node's:
// every process's load counts against it. Given a quota (a cgroup CPU limit, or LIVEKIT_CPU_REQUEST
// from a Kubernetes pod's request) the rest of the host is someone else's budget, so only the node's
// own processes count, as in the Go egress; otherwise a busy shared host refuses every job after the first.
import os from 'node:os';
import type { CpuCostConfig } from '@egress/shared/config/types.ts';
import { readCgroupLimits, type CgroupLimits, type MemoryGroup } from './cgroup.ts';

export type CpuSource = 'LIVEKIT_CPU_REQUEST' | 'cpu_cost.cpu_capacity' | 'cgroup' | 'host';

export interface Resources {
  /** Cores this node may use. */
  cpus: number;
  cpuSource: CpuSource;
  /** Count only the node's own processes against `cpus`, not the host's whole load. */
  ownProcessesOnly: boolean;
  /** Set when a cgroup memory limit applies; otherwise the host's MemAvailable is used. */
  memory?: MemoryGroup & { limit: number };
  /** Read once at start, for the log. */
  cgroup: CgroupLimits;
  warnings: string[];
}

/** LIVEKIT_CPU_REQUEST is a float count of cores, as the Go egress parses it; anything else is ignored. */
export function parseCpuRequest(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const v = Number(value);
  return Number.isFinite(v) && v > 0 ? v : undefined;
}

/**
 * Capacity: LIVEKIT_CPU_REQUEST, then cpu_cost.cpu_capacity, then the cgroup's CPU quota, then the
 * machine. The config already folds the first two into `capacity`, defaulting to the machine's core
 * count; a capacity equal to that count is taken as unset, since a quota below it is all the node can
 * get anyway.
 */
export function chooseResources(input: { capacity: number; cpuRequest?: string; hostCpus: number; cgroup: CgroupLimits }): Resources {
  const { capacity, hostCpus, cgroup } = input;
  const warnings: string[] = [];
  // A quota of the whole machine or more limits nothing.
  const quota = cgroup.cpus !== undefined && cgroup.cpus < hostCpus ? cgroup.cpus : undefined;
  const request = parseCpuRequest(input.cpuRequest);
  if (input.cpuRequest !== undefined && input.cpuRequest.trim() !== '' && request === undefined) {
    warnings.push(`LIVEKIT_CPU_REQUEST: "${input.cpuRequest}" is not a positive number of cores; ignored`);
  }
  const memory = cgroup.memoryLimit !== undefined && cgroup.memoryGroup ? { ...cgroup.memoryGroup, limit: cgroup.memoryLimit } : undefined;
  const base = { memory, cgroup, warnings };

  if (request !== undefined) return { ...base, cpus: request, cpuSource: 'LIVEKIT_CPU_REQUEST', ownProcessesOnly: true };
  if (capacity > 0 && capacity !== hostCpus) {
    if (quota !== undefined && capacity > quota) {
      warnings.push(`cpu_cost.cpu_capacity: ${capacity} cores is above this cgroup's CPU quota of ${quota} (${cgroup.cpuFile}); jobs beyond the quota will be throttled`);
    }
    return { ...base, cpus: capacity, cpuSource: 'cpu_cost.cpu_capacity', ownProcessesOnly: quota !== undefined };
  }
  if (quota !== undefined) return { ...base, cpus: quota, cpuSource: 'cgroup', ownProcessesOnly: true };
  return { ...base, cpus: hostCpus, cpuSource: 'host', ownProcessesOnly: false };
}

/** Reads the cgroup and the environment: the effectful edge of `chooseResources`. */
export function detectResources(cost: CpuCostConfig, env: NodeJS.ProcessEnv = process.env, opts: { root?: string; hostCpus?: number; hostMemory?: number } = {}): Resources {
  return chooseResources({
    capacity: cost.capacity,
    cpuRequest: env.LIVEKIT_CPU_REQUEST,
    hostCpus: opts.hostCpus ?? os.availableParallelism(),
    cgroup: readCgroupLimits({ root: opts.root, hostMemory: opts.hostMemory }),
  });
}

/** One log line's fields: where capacity and memory come from, so an operator can check them. */
export function describeResources(r: Resources): Record<string, unknown> {
  return {
    cpus: r.cpus,
    cpuSource: r.cpuSource === 'cgroup' ? `cgroup (${r.cgroup.cpuFile})` : r.cpuSource,
    load: r.ownProcessesOnly ? "this node's processes" : "the host's",
    memorySource: r.memory ? `cgroup (${r.memory.dir}, limit ${r.memory.limit} bytes)` : 'host MemAvailable',
  };
}
