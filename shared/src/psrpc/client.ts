// The calling side of psrpc: publish a Request, pick a server from the claims, wait for its Response.
import type { Message, MessageType } from '@bufbuild/protobuf';
import { EgressError, errors, isErrorCode } from '../errors.ts';
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

/** How a single call's selection ended: the chosen server's Response, or the error the caller gets. */
type Outcome = Response | EgressError;

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
    ]).catch((err: unknown) => {
      // Not cached: the next call tries again once Redis is back.
      this.subscriptions = undefined;
      throw errors.busUnavailable((err as Error).message);
    });
    return this.subscriptions;
  }

  /**
   * One request, one chosen server, one response. The timeout covers everything from the first
   * PUBLISH on, as psrpc's context does, so a Redis that stops answering cannot hold a caller.
   */
  async call<Res extends Message<Res>>(
    method: string,
    topic: string,
    request: Message,
    responseType: MessageType<Res>,
    opts: CallOptions,
  ): Promise<Res> {
    const requestId = newId('REQ_');
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(errors.requestTimedOut()), opts.timeoutMs);
    });
    try {
      const res = await Promise.race([this.exchange(requestId, method, topic, request, opts, abort.signal), deadline]);
      if (res.error) throw new EgressError(isErrorCode(res.code) ? res.code : 'unknown', res.error);
      return responseType.fromBinary(res.rawResponse);
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
  }

  private async exchange(requestId: string, method: string, topic: string, request: Message, opts: CallOptions, signal: AbortSignal): Promise<Response> {
    await this.ensureSubscribed();
    signal.throwIfAborted();
    const sentAt = nowNs();
    const frame = new Request({
      requestId,
      clientId: this.clientId,
      sentAt,
      expiry: sentAt + BigInt(opts.timeoutMs) * 1_000_000n,
      rawRequest: request.toBinary(),
    });
    // Listening before the PUBLISH: a fast server's claim may arrive before Redis acknowledges it.
    const selection = this.select(requestId, method, topic, opts.selection, signal);
    await this.publish(channels.request(this.service, method, topic), encodeFrame('Request', frame));
    signal.throwIfAborted();
    const outcome = await selection.armed();
    if (outcome instanceof EgressError) throw outcome;
    return outcome;
  }

  private async publish(channel: string, payload: Uint8Array): Promise<void> {
    try {
      await this.bus.publish(channel, payload);
    } catch (err) {
      throw errors.busUnavailable((err as Error).message);
    }
  }

  /**
   * psrpc's selectServer. Its timers start only when `armed()` is called, after the request went out;
   * its promise never rejects (an error is its value), so no failure can go unobserved.
   */
  private select(requestId: string, method: string, topic: string, sel: Selection, signal: AbortSignal): { armed(): Promise<Outcome> } {
    let settle!: (o: Outcome) => void;
    const outcome = new Promise<Outcome>((r) => (settle = r));
    let best: ClaimRequest | undefined;
    let chosen = false;
    let armed = false;
    let earlyError: Response | undefined;
    let claims = 0;
    let claimed = false;
    let shortCircuitArmed = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = (o: Outcome) => {
      timers.forEach(clearTimeout);
      this.pending.delete(requestId);
      settle(o);
    };
    // The call is over (answered or timed out): nothing may fire after it.
    signal.addEventListener('abort', () => finish(errors.requestTimedOut()), { once: true });

    const choose = (serverId: string) => {
      if (chosen) return;
      chosen = true;
      timers.forEach(clearTimeout);
      this.publish(channels.claimResponse(this.service, method, topic), encodeFrame('ClaimResponse', new ClaimResponse({ requestId, serverId }))).catch(finish);
    };
    const closeSelection = () => {
      if (chosen) return;
      if (best) return choose(best.serverId);
      if (earlyError) return finish(earlyError);
      finish(claims > 0 ? errors.noServers(claims) : errors.noResponse());
    };
    // Armed once, on the first claim that meets the minimum, but never before the selection window opens.
    const armShortCircuit = () => {
      if (shortCircuitArmed || !armed || !claimed || sel.shortCircuitTimeoutMs === undefined) return;
      shortCircuitArmed = true;
      timers.push(setTimeout(closeSelection, sel.shortCircuitTimeoutMs));
    };

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
        claimed = true;
        armShortCircuit();
      },
      onResponse: (res) => {
        if (chosen) return finish(res);
        // An error before selection is kept, used only if no server is chosen.
        if (res.error) earlyError = res;
      },
    });
    return {
      armed: () => {
        armed = true;
        if (!chosen) timers.push(setTimeout(closeSelection, sel.affinityTimeoutMs));
        armShortCircuit();
        return outcome;
      },
    };
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
    try {
      await this.publish(channels.request(this.service, method, topic), encodeFrame('Request', frame));
      await new Promise((r) => setTimeout(r, timeoutMs));
    } finally {
      this.pending.delete(requestId);
    }
    return results;
  }

  async close(): Promise<void> {
    const subs = await this.subscriptions;
    await Promise.all((subs ?? []).map((s) => s.close()));
    if (this.pending.size) this.log.debug('psrpc client closed with calls in flight', { calls: this.pending.size });
  }
}
