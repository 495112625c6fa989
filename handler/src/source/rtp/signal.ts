// LiveKit's v0 signalling (two peer connections, the server offers the subscriber one) for a
// participant that only subscribes: one WebSocket of protobuf SignalRequest / SignalResponse frames
// (webrtc-passthrough §5). v0 rather than /rtc/v1: there the client must offer, which a
// subscribe-only client has nothing to offer with.
import WebSocket from 'ws';
import { DisconnectReason, LeaveRequest, LeaveRequest_Action, Ping, ReconnectReason, SignalRequest, SignalResponse, type JoinResponse } from '@livekit/protocol';
import type { Logger } from '@egress/shared/logging.ts';
import { errors } from '@egress/shared/errors.ts';

const PROTOCOL_VERSION = 17;
/**
 * `sdk=go` (what the Go egress is): the server then never switches a subscription to another codec
 * mid-stream (SupportsCodecChange is false for Go), which a recording could not follow.
 */
const SDK = 'go';
const SDK_VERSION = '2.16.0';
const JOIN_TIMEOUT_MS = 15_000;
const LEAVE_FLUSH_MS = 1_000;
/**
 * A signal connection that drops is resumed (`reconnect=1`) for this long, as the client SDKs do: the
 * media keeps flowing on the peer connection meanwhile. livekit-server closes its participants'
 * sockets when it loses its Redis, and takes them back once it is there again.
 */
const RESUME_WINDOW_MS = 60_000;
const RESUME_RETRY_MS = [250, 500, 1000, 2000];

export type SignalMessage = SignalResponse['message'];

export interface Signal {
  readonly join: JoinResponse;
  send(message: SignalRequest['message']): void;
  /** Every message after the join, in order; those that came before the listener was set are replayed to it. */
  onMessage(cb: (message: SignalMessage) => void): void;
  /** Settles (never rejects) if the connection goes without close() and cannot be resumed within a minute. */
  readonly lost: Promise<string>;
  /** Leaves the room and closes the socket; idempotent. */
  close(): Promise<void>;
}

export function signalQuery(token: string): URLSearchParams {
  return new URLSearchParams({
    access_token: token,
    auto_subscribe: '0',
    sdk: SDK,
    version: SDK_VERSION,
    protocol: String(PROTOCOL_VERSION),
    adaptive_stream: '0',
    // A recorder must get every packet: the SFU may not pause this subscription under congestion.
    subscriber_allow_pause: '0',
  });
}

/** Joins the room; resolves at the JoinResponse, or throws with the server's reason. */
export async function connectSignal(o: { wsUrl: string; token: string; log: Logger; timeoutMs?: number }): Promise<Signal> {
  const base = o.wsUrl.replace(/^http/, 'ws').replace(/\/+$/, '');
  const query = signalQuery(o.token);
  try {
    const { ws, first, early } = await open(`${base}/rtc?${query}`, 'join', o.timeoutMs ?? JOIN_TIMEOUT_MS);
    const join = first as JoinResponse;
    const resume = (reason: ReconnectReason) => {
      const q = new URLSearchParams(query);
      q.set('reconnect', '1');
      q.set('sid', join.participant?.sid ?? '');
      q.set('reconnect_reason', String(reason));
      return open(`${base}/rtc?${q}`, 'reconnect', JOIN_TIMEOUT_MS);
    };
    const signal = new SignalConnection(ws, join, resume, o.log);
    signal.replay(early);
    return signal;
  } catch (err) {
    // The WebSocket upgrade hides the server's reason (it only says "Unexpected server response: 401").
    const why = await validate(base, query).catch(() => undefined);
    throw errors.signalFailed(why ?? (err instanceof Error ? err.message : String(err)));
  }
}

type Opened = { ws: WebSocket; first: unknown; early: SignalMessage[] };

