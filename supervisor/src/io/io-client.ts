// Status goes to livekit-server through its IOInfo service (a psrpc queue on every livekit-server node).
// CreateEgress must land before any UpdateEgress: only CreateEgress adds the egress to its room's set
// and fires egress_started, so each egress's updates wait for its create.
import { EgressStatus, type EgressInfo } from '@livekit/protocol';
import { isTerminal } from '@egress/shared/egress-info.ts';
import { EgressError } from '@egress/shared/errors.ts';
import type { Logger } from '@egress/shared/logging.ts';
import type { Bus } from '@egress/shared/psrpc/bus.ts';
import { RpcClient } from '@egress/shared/psrpc/client.ts';
import { Empty } from '@egress/shared/proto/rpc.ts';

const SELECTION = { acceptFirstAvailable: true, affinityTimeoutMs: 1000 };
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 60_000;

export interface IoTimeouts {
  createMs: number;
  updateMs: number;
  /** How long one egress's updates are retried without a success before the pending one is abandoned. */
  retryWindowMs: number;
}

/** One egress's reporting: the Go egress's per-egress latest-wins queue. */
interface Lane {
  /** Resolves true once livekit-server stored the egress; false drops every update (the start was aborted). */
  created: Promise<boolean>;
  /** The newest status not yet delivered. */
  next?: EgressInfo;
  /** A terminal status was queued: nothing that is not terminal may follow it. */
  ended?: boolean;
  /** Delivering `next`, while there is one. */
  worker?: Promise<void>;
}

const statusName = (info: EgressInfo) => EgressStatus[info.status].replace('EGRESS_', '').toLowerCase();

/** Only these say nothing about the update itself: livekit-server did not get it, or Redis did not carry it. */
const isTransient = (err: unknown) => err instanceof EgressError && (err.code === 'unavailable' || err.code === 'deadline_exceeded');

export class IoClient {
  private readonly rpc: RpcClient;
  private readonly lanes = new Map<string, Lane>();
  /** False after a retryable failure, true again after a success; the node stops bidding while false. */
  healthy = true;

  constructor(
    bus: Bus,
    private readonly log: Logger,
    private readonly timeouts: IoTimeouts,
  ) {
    this.rpc = new RpcClient(bus, 'IOInfo', log);
  }

  /** Resolves when livekit-server stored the egress; a failure aborts the start. */
  createEgress(info: EgressInfo): Promise<void> {
    const done = this.rpc
      .call('CreateEgress', '', info, Empty, { timeoutMs: this.timeouts.createMs, selection: SELECTION })
      .then(() => void (this.healthy = true));
    this.lanes.set(info.egressId, { created: done.then(() => true, () => false) });
    return done;
  }

  /**
   * Latest wins: a newer status replaces one still waiting, except that a terminal status is never
   * replaced by a non-terminal one. Resolves once the egress has nothing left to send; never rejects.
   */
  updateEgress(info: EgressInfo): Promise<void> {
    let lane = this.lanes.get(info.egressId);
    if (!lane) {
      lane = { created: Promise.resolve(true) };
      this.lanes.set(info.egressId, lane);
    }
    if (lane.ended && !isTerminal(info.status)) {
      this.log.debug('egress update dropped: a final status came first', { egressId: info.egressId, status: statusName(info) });
    } else {
      lane.next = info.clone();
      lane.ended ||= isTerminal(info.status);
    }
    const current = lane;
    current.worker ??= this.deliver(current).finally(() => (current.worker = undefined));
    return current.worker;
  }

  /**
   * Waits until the egress has nothing left to send, then forgets it. Bounded: an update is abandoned
   * after retryWindowMs, plus at most one attempt in flight (updateMs).
   */
  async flush(egressId: string): Promise<void> {
    await this.lanes.get(egressId)?.worker;
    this.lanes.delete(egressId);
  }

  private async deliver(lane: Lane): Promise<void> {
    if (!(await lane.created)) {
      if (lane.next) this.log.debug('egress update dropped: CreateEgress failed', { egressId: lane.next.egressId, status: statusName(lane.next) });
      lane.next = undefined;
      return;
    }
    let failingSince: number | undefined;
    let delay = RETRY_MIN_MS;
    for (let info = lane.next; info; info = lane.next) {
      const log = { egressId: info.egressId, status: statusName(info) };
      const sent = () => {
        // A newer status that arrived during the attempt is still to be sent.
        if (lane.next === info) lane.next = undefined;
      };
      const attemptAt = Date.now();
      try {
        await this.rpc.call('UpdateEgress', '', info, Empty, { timeoutMs: this.timeouts.updateMs, selection: SELECTION });
        sent();
        this.healthy = true;
        failingSince = undefined;
        delay = RETRY_MIN_MS;
        this.log.debug('egress update sent', log);
      } catch (err) {
        const error = (err as Error).message;
        if (!isTransient(err)) {
          sent();
          this.log.error('egress update rejected by livekit-server', { ...log, error });
          continue;
        }
        this.healthy = false;
        // From the start of the first failed attempt: the window includes that attempt's own wait.
        failingSince ??= attemptAt;
        const left = failingSince + this.timeouts.retryWindowMs - Date.now();
        if (left <= 0) {
          sent();
          failingSince = undefined;
          // Loud on purpose: livekit-server keeps this egress in its last reported status.
          this.log.error('egress update abandoned: livekit-server unreachable for the whole retry window', {
            ...log, error, retryWindowMs: this.timeouts.retryWindowMs,
          });
          continue;
        }
        this.log.warn('egress update failed, retrying', { ...log, error, retryInMs: Math.min(delay, left) });
        await new Promise((r) => setTimeout(r, Math.min(delay, left)));
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    }
  }

  close(): Promise<void> {
    return this.rpc.close();
  }
}
