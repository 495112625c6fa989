// Spare handlers (handler_pool.idle): processes already started, with rtc-node and the media modules
// loaded, waiting for a job, so that a job skips the fork and the module loading (livekit/agents-js
// keeps num_idle_processes the same way). A job takes one and a new spare starts behind it, once the
// job is under way. A spare that dies is replaced; one whose memory grows past the limit while idle
// is recycled. On a node that serves web sources, a spare also starts a browser for the next web job
// (handler_pool.browser, handler/src/source/web/warm.ts): what it starts is reported here, and goes
// with the spare, to its job or to its end.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '@egress/shared/config/types.ts';
import type { HandlerMessage, ProcessReport } from '@egress/shared/ipc.ts';
import type { Logger } from '@egress/shared/logging.ts';
import { unloadEgressSink } from '@egress/shared/pulse.ts';
import { processAlive, spareOfDir, spareScratch, survivingProcesses } from '@egress/shared/scratch.ts';
import { forkHandler, killGroups } from './handler-process.ts';

/** An idle spare above this is recycled: a warm process should not carry a leak into a job. */
export const SPARE_MAX_RSS_BYTES = 400 * 1024 ** 2;
const RECYCLE_CHECK_MS = 30_000;
/** After a spare dies on its own, the next one waits this long: a spare that cannot start must not spin. */
const RESPAWN_DELAY_MS = 2_000;
/**
 * The spare behind a job starts this much later: loading a handler takes about a core for a second,
 * which would compete with the job's own start (joining, the first frames, gst) on a small machine.
 */
export const REFILL_DELAY_MS = 5_000;

/** A spare as a job takes it: the process, and what it started before the job. */
export interface Spare {
  child: ChildProcess;
  processes: ProcessReport[];
}

interface PoolSpare extends Spare {
  warm: boolean;
  /** Settles once what the spare left behind is removed (after it exited). */
  cleaned?: Promise<void>;
  onMessage(m: HandlerMessage): void;
  onExit(): void;
}

export class HandlerPool {
  private readonly spares: PoolSpare[] = [];
  private closed = false;
  private recycleTimer?: NodeJS.Timeout;
  private respawnTimer?: NodeJS.Timeout;
  private refillTimer?: NodeJS.Timeout;

  constructor(
    private readonly size: number,
    private readonly log: Logger,
    /** Sent to each spare (`prewarm`) when it should start a browser; its tmp_dir holds the spare's scratch. */
    private readonly browserConfig?: Config,
    private readonly maxRssBytes = SPARE_MAX_RSS_BYTES,
  ) {}

  start(): void {
    if (this.size <= 0) return;
    void this.removeDeadSparesScratch();
    this.fill();
    this.recycleTimer = setInterval(() => this.recycle(), RECYCLE_CHECK_MS);
  }

  /** A spare for a job (a warm one first), now the caller's; undefined when there is none. */
  take(): Spare | undefined {
    const alive = this.spares.filter((s) => s.child.exitCode === null && s.child.signalCode === null);
    const spare = alive.find((s) => s.warm) ?? alive[0];
    if (!spare) return undefined;
    this.spares.splice(this.spares.indexOf(spare), 1);
    spare.child.off('message', spare.onMessage);
    spare.child.off('exit', spare.onExit);
    clearTimeout(this.refillTimer);
    this.refillTimer = setTimeout(() => this.fill(), REFILL_DELAY_MS);
    return { child: spare.child, processes: spare.processes };
  }

  private fill(): void {
    while (!this.closed && this.spares.length < this.size) this.spares.push(this.spawn());
  }

  private spawn(): PoolSpare {
    const child = forkHandler({ EGRESS_HANDLER_SPARE: '1' });
    const spare: PoolSpare = {
      child,
      processes: [],
      warm: false,
      onMessage: (m) => {
        if (m.type === 'warm') spare.warm = true;
        if (m.type === 'process') spare.processes.push(m.process);
      },
      onExit: () => {
        const i = this.spares.indexOf(spare);
        if (i >= 0) this.spares.splice(i, 1);
        spare.cleaned = this.cleanUp(spare);
        if (this.closed) return;
        this.log.warn('spare handler exited; starting another', { pid: child.pid, code: child.exitCode, signal: child.signalCode });
        clearTimeout(this.respawnTimer);
        this.respawnTimer = setTimeout(() => this.fill(), RESPAWN_DELAY_MS);
      },
    };
    child.on('message', spare.onMessage);
    child.once('exit', spare.onExit);
    if (this.browserConfig) child.send({ type: 'prewarm', config: this.browserConfig });
    return spare;
  }

  /** What spares of an earlier node that was killed left (their pids are gone): their processes, their scratch. */
  private async removeDeadSparesScratch(): Promise<void> {
    if (!this.browserConfig) return;
    const tmpDir = this.browserConfig.tmpDir;
    for (const name of await readdir(tmpDir).catch(() => [])) {
      const pid = spareOfDir(name);
      if (pid === undefined || processAlive(pid)) continue;
      const dir = path.join(tmpDir, name);
      const left = survivingProcesses(dir);
      if (left.length) this.log.warn("killing what a dead spare handler left running", { pid, processes: left.map((p) => `${p.name} ${p.pid}`) });
      killGroups(left);
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** What a spare that died before any job had started: its browser's groups, its sink, its scratch. */
  private async cleanUp(spare: PoolSpare): Promise<void> {
    if (!this.browserConfig) return;
    killGroups(spare.processes);
    const pid = spare.child.pid!;
    await unloadEgressSink({ pid }).catch((err: Error) => this.log.warn("could not unload a spare handler's null sink", { pid, error: err.message }));
    await rm(spareScratch(this.browserConfig.tmpDir, pid), { recursive: true, force: true });
  }

  private recycle(): void {
    for (const s of [...this.spares]) {
      const rss = rssBytes(s.child.pid!);
      if (rss === undefined || rss <= this.maxRssBytes) continue;
      this.log.info('recycling a spare handler that grew while idle', { pid: s.child.pid, rssMb: Math.round(rss / 1024 ** 2) });
      s.child.kill('SIGKILL');
    }
  }

  /** Kills every spare (they hold no job) and starts no more. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.recycleTimer);
    clearTimeout(this.respawnTimer);
    clearTimeout(this.refillTimer);
    await Promise.all(
      this.spares.splice(0).map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.child.exitCode !== null || s.child.signalCode !== null) return resolve(s.cleaned);
            s.child.once('exit', () => resolve(s.cleaned));
            s.child.kill('SIGKILL');
          }),
      ),
    );
  }
}

function rssBytes(pid: number): number | undefined {
  try {
    const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}
