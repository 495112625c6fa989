// What web sources need of this machine: Chromium (chrome_path), Xvfb and a PulseAudio server. A
// node bids for web jobs only where all of them are there, so a mixed fleet sends them to a node that
// has them. It starts PulseAudio at start (a handler would otherwise pay for it in its first job) and
// sweeps the null sinks of egresses that died without unloading theirs (egress-behaviour §7.5).
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import type { Config } from '@egress/shared/config/types.ts';
import type { Logger } from '@egress/shared/logging.ts';
import { SERVED } from '@egress/shared/plan/capabilities.ts';

/** Go's sweep period: every min(30 s, grace). */
const SWEEP_MAX_MS = 30_000;

const executable = (file: string): boolean => {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

const onPath = (name: string, env: NodeJS.ProcessEnv): boolean =>
  (env.PATH ?? '').split(path.delimiter).some((dir) => dir && executable(path.join(dir, name)));

/** The first thing web sources need that this machine lacks, or undefined. */
export function webHostMissing(config: Config, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (!executable(config.chromePath)) return `Chromium (${config.chromePath})`;
  for (const bin of ['Xvfb', 'pulseaudio', 'pactl']) if (!onPath(bin, env)) return bin;
  return undefined;
}

export class WebHost {
  /** What this node serves: SERVED, with web sources only where the machine can run them. */
  readonly served: typeof SERVED;
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
  ) {
    const missing = SERVED.web ? webHostMissing(config) : undefined;
    if (missing) log.warn(`web sources (room composite, web egress) not served: missing ${missing}`);
    this.served = { ...SERVED, web: SERVED.web && !missing };
  }

  /** Starts PulseAudio and the sink sweep; `running` says whether an egress is this node's. */
  start(running: (egressId: string) => boolean): void {
    if (!this.served.web) return;
    void import('@egress/shared/pulse.ts').then(async ({ ensurePulse, SinkReaper }) => {
      await ensurePulse().catch((err: Error) => this.log.error('could not start PulseAudio', { error: err.message }));
      const graceMs = this.config.pulseSinkReapGraceSec * 1000;
      if (graceMs < 0 || this.closed) return;
      const reaper = new SinkReaper(graceMs);
      const sweep = () =>
        void reaper.sweep(running).then(
          (reaped) => reaped.length && this.log.warn('unloaded orphaned PulseAudio sinks', { egressIds: reaped }),
          (err: Error) => this.log.warn('PulseAudio sink sweep failed', { error: err.message }),
        );
      this.timer = setInterval(sweep, Math.max(1000, Math.min(SWEEP_MAX_MS, graceMs)));
      this.timer.unref();
      sweep();
    });
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }
}
