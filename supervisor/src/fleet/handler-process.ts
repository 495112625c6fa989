// One handler process per egress. A handler can end three ways, each handled here and nowhere else:
// it finishes cleanly (sent `finished`), it dies (exit code or signal without `finished`), or it goes
// silent (no heartbeat), in which case we kill it. Every process it reported is killed with it.
import { fork, type ChildProcess } from 'node:child_process';
import type { EgressInfo } from '@livekit/protocol';
import type { Config } from '@egress/shared/config/types.ts';
import { decodeInfo } from '@egress/shared/egress-info.ts';
import { EgressError } from '@egress/shared/errors.ts';
import { HEARTBEAT_INTERVAL_MS, type HandlerMessage, type OutputReport, type ProcessReport, type SupervisorMessage } from '@egress/shared/ipc.ts';
import type { Logger } from '@egress/shared/logging.ts';
import type { PipelineConfig } from '@egress/shared/plan/pipeline-config.ts';
import { unloadEgressSink } from '@egress/shared/pulse.ts';
import type { Spare } from './handler-pool.ts';
import { handlerEntry, TSX_EXEC_ARGV } from './tsx.ts';

const HANDLER_MAIN = handlerEntry('main');
const READY_TIMEOUT_MS = 10_000;
/**
 * From the start of a stop to the end of its pipeline: the handler's own EOS watchdog (30 s, as Go's)
 * plus a margin. It fires only when that watchdog could not (the handler itself is stuck); the kill
 * sends the job down the death path, whose recovery handler finalizes what is on disk.
 */
export const STOP_DEADLINE_MS = 45_000;
/**
 * A handler's heartbeat stops while its event loop is busy, and loading a job's modules is one long
 * synchronous stretch (rtc-node, the controller, playwright-core for a web job: measured 1.3 s without
 * a tick at a load average of 6 on 2 cores). 3 s killed healthy room composites starting beside
 * another one; a frozen handler is still found within seconds.
 */
const SILENCE_LIMIT_MS = 10 * HEARTBEAT_INTERVAL_MS;

/** Starts a handler process; `env` is added to the supervisor's. */
export function forkHandler(env: Record<string, string>): ChildProcess {
  return fork(HANDLER_MAIN, [], {
    execArgv: TSX_EXEC_ARGV,
    // Its own process group, so that killing the group never touches the supervisor.
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // rtc-node logs to stdout at debug level unless NODE_ENV=production.
    env: { ...process.env, NODE_ENV: 'production', ...env },
  });
}

export type HandlerExit = { kind: 'finished'; info: EgressInfo } | { kind: 'died'; reason: string };

export interface HandlerEvents {
  status(info: EgressInfo): void;
  output(output: OutputReport): void;
}

type Reply = Extract<HandlerMessage, { type: 'reply' }>;

/** SIGKILLs the process group of each report. */
export function killGroups(processes: readonly ProcessReport[]): void {
  for (const p of processes) {
    try {
      process.kill(-p.pgid, 'SIGKILL');
    } catch {
      // Already gone: nothing left to kill.
    }
  }
}

export class HandlerProcess {
  readonly processes: ProcessReport[] = [];
  readonly outputs: OutputReport[] = [];
  readonly exited: Promise<HandlerExit>;
  private readonly child: ChildProcess;
  private readonly readyTimer: NodeJS.Timeout;
  private finishedInfo?: EgressInfo;
  private killReason?: string;
  private lastHeard = Date.now();
  private silenceTimer?: NodeJS.Timeout;
  private stopDeadline?: NodeJS.Timeout;
  private nextCallId = 1;
  private readonly calls = new Map<number, { resolve(r: Reply): void; reject(e: Error): void }>();

