// Once a second: system-wide CPU load, and each job's CPU and memory summed over its process groups.
import type { Measurements } from './admission.ts';
import { availableMemory, sampleProcesses, systemCpuTimes, type CpuTimes } from './proc.ts';

export interface JobUsage {
  cpu: number;
  memoryBytes: number;
}

export class CpuMonitor implements Measurements {
  /** Busy fraction of the whole machine over the last interval, 0..1. */
  load = 0;
  private readonly usage = new Map<string, JobUsage>();
  private lastSystem?: CpuTimes;
  private lastCpuByGroup = new Map<number, number>();
  private lastAt = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    /** The process groups of each job, by egress id. */
    private readonly groups: () => Map<string, number[]>,
    /** Replaces the measured load; see `test_overrides.cpu_load` in config.example.yaml. */
    private readonly loadOverride?: number,
  ) {}

  start(intervalMs = 1000): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  availableMemory(): number {
    return availableMemory();
  }

  jobUsage(egressId: string): JobUsage | undefined {
    return this.usage.get(egressId);
  }

  sample(): void {
    const now = Date.now();
    const system = systemCpuTimes();
    if (this.lastSystem && system.total > this.lastSystem.total) {
      this.load = (system.busy - this.lastSystem.busy) / (system.total - this.lastSystem.total);
    }
    if (this.loadOverride !== undefined) this.load = this.loadOverride;
    this.lastSystem = system;

    const cpuByGroup = new Map<number, number>();
    const rssByGroup = new Map<number, number>();
    for (const p of sampleProcesses()) {
      cpuByGroup.set(p.pgid, (cpuByGroup.get(p.pgid) ?? 0) + p.cpuSeconds);
      rssByGroup.set(p.pgid, (rssByGroup.get(p.pgid) ?? 0) + p.rssBytes);
    }
    const elapsed = (now - this.lastAt) / 1000;
    this.usage.clear();
    for (const [egressId, pgids] of this.groups()) {
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
      if (measured) this.usage.set(egressId, { cpu, memoryBytes });
    }
    this.lastCpuByGroup = cpuByGroup;
    this.lastAt = now;
  }
}
