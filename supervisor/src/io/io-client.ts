// Status goes to livekit-server through its IOInfo service (a psrpc queue on every livekit-server node).
// CreateEgress must land before any UpdateEgress: only CreateEgress adds the egress to its room's set
// and fires egress_started, so each egress's calls run in order on one chain.
import type { EgressInfo } from '@livekit/protocol';
import { EgressError } from '@egress/shared/errors.ts';
import type { Logger } from '@egress/shared/logging.ts';
import type { Bus } from '@egress/shared/psrpc/bus.ts';
import { RpcClient } from '@egress/shared/psrpc/client.ts';
import { Empty } from '@egress/shared/proto/rpc.ts';

const SELECTION = { acceptFirstAvailable: true, affinityTimeoutMs: 1000 };
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 60_000;

export class IoClient {
  private readonly rpc: RpcClient;
  private readonly chains = new Map<string, Promise<void>>();
  /** False after a retryable failure, true again after a success; the node stops bidding while false. */
  healthy = true;

  constructor(
    bus: Bus,
    private readonly log: Logger,
    private readonly timeouts: { createMs: number; updateMs: number },
  ) {
    this.rpc = new RpcClient(bus, 'IOInfo', log);
  }

  /** Resolves when livekit-server stored the egress; a failure aborts the start. */
  createEgress(info: EgressInfo): Promise<void> {
    const done = this.rpc
      .call('CreateEgress', '', info, Empty, { timeoutMs: this.timeouts.createMs, selection: SELECTION })
      .then(() => void (this.healthy = true));
    this.chains.set(info.egressId, done.catch(() => undefined));
    return done;
  }

  /** Queued behind the egress's earlier calls; retried with backoff while livekit-server does not answer. */
  updateEgress(info: EgressInfo): Promise<void> {
    const snapshot = info.clone();
    const previous = this.chains.get(info.egressId) ?? Promise.resolve();
    const next = previous.then(() => this.updateWithRetry(snapshot));
    this.chains.set(info.egressId, next);
    return next;
  }

  /** Waits for the egress's queued calls, then forgets it. */
  async flush(egressId: string): Promise<void> {
    await this.chains.get(egressId);
    this.chains.delete(egressId);
  }

  private async updateWithRetry(info: EgressInfo): Promise<void> {
    for (let delay = RETRY_MIN_MS; ; delay = Math.min(delay * 2, RETRY_MAX_MS)) {
      try {
        await this.rpc.call('UpdateEgress', '', info, Empty, { timeoutMs: this.timeouts.updateMs, selection: SELECTION });
        this.healthy = true;
        this.log.debug('egress update sent', { egressId: info.egressId, status: info.status });
        return;
      } catch (err) {
        const retryable = err instanceof EgressError && (err.code === 'unavailable' || err.code === 'deadline_exceeded');
        if (!retryable) {
          this.log.error('egress update rejected', { egressId: info.egressId, error: (err as Error).message });
          return;
        }
        this.healthy = false;
        this.log.warn('egress update failed, retrying', { egressId: info.egressId, error: (err as Error).message, retryInMs: delay });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  close(): Promise<void> {
    return this.rpc.close();
  }
}