  constructor(
    readonly egressId: string,
    request: Uint8Array,
    config: Config,
    plan: PipelineConfig,
    private readonly log: Logger,
    private readonly events: HandlerEvents,
    /** A spare from the handler pool, already started (and usually warm); else one is forked now. */
    spare?: Spare,
  ) {
    this.child = spare?.child ?? forkHandler({ EGRESS_ID: egressId });
    this.processes.push({ pid: this.child.pid!, pgid: this.child.pid!, name: 'handler', commandLine: `handler ${egressId}` });
    // What the spare started before its job (handler_pool.browser: Xvfb, Chromium) goes with the job.
    this.processes.push(...(spare?.processes ?? []));

    // StartEgress does not wait for `ready`: a handler that never sends it is killed, and its death
    // is reported as any other (exited).
    this.readyTimer = setTimeout(() => this.kill('handler failed to start'), READY_TIMEOUT_MS);

    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        clearTimeout(this.readyTimer);
        clearInterval(this.silenceTimer);
        clearTimeout(this.stopDeadline);
        this.killGroups();
        for (const call of this.calls.values()) call.reject(new EgressError('not_found', 'egress not found'));
        this.calls.clear();
        if (this.finishedInfo) return resolve({ kind: 'finished', info: this.finishedInfo });
        // A web job's null sink outlives its killed handler (PulseAudio modules are not per client),
        // as does the one a spare loaded before its job.
        if (plan.source.type === 'web' || spare?.processes.length) {
          void unloadEgressSink({ egressId, pid: this.child.pid }).catch((err: Error) => this.log.warn('could not unload the null sink', { egressId, error: err.message }));
        }
        const how = signal ? `signal: ${signal === 'SIGKILL' ? 'killed' : signal}` : `exit status ${code}`;
        resolve({ kind: 'died', reason: this.killReason ? `${this.killReason} (${how})` : `handler process died: ${how}` });
      });
    });

    this.child.on('message', (m: HandlerMessage) => this.onMessage(m));
    this.send({ type: 'start', request: Buffer.from(request).toString('base64'), config, plan });
  }

  get pid(): number {
    return this.child.pid!;
  }

  private onMessage(m: HandlerMessage): void {
    this.lastHeard = Date.now();
    switch (m.type) {
      case 'ready':
        clearTimeout(this.readyTimer);
        this.watchHeartbeat();
        return;
      case 'warm':
      case 'heartbeat':
        return;
      case 'process':
        this.processes.push(m.process);
        return;
      case 'output':
        this.outputs.push(m.output);
        this.events.output(m.output);
        return;
      case 'status':
        this.events.status(decodeInfo(m.info));
        return;
      case 'ending':
        this.armStopDeadline();
        return;
      case 'finalized':
        clearTimeout(this.stopDeadline);
        return;
      case 'reply': {
        const call = this.calls.get(m.id);
        this.calls.delete(m.id);
        if (m.error) call?.reject(new EgressError(m.error.code, m.error.message));
        else call?.resolve(m);
        return;
      }
      case 'finished':
        this.finishedInfo = decodeInfo(m.info);
        return;
    }
  }

  private watchHeartbeat(): void {
    this.silenceTimer = setInterval(() => {
      if (Date.now() - this.lastHeard > SILENCE_LIMIT_MS) this.kill('handler stopped responding');
    }, HEARTBEAT_INTERVAL_MS);
  }

  private armStopDeadline(): void {
    this.stopDeadline ??= setTimeout(() => this.kill(`stop deadline exceeded: the pipeline did not finish within ${STOP_DEADLINE_MS / 1000} s`), STOP_DEADLINE_MS);
  }

  /** Graceful stop (EOS); resolves with the handler's EgressInfo at that moment. */
  async stop(reason: string): Promise<EgressInfo> {
    this.armStopDeadline();
    const reply = await this.call((id) => ({ type: 'stop', id, reason }));
    return decodeInfo(reply.info!);
  }

  /** UpdateStream: the handler adds and removes the URLs; resolves with its EgressInfo after that. */
  async updateStream(add: string[], remove: string[]): Promise<EgressInfo> {
    const reply = await this.call((id) => ({ type: 'updateStream', id, add, remove }));
    return decodeInfo(reply.info!);
  }

  /** The running pipeline's graph, in Graphviz dot. */
  async inspect(): Promise<string> {
    return (await this.call((id) => ({ type: 'inspect', id }))).dot ?? '';
  }

  private call(message: (id: number) => SupervisorMessage): Promise<Reply> {
    const id = this.nextCallId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      if (!this.send(message(id))) {
        this.calls.delete(id);
        reject(new EgressError('not_found', 'egress not found'));
      }
    });
  }

  /** SIGKILL the handler and everything it reported. */
  kill(reason: string): void {
    this.killReason ??= reason;
    this.log.warn('killing handler', { egressId: this.egressId, reason });
    this.killGroups();
  }

  private killGroups(): void {
    killGroups(this.processes);
  }

  private send(m: SupervisorMessage): boolean {
    if (!this.child.connected) return false;
    this.child.send(m);
    return true;
  }
}
