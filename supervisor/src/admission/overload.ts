// Overload protection: above the threshold for 10 s, stop the heaviest job gracefully; if the load is
// still high after the kill grace, kill it. Pure: fed one measurement per second.

export const HIGH_TICKS_BEFORE_STOP = 10;
/** Consecutive calm ticks that forget an earlier streak of high load. */
export const LOW_TICKS_TO_RESET = 5;

export interface JobLoad {
  egressId: string;
  cpu: number;
  cost: number;
  /** ACTIVE: only these are stopped. A job still starting uses no CPU yet, and one ending is already stopping. */
  recording: boolean;
}

export type OverloadAction = { kind: 'stop'; egressId: string } | { kind: 'kill'; egressId: string; cpu: number };

export class OverloadGuard {
  private high = 0;
  private low = 0;
  private stopped?: { egressId: string; at: number };

  constructor(
    private readonly maxCpuUtilization: number,
    private readonly killGraceMs: number,
  ) {}

  get threshold(): number {
    return this.maxCpuUtilization >= 0.95 ? (1 + this.maxCpuUtilization) / 2 : 0.95;
  }

  tick(load: number, jobs: JobLoad[], now: number): OverloadAction | undefined {
    if (load <= this.threshold) {
      if (++this.low >= LOW_TICKS_TO_RESET) {
        this.high = 0;
        this.stopped = undefined;
      }
      return undefined;
    }
    this.low = 0;
    const stopped = this.stopped && jobs.find((j) => j.egressId === this.stopped!.egressId);
    if (stopped) {
      if (now - this.stopped!.at < this.killGraceMs) return undefined;
      this.stopped = undefined;
      return { kind: 'kill', egressId: stopped.egressId, cpu: stopped.cpu };
    }
    // One job alone is never stopped for load: it is all the node does.
    const recording = jobs.filter((j) => j.recording);
    if (recording.length <= 1) return undefined;
    if (++this.high < HIGH_TICKS_BEFORE_STOP) return undefined;
    this.high = 0;
    // Prefer a job using more than it asked for; otherwise the heaviest.
    const over = recording.filter((j) => j.cpu > j.cost);
    const heaviest = (over.length ? over : recording).reduce((a, b) => (b.cpu > a.cpu ? b : a));
    this.stopped = { egressId: heaviest.egressId, at: now };
    return { kind: 'stop', egressId: heaviest.egressId };
  }
}
