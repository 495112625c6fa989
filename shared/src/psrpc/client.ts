// The calling side of psrpc: publish a Request, pick a server from the claims, wait for its Response.
import type { Message, MessageType } from '@bufbuild/protobuf';
import { EgressError, isErrorCode } from '../errors.ts';
import type { Logger } from '../logging.ts';
import { ClaimResponse, Request, type ClaimRequest, type Response } from '../proto/internal.ts';
import type { Bus, Subscription } from './bus.ts';
import { channels } from './channels.ts';
import { decodeFrame, encodeFrame } from './frame.ts';
import { newId } from './ids.ts';
import { nowNs } from './time.ts';

/** psrpc's selectServer options (pkg/client/rpc.go). */
export interface Selection {
  acceptFirstAvailable?: boolean;
  minimumAffinity?: number;
  maximumAffinity?: number;
  affinityTimeoutMs: number;
  shortCircuitTimeoutMs?: number;
}

export interface CallOptions {
  timeoutMs: number;
  selection: Selection;
}

interface Pending {
  onClaim(claim: ClaimRequest): void;
  onResponse(res: Response): void;
}

export class RpcClient {
  readonly clientId = newId('CLI_');
  private readonly pending = new Map<string, Pending>();
  private subscriptions?: Promise<Subscription[]>;

  constructor(
    private readonly bus: Bus,
    private readonly service: string,
    private readonly log: Logger,
  ) {}

  private ensureSubscribed(): Promise<Subscription[]> {
    this.subscriptions ??= Promise.all([
      this.bus.subscribe(channels.response(this.service, this.clientId), (p) => {
        const res = decodeFrame('Response', p);
        this.pending.get(res.requestId)?.onResponse(res);
      }),
      this.bus.subscribe(channels.claimRequest(this.service, this.clientId), (p) => {
        const claim = decodeFrame('ClaimRequest', p);
        this.pending.get(claim.requestId)?.onClaim(claim);
      }),
    ]);
    return this.subscriptions;
  }

  async call<Res extends Message<Res>>(
    method: string,
    topic: string,
    request: Message,
    responseType: MessageType<Res>,
    opts: CallOptions,
  ): Promise<Res> {
    await this.ensureSubscribed();
    const requestId = newId('REQ_');
    const sentAt = nowNs();
    const frame = new Request({
      requestId,
      clientId: this.clientId,
      sentAt,
      expiry: sentAt + BigInt(opts.timeoutMs) * 1_000_000n,
      rawRequest: request.toBinary(),
    });

    const response = new Promise<Response>((resolve, reject) => {
      const sel = opts.selection;
      let best: ClaimRequest | undefined;
      let chosen = false;
      let earlyError: Response | undefined;
      let claims = 0;
      const timers: NodeJS.Timeout[] = [];
      const finish = (fn: () => void) => {
        timers.forEach(clearTimeout);
        this.pending.delete(requestId);
        fn();
      };
      const choose = (serverId: string) => {
        if (chosen) return;
        chosen = true;
        timers.forEach(clearTimeout);
        timers.length = 0;
        timers.push(setTimeout(() => finish(() => reject(new EgressError('deadline_exceeded', 'request timed out'))), opts.timeoutMs));
        this.bus
          .publish(channels.claimResponse(this.service, method, topic), encodeFrame('ClaimResponse', new ClaimResponse({ requestId, serverId })))
          .catch((err: Error) => finish(() => reject(new EgressError('unavailable', err.message))));
      };
      const closeSelection = () => {
        if (chosen) return;
        if (best) return choose(best.serverId);
        if (earlyError) return finish(() => resolve(earlyError!));
        const msg = claims > 0 ? `no servers available (received ${claims} responses)` : 'no response from servers';
        finish(() => reject(new EgressError('unavailable', msg)));
      };
      timers.push(setTimeout(closeSelection, sel.affinityTimeoutMs));
      let shortCircuitArmed = false;

      this.pending.set(requestId, {
        onClaim: (claim) => {
          claims++;
          if (chosen) return;
          const min = sel.minimumAffinity ?? 0;
          if (min > 0 && claim.affinity < min) return;
          if (sel.acceptFirstAvailable || (sel.maximumAffinity && claim.affinity >= sel.maximumAffinity)) {
            return choose(claim.serverId);
          }
          // Ties go to the earliest claim, and an affinity of 0 never wins.
          if (claim.affinity > (best?.affinity ?? 0)) best = claim;
          if (!shortCircuitArmed && sel.shortCircuitTimeoutMs !== undefined) {
            shortCircuitArmed = true;
            timers.push(setTimeout(closeSelection, sel.shortCircuitTimeoutMs));
          }
        },
        onResponse: (res) => {
          if (chosen) return finish(() => resolve(res));
          // An error before selection is kept, used only if no server is chosen.
          if (res.error) earlyError = res;
        },
      });
    });

    await this.bus.publish(channels.request(this.service, method, topic), encodeFrame('Request', frame));
    const res = await response;
    if (res.error) throw new EgressError(isErrorCode(res.code) ? res.code : 'unknown', res.error);
    return responseType.fromBinary(res.rawResponse);
  }

  /** A multi RPC: no claims; every server answers, and all answers that arrive before the timeout count. */
  async callMulti<Res extends Message<Res>>(method: string, topic: string, request: Message, responseType: MessageType<Res>, timeoutMs: number): Promise<Res[]> {
    await this.ensureSubscribed();
    const requestId = newId('REQ_');
    const sentAt = nowNs();
    const frame = new Request({ requestId, clientId: this.clientId, sentAt, expiry: sentAt + BigInt(timeoutMs) * 1_000_000n, multi: true, rawRequest: request.toBinary() });
    const results: Res[] = [];
    this.pending.set(requestId, {
      onClaim: () => undefined,
      onResponse: (res) => {
        if (res.error) this.log.debug('multi call error answer', { method, error: res.error });
        else results.push(responseType.fromBinary(res.rawResponse));
      },
    });
    await this.bus.publish(channels.request(this.service, method, topic), encodeFrame('Request', frame));
    await new Promise((r) => setTimeout(r, timeoutMs));
    this.pending.delete(requestId);
    return results;
  }

  async close(): Promise<void> {
    const subs = await this.subscriptions;
    await Promise.all((subs ?? []).map((s) => s.close()));
    if (this.pending.size) this.log.debug('psrpc client closed with calls in flight', { calls: this.pending.size });
  }
}