/** Opens a socket and waits for its first answer: the JoinResponse, or the ReconnectResponse of a resume. */
async function open(url: string, expect: 'join' | 'reconnect', timeoutMs: number): Promise<Opened> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  // One listener from the start: ws emits every frame of a TCP read at once, so the messages right
  // behind the join (the subscriber offer) arrive before the code awaiting the join runs.
  const early: SignalMessage[] = [];
  let settle: (first?: unknown, err?: Error) => void = () => undefined;
  const onEarly = (data: Buffer) => {
    let message: SignalMessage;
    try {
      message = SignalResponse.fromBinary(data).message;
    } catch (err) {
      return settle(undefined, err as Error);
    }
    if (message.case === expect) settle(message.value);
    else if (message.case === 'leave') settle(undefined, new Error(`the server refused the join (${DisconnectReason[message.value.reason]})`));
    else early.push(message);
  };
  const onError = (err: Error) => settle(undefined, err);
  const onClose = (code: number) => settle(undefined, new Error(`signal connection closed (${code}) before the ${expect} response`));
  ws.on('message', onEarly).on('error', onError).on('close', onClose);
  try {
    const first = await new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${expect} response within ${timeoutMs / 1000} s`)), timeoutMs);
      settle = (value, err) => {
        clearTimeout(timer);
        if (value) resolve(value);
        else reject(err ?? new Error(`no ${expect} response`));
      };
    });
    ws.off('message', onEarly).off('error', onError).off('close', onClose);
    return { ws, first, early };
  } catch (err) {
    ws.off('message', onEarly).off('close', onClose);
    ws.on('error', () => undefined);
    ws.terminate();
    throw err;
  }
}

/** The server's readable answer to the same join, or undefined when it has no complaint. */
async function validate(base: string, query: URLSearchParams): Promise<string | undefined> {
  const res = await fetch(`${base.replace(/^ws/, 'http')}/rtc/validate?${query}`, { signal: AbortSignal.timeout(5_000) });
  if (res.ok) return undefined;
  // The server quotes a refused token back: it must not reach the logs or the EgressInfo.
  const token = query.get('access_token');
  const text = (await res.text()).trim();
  return `${res.status} ${token ? text.replaceAll(token, '<token>') : text}`;
}

class SignalConnection implements Signal {
  private listener?: (message: SignalMessage) => void;
  private backlog: SignalMessage[] = [];
  private closing?: Promise<void>;
  private pingTimer?: NodeJS.Timeout;
  private pongTimer?: NodeJS.Timeout;
  private rttMs = 0;
  private loseWith?: (why: string) => void;
  readonly lost = new Promise<string>((r) => (this.loseWith = r));
  private resuming = false;

  constructor(
    private ws: WebSocket,
    readonly join: JoinResponse,
    private readonly resume: (reason: ReconnectReason) => Promise<Opened>,
    private readonly log: Logger,
  ) {
    this.attach(ws);
  }

  private attach(ws: WebSocket): void {
    ws.on('message', (data: Buffer) => {
      if (ws !== this.ws) return;
      let message: SignalMessage;
      try {
        message = SignalResponse.fromBinary(data).message;
      } catch (err) {
        return this.log.warn('unreadable signal message', { error: String(err) });
      }
      if (message.case === 'pong' || message.case === 'pongResp') return this.onPong(message);
      if (message.case === 'leave' && message.value.action === LeaveRequest_Action.RESUME) return void this.drop('the server asked for a resume', ReconnectReason.RR_SIGNAL_DISCONNECTED);
      this.deliver(message);
    });
    ws.on('error', (err) => this.log.warn('signal connection error', { error: err.message }));
    ws.on('close', (code) => ws === this.ws && void this.drop(`signal connection closed (${code})`, ReconnectReason.RR_SIGNAL_DISCONNECTED));
    this.startPings();
  }

  /** The socket went: resumed if the server takes it back within the window, lost otherwise. */
  private async drop(why: string, reason: ReconnectReason): Promise<void> {
    if (this.closing || this.resuming || !this.loseWith) return;
    this.resuming = true;
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.ws.terminate();
    this.log.warn('signal connection dropped: resuming', { why });
    const deadline = Date.now() + RESUME_WINDOW_MS;
    for (let attempt = 0; Date.now() < deadline && !this.closing; attempt++) {
      await new Promise((r) => setTimeout(r, RESUME_RETRY_MS[Math.min(attempt, RESUME_RETRY_MS.length - 1)]));
      if (this.closing) return;
      try {
        const { ws, early } = await this.resume(reason);
        if (this.closing) return void ws.terminate();
        this.ws = ws;
        this.resuming = false;
        this.attach(ws);
        this.replay(early);
        this.log.info('signal connection resumed', { attempts: attempt + 1 });
        return;
      } catch (err) {
        this.log.debug('signal resume failed', { attempt: attempt + 1, error: String(err) });
      }
    }
    this.resuming = false;
    this.lose(`${why}; not resumed within ${RESUME_WINDOW_MS / 1000} s`);
  }

  replay(messages: SignalMessage[]): void {
    messages.forEach((m) => this.deliver(m));
  }

  private deliver(message: SignalMessage): void {
    if (this.listener) this.listener(message);
    else this.backlog.push(message);
  }

  onMessage(cb: (message: SignalMessage) => void): void {
    this.listener = cb;
    const backlog = this.backlog;
    this.backlog = [];
    backlog.forEach(cb);
  }

  send(message: SignalRequest['message']): void {
    if (this.closing || this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(new SignalRequest({ message }).toBinary());
  }

  /** livekit-client sends both the legacy `ping` and `ping_req`; servers answer `pong` / `pong_resp`. */
  private startPings(): void {
    const { pingInterval, pingTimeout } = this.join;
    if (!pingInterval || !pingTimeout) return;
    this.pingTimer = setInterval(() => {
      const now = BigInt(Date.now());
      this.send({ case: 'ping', value: now });
      this.send({ case: 'pingReq', value: new Ping({ timestamp: now, rtt: BigInt(this.rttMs) }) });
    }, pingInterval * 1000);
    this.armPongTimeout();
  }

  private armPongTimeout(): void {
    clearTimeout(this.pongTimer);
    const { pingTimeout } = this.join;
    this.pongTimer = setTimeout(() => void this.drop(`no pong within ${pingTimeout} s`, ReconnectReason.RR_SIGNAL_DISCONNECTED), pingTimeout * 1000);
  }

  private onPong(message: SignalMessage): void {
    if (message.case === 'pongResp') this.rttMs = Math.max(0, Date.now() - Number(message.value.lastPingTimestamp));
    this.armPongTimeout();
  }

  private lose(why: string): void {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    if (this.closing) return;
    this.loseWith?.(why);
    this.loseWith = undefined;
    this.ws.terminate();
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    if (this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(new SignalRequest({ message: { case: 'leave', value: new LeaveRequest({ reason: DisconnectReason.CLIENT_INITIATED, action: LeaveRequest_Action.DISCONNECT }) } }).toBinary());
    }
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.closing = new Promise<void>((resolve) => {
      if (this.ws.readyState === WebSocket.CLOSED) return resolve();
      const timer = setTimeout(() => this.ws.terminate(), LEAVE_FLUSH_MS);
      this.ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.ws.close();
    });
    return this.closing;
  }
}
