// The serving side of psrpc: receive a Request, bid with a claim, and answer only if chosen.
import type { Message, MessageType } from '@bufbuild/protobuf';
import { toEgressError } from '../errors.ts';
import type { Logger } from '../logging.ts';
import { ClaimRequest, Response, type ClaimResponse } from '../proto/internal.ts';
import type { Bus, Subscription } from './bus.ts';
import { channels } from './channels.ts';
import { decodeFrame, encodeFrame } from './frame.ts';
import { newId } from './ids.ts';
import { nowNs } from './time.ts';

export interface MethodSpec<Req extends Message<Req>> {
  service: string;
  method: string;
  requestType: MessageType<Req>;
  /** Queue methods race for a Redis lock first, so one server cluster-wide sees each request. */
  queue: boolean;
  /** Multi methods answer without a claim; every server replies. */
  multi?: boolean;
  /** Below zero: send no claim at all, so the client picks another server. Default 1. */
  affinity?: (req: Req) => number;
  handle: (req: Req, deadlineNs: bigint) => Promise<Message>;
  /** Told whether each claim we sent was chosen. */
  onClaimResult?: (won: boolean) => void;
}

export class RpcServer {
  readonly serverId = newId('SRV_');
  /** Claims we sent and wait on, keyed by request id. */
  private readonly awaitingClaim = new Map<string, (winner: string) => void>();

  constructor(
    private readonly bus: Bus,
    private readonly log: Logger,
  ) {}

  /** Subscribes the method's REQ channel (and RCLAIM, to learn who won) for one topic. */
  async register<Req extends Message<Req>>(spec: MethodSpec<Req>, topic: string): Promise<Subscription> {
    const subs: Subscription[] = [];
    if (!spec.multi) {
      const rclaim = channels.claimResponse(spec.service, spec.method, topic);
      subs.push(await this.bus.subscribe(rclaim, (payload) => this.onClaimResponse(decodeFrame('ClaimResponse', payload))));
    }
    const req = channels.request(spec.service, spec.method, topic);
    // A failed reply (Redis unreachable) must be logged, not left as an unhandled rejection that ends the process.
    const onRequest = (payload: Buffer) =>
      void this.onRequest(spec, payload).catch((err: Error) =>
        this.log.warn('could not answer psrpc request', { service: spec.service, method: spec.method, error: err.message }),
      );
    subs.push(await (spec.queue ? this.bus.subscribeQueue(req, onRequest) : this.bus.subscribe(req, onRequest)));
    return { close: async () => void (await Promise.all(subs.map((s) => s.close()))) };
  }

  private onClaimResponse(claim: ClaimResponse): void {
    this.awaitingClaim.get(claim.requestId)?.(claim.serverId);
  }

  private async onRequest<Req extends Message<Req>>(spec: MethodSpec<Req>, payload: Buffer): Promise<void> {
    const where = { service: spec.service, method: spec.method };
    let request;
    try {
      request = decodeFrame('Request', payload);
    } catch (err) {
      this.log.warn('dropped malformed psrpc frame', { ...where, error: (err as Error).message });
      return;
    }
    if (nowNs() >= request.expiry) {
      this.log.debug('dropped expired request', { ...where, requestId: request.requestId });
      return;
    }
    const reply = (msg: InstanceType<typeof Response>) =>
      this.bus.publish(channels.response(spec.service, request.clientId), encodeFrame('Response', msg));

    let decoded: Req;
    try {
      decoded = spec.requestType.fromBinary(request.rawRequest);
    } catch (err) {
      await reply(this.errorResponse(request.requestId, 'malformed_request', (err as Error).message));
      return;
    }

    if (!spec.multi) {
      const affinity = spec.affinity ? spec.affinity(decoded) : 1;
      if (affinity < 0) return;
      const won = await this.claim(spec.service, request.clientId, request.requestId, affinity, request.expiry);
      spec.onClaimResult?.(won);
      if (!won) return;
    }

    let response: InstanceType<typeof Response>;
    try {
      const result = await spec.handle(decoded, request.expiry);
      response = new Response({ requestId: request.requestId, serverId: this.serverId, sentAt: nowNs(), rawResponse: result.toBinary() });
    } catch (err) {
      const e = toEgressError(err);
      response = this.errorResponse(request.requestId, e.code, e.message);
    }
    await reply(response);
  }

  /** Sends our bid and waits (until the request expires) for the client's choice. */
  private claim(service: string, clientId: string, requestId: string, affinity: number, expiry: bigint): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(false), Math.max(0, Number((expiry - nowNs()) / 1_000_000n)));
      const done = (won: boolean) => {
        clearTimeout(timer);
        this.awaitingClaim.delete(requestId);
        resolve(won);
      };
      this.awaitingClaim.set(requestId, (winner) => done(winner === this.serverId));
      const bid = new ClaimRequest({ requestId, serverId: this.serverId, affinity });
      this.bus.publish(channels.claimRequest(service, clientId), encodeFrame('ClaimRequest', bid)).catch((err: Error) => {
        this.log.warn('could not send claim', { service, requestId, error: err.message });
        done(false);
      });
    });
  }

  private errorResponse(requestId: string, code: string, error: string) {
    // The client tells success from failure only by a non-empty `error`.
    return new Response({ requestId, serverId: this.serverId, sentAt: nowNs(), code, error: error || code });
  }
}
