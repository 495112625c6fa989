// A websocket output (egress-behaviour §11.7, F57): the job's audio as raw PCM (S16LE, 48 kHz,
// stereo, interleaved), one binary message per 10 ms frame, and `{"muted":true|false}` text
// messages when the track goes quiet or comes back. No gst: the mixer's frames already are PCM.
import WebSocket from 'ws';
import type { EgressInfo } from '@livekit/protocol';
import { EgressError } from '@egress/shared/errors.ts';
import type { WebsocketOutputPlan } from '@egress/shared/plan/pipeline-config.ts';
import type { MixedFrame } from '../media/mixer.ts';
import type { Sink, SinkContext } from './sink.ts';

const CONNECT_TIMEOUT_MS = 10_000;
const PING_MS = 30_000;
/** Bytes queued on the socket beyond which the receiver is too slow: ~5 s of audio. */
const MAX_BUFFERED = 5 * 192_000;

export class WebsocketSink implements Sink {
  readonly failed: Promise<EgressError>;
  private fail!: (e: EgressError) => void;
  private ws?: WebSocket;
  private ping?: NodeJS.Timeout;
  private closing = false;
  /** Muted state per track; the output is muted while every track is. */
  private readonly mutedTracks = new Map<string, boolean>();
  private sentMuted = false;

  constructor(
    private readonly ctx: SinkContext,
    private readonly output: WebsocketOutputPlan,
  ) {
    this.failed = new Promise((r) => (this.fail = r));
  }

  async start(): Promise<void> {
    const ws = new WebSocket(this.output.url, { headers: { 'Content-Type': 'audio/x-raw' }, handshakeTimeout: CONNECT_TIMEOUT_MS });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', (err) => reject(new EgressError('invalid_argument', `websocket: could not connect to ${this.output.url}: ${err.message}`)));
    });
    this.ws = ws;
    ws.on('error', (err) => this.broken(err.message));
    ws.on('close', () => this.broken('connection closed by the receiver'));
    // Answer the receiver's text pings the way the Go egress does.
    ws.on('message', (data, isBinary) => {
      if (!isBinary && data.toString() === 'ping') ws.send('pong');
    });
    this.ping = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send('ping'), PING_MS);
  }

  private broken(reason: string): void {
    if (this.closing) return;
    this.fail(new EgressError('unavailable', `websocket write failed: ${reason}`));
  }

  audio(f: MixedFrame): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > MAX_BUFFERED) return this.broken('receiver too slow');
    ws.send(Buffer.from(f.samples.buffer, f.samples.byteOffset, f.samples.byteLength), { binary: true });
  }

  muted(trackId: string, muted: boolean): void {
    this.mutedTracks.set(trackId, muted);
    const all = [...this.mutedTracks.values()].every(Boolean);
    if (all === this.sentMuted || this.ws?.readyState !== WebSocket.OPEN) return;
    this.sentMuted = all;
    this.ws.send(JSON.stringify({ muted: all }));
  }

  async finish(_info: EgressInfo): Promise<void> {
    this.closing = true;
    clearInterval(this.ping);
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const closed = new Promise<void>((r) => ws.once('close', () => r()));
    ws.close(1000);
    await Promise.race([closed, new Promise((r) => setTimeout(r, 5_000))]);
    ws.terminate();
  }

  abort(): void {
    this.closing = true;
    clearInterval(this.ping);
    this.ws?.terminate();
  }

  debug(): { commandLines: string[] } {
    return { commandLines: [] };
  }
}
