// Admission by static CPU cost against the node's cores. A busy node keeps max_cpu_utilization headroom;
// an idle node takes any job that fits the machine, as the Go egress does.
import os from 'node:os';
import type { CpuCostConfig } from '@egress/shared/config/types.ts';
import type { StartEgressRequest } from '@egress/shared/proto/rpc.ts';
import { cpuCost } from './cost.ts';

export class Admission {
  private reserved = 0;
  private running = 0;

  constructor(
    private readonly cost: CpuCostConfig,
    private readonly cpus = Number(process.env.LIVEKIT_CPU_REQUEST) || os.availableParallelism(),
  ) {}

  canAccept(req: StartEgressRequest): boolean {
    const available = this.running === 0 ? this.cpus : this.cpus * this.cost.maxCpuUtilization - this.reserved;
    return available >= cpuCost(req, this.cost);
  }

  reserve(req: StartEgressRequest): boolean {
    if (!this.canAccept(req)) return false;
    this.reserved += cpuCost(req, this.cost);
    this.running++;
    return true;
  }

  release(req: StartEgressRequest): void {
    this.reserved -= cpuCost(req, this.cost);
    this.running--;
  }
}
