// Once a second: the load, and each job's CPU and memory summed over its process groups. Outside a
// quota the load is the whole machine's; under one (see resources.ts) it is the node's own processes
// against its capacity, and memory is the cgroup's limit less its usage.
import type { Measurements } from './admission.ts';
import { readMemoryUsage } from './cgroup.ts';
import { availableMemory, ownProcesses, sampleProcesses, systemCpuTimes, type CpuTimes } from './proc.ts';
import type { Resources } from './resources.ts';

export interface JobUsage {
  cpu: number;
  memoryBytes: number;
}

export class CpuMonitor implements Measurements {
  /** Busy fraction over the last interval, 0..1: of the machine, or of `cpus` under a quota. */
  load = 0;
  /** Busy fraction of the whole machine over the last interval, whatever `load` measures. */
  hostLoad = 0;
  /** Under a quota: cores the node's processes outside every job used (the supervisor itself). */
  ownCpu?: number;
  private readonly usage = new Map<string, JobUsage>();
  private lastSystem?: CpuTimes;
  private lastCpuByGroup = new Map<number, number>();
  private lastOwnCpuByPid = new Map<number, number>();
  private lastAt = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    /** The process groups of each job, by egress id. */
    private readonly groups: () => Map<string, number[]>,
    /** Replaces the measured load; see `test_overrides.cpu_load` in config.example.yaml. */
    private readonly loadOverride?: number,
    /** Without it, the host's load and MemAvailable, as before quotas were read. */
    private readonly resources?: Pick<Resources, 'cpus' | 'ownProcessesOnly' | 'memory'>,
    /** The root of the node's own process tree. */
    private readonly rootPid = process.pid,
  ) {
    if (resources?.ownProcessesOnly) this.ownCpu = 0;
  }

  start(intervalMs = 1000): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  availableMemory(): number {
    const host = availableMemory();
    const m = this.resources?.memory;
    const used = m && readMemoryUsage(m);
    // The group's files went away: the host's figure is all there is.
    if (!m || used === undefined) return host;
    // A container's limit can promise more than the host has free.
    return Math.min(host, m.limit - used);
  }

  jobUsage(egressId: string): JobUsage | undefined {
    return this.usage.get(egressId);
  }

  sample(): void {
    const now = Date.now();
    const system = systemCpuTimes();
    if (this.lastSystem && system.total > this.lastSystem.total) {
      this.hostLoad = (system.busy - this.lastSystem.busy) / (system.total - this.lastSystem.total);
    }
    this.lastSystem = system;

    const samples = sampleProcesses();
    const cpuByGroup = new Map<number, number>();
    const rssByGroup = new Map<number, number>();
    for (const p of samples) {
      cpuByGroup.set(p.pgid, (cpuByGroup.get(p.pgid) ?? 0) + p.cpuSeconds);
      rssByGroup.set(p.pgid, (rssByGroup.get(p.pgid) ?? 0) + p.rssBytes);
    }
    const elapsed = (now - this.lastAt) / 1000;
    const groups = this.groups();
    this.usage.clear();
    let jobsCpu = 0;
    for (const [egressId, pgids] of groups) {
      let cpu = 0;
      let memoryBytes = 0;
      let measured = this.lastAt > 0;
      for (const g of pgids) {
        const before = this.lastCpuByGroup.get(g);
        const after = cpuByGroup.get(g);
        if (after === undefined) continue;
        if (before === undefined) measured = false;
        else cpu += Math.max(0, after - before) / elapsed;
        memoryBytes += rssByGroup.get(g) ?? 0;
      }
      if (measured) {
        this.usage.set(egressId, { cpu, memoryBytes });
        jobsCpu += cpu;
      }
    }
    this.lastCpuByGroup = cpuByGroup;

    if (this.resources?.ownProcessesOnly) {
      const own = ownProcesses(samples, this.rootPid, new Set([...groups.values()].flat()));
      const byPid = new Map(own.map((p) => [p.pid, p.cpuSeconds]));
      let seconds = 0;
      // A process first seen now counts from its next sample: it may be a job's, just ended, whose
      // whole life's CPU would otherwise land in one second.
      for (const [pid, after] of byPid) seconds += Math.max(0, after - (this.lastOwnCpuByPid.get(pid) ?? after));
      if (this.lastAt > 0) this.ownCpu = seconds / elapsed;
      this.lastOwnCpuByPid = byPid;
      this.load = Math.min(1, ((this.ownCpu ?? 0) + jobsCpu) / this.resources.cpus);
    } else {
      this.load = this.hostLoad;
    }
    if (this.loadOverride !== undefined) this.load = this.loadOverride;
    this.lastAt = now;
  }
}
