// Admission: a job's CPU cost held against the node's capacity and the measured load. A busy node
// keeps max_cpu_utilization headroom; an idle node takes any job that fits, as the Go egress does.
import os from 'node:os';
import type { CpuCostConfig } from '@egress/shared/config/types.ts';
import type { StartEgressRequest } from '@egress/shared/proto/rpc.ts';
import { cpuCost } from './cost.ts';
import type { JobUsage } from './monitor.ts';

/** How long a new job is charged its full cost, whatever it measures: until it reaches steady state. */
export const RESERVATION_MS = 15_000;
/** Memory that must stay free beyond every job's reservation. */
export const MEMORY_HEADROOM_BYTES = 1024 ** 3;

export interface Measurements {
  /** Busy fraction of the whole machine, 0..1. */
  load: number;
  /**
   * Set under a quota (a cgroup CPU limit or LIVEKIT_CPU_REQUEST): cores the node's own processes
   * outside every job use. Then only they count as other load: the rest of the host is not ours to spend.
   */
  ownCpu?: number;
  jobUsage(egressId: string): JobUsage | undefined;
  /** Bytes of memory still available to new work. */
  availableMemory(): number;
}

interface Reservation {
  cost: number;
  memoryBytes: number;
  acceptedAt: number;
}

export class Admission {
  private readonly jobs = new Map<string, Reservation>();

  private readonly now: () => number;
  private readonly machineCpus: number;
  private readonly holdReservations: boolean;
  private readonly cpus: number;

  constructor(
    /** Its `capacity` is the cores this node may use: the machine's, or less so that nodes share one. */
    private readonly cost: CpuCostConfig,
    private readonly measured: Measurements,
    opts: {
      now?: () => number;
      machineCpus?: number;
      /** Cores this node may use, when resolved beyond the config (a cgroup quota); default `cost.capacity`. */
      capacity?: number;
      /** test_overrides.hold_reservations: charge every job its cost for its whole life (static admission). */
      holdReservations?: boolean;
    } = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.machineCpus = opts.machineCpus ?? os.availableParallelism();
    this.holdReservations = opts.holdReservations ?? false;
    this.cpus = opts.capacity ?? this.cost.capacity;
  }

  get capacity(): number {
    return this.cpus;
  }

  /**
   * What a job is charged now: its cost while young (its start-up burst, loading the SDK, says nothing
   * about its steady use), then what it measures.
   */
  charge(egressId: string): number {
    const r = this.jobs.get(egressId);
    if (!r) return 0;
    if (this.holdReservations || this.now() - r.acceptedAt < RESERVATION_MS) return r.cost;
    return this.measured.jobUsage(egressId)?.cpu ?? 0;
  }

  /** Cores still free for new work. */
  available(): number {
    if (this.jobs.size === 0) return this.capacity;
    let charged = 0;
    let measuredJobs = 0;
    for (const id of this.jobs.keys()) {
      charged += this.charge(id);
      measuredJobs += this.measured.jobUsage(id)?.cpu ?? 0;
    }
    // Load that no job of ours accounts for. Under a quota, only the node's own (the supervisor);
    // otherwise the machine's load less our jobs' own use (they count by their charge instead):
    // other processes, other nodes on this machine.
    const other = this.measured.ownCpu ?? Math.max(0, this.measured.load * this.machineCpus - measuredJobs);
    return this.capacity * this.cost.maxCpuUtilization - other - charged;
  }

  canAccept(req: StartEgressRequest): boolean {
    if (!this.memoryFits()) return false;
    return this.available() >= cpuCost(req, this.cost);
  }

  reserve(egressId: string, req: StartEgressRequest): boolean {
    if (this.jobs.has(egressId) || !this.canAccept(req)) return false;
    this.jobs.set(egressId, { cost: cpuCost(req, this.cost), memoryBytes: this.cost.memoryCost * 1024 ** 3, acceptedAt: this.now() });
    return true;
  }

  release(egressId: string): void {
    this.jobs.delete(egressId);
  }

  costOf(egressId: string): number {
    return this.jobs.get(egressId)?.cost ?? 0;
  }

  private memoryFits(): boolean {
    let pending = this.cost.memoryCost * 1024 ** 3;
    for (const [id, r] of this.jobs) pending += Math.max(0, r.memoryBytes - (this.measured.jobUsage(id)?.memoryBytes ?? 0));
    if (this.cost.maxMemory > 0) {
      let used = 0;
      for (const id of this.jobs.keys()) used += this.measured.jobUsage(id)?.memoryBytes ?? 0;
      return used + pending + MEMORY_HEADROOM_BYTES < this.cost.maxMemory * 1024 ** 3;
    }
    return this.measured.availableMemory() - pending >= MEMORY_HEADROOM_BYTES;
  }
}
