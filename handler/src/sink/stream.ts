// An RTMP(S) or SRT output (egress-behaviour §3.4, §11.6): a branch of the job's encoder that takes
// the encoded audio and video out of gst (GDP), and one gst-launch per URL that muxes and sends
// them (pipeline/stream.ts). Each URL lives on its own:
//   - it starts at a key frame, its times rebased to 0, so a URL added live or reconnecting is a
//     clean stream;
//   - one that fails after it was up is retried with backoff for as long as the outage lasts less
//     than 30 s; one that fails at once (refused, bad key) or stalls for 30 s is dropped, FAILED;
//   - UpdateStream adds and removes URLs while the job runs.
// The encoder, the recording and the other URLs never wait for a URL: each has a bounded backlog,
// past which it skips to the next key frame.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { EgressInfo, StreamInfo, StreamInfo_Status, StreamInfoList } from '@livekit/protocol';
import { EgressError, errors } from '@egress/shared/errors.ts';
import { nowNs } from '@egress/shared/egress-info.ts';
import { redactStreamUrl, validateStreamUrl } from '@egress/shared/plan/outputs/stream.ts';
import type { StreamOutputPlan } from '@egress/shared/plan/pipeline-config.ts';
import { GdpParser, gdpRebasedHeader, gdpSegment, gdpStreamStart, type GdpPacket } from '../gst/gdp.ts';
import { startGst, type GstProcess } from '../gst/runner.ts';
import type { StreamBranch } from '../pipeline/encode.ts';
import { streamPublishArgs, type StreamTarget } from '../pipeline/stream.ts';
import type { Encoder, GstBranch } from './encoder.ts';
import type { Sink, SinkContext } from './sink.ts';
import { establishedSendQueues, sendQueueOf, socketInodes } from './tcp-progress.ts';
import { resolveTwitch } from './twitch.ts';

type Kind = 'audio' | 'video';

/** An outage (from the first failure) longer than this drops the URL; so does a stall this long. */
export const OUTAGE_LIMIT_MS = 30_000;
/**
 * A URL whose process has run this long without an error is up: a later failure is retried. Longer
 * than rtmp2sink's 5 s I/O timeout, so a server that accepts the connection and never answers (a
 * stopped one) is not taken for up.
 */
const UP_AFTER_MS = 10_000;
const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 8_000;
/** Bytes past which a URL's media is skipped, up to the next key frame. */
const MAX_BACKLOG_BYTES = 8 * 1024 * 1024;
const TICK_MS = 1_000;
/** The reference sends a retry's update at most this often per stream. */
const RETRY_UPDATE_MS = 60_000;
const FINISH_TIMEOUT_MS = 5_000;

/** What tests change: a shorter outage limit, and a process that stalls. */
export interface StreamOptions {
  outageLimitMs?: number;
  publishArgs?: (t: StreamTarget) => string[];
}

export class StreamSink implements Sink, GstBranch {
  readonly failed: Promise<EgressError>;
  private fail!: (e: EgressError) => void;
  private readonly urls: UrlStream[] = [];
  /** The newest caps packet of each encoded stream, which every URL's process starts with. */
  readonly caps: Partial<Record<Kind, Buffer>> = {};
  /** PTS - running time of each encoded stream (its segment's start - base). */
  readonly ptsOffset: Record<Kind, bigint> = { audio: 0n, video: 0n };
  kinds: Kind[] = [];
  private ended = false;
  private readonly twitchCache = new Map<string, string>();
  private tick?: NodeJS.Timeout;
  /** Every encoded stream gst wrote out has been read to its end. */
  private outputsEnded: Promise<unknown> = Promise.resolve();

  constructor(
    readonly ctx: SinkContext,
    private readonly output: StreamOutputPlan,
    private readonly encoder: Encoder,
    /** Whether the stream is the job's only output: losing its last URL then ends the job. */
    private readonly only: boolean,
    readonly opts: StreamOptions = {},
  ) {
    this.failed = new Promise((r) => (this.fail = r));
    encoder.add(this);
  }

  get protocol(): StreamOutputPlan['protocol'] {
    return this.output.protocol;
  }

  async start(): Promise<void> {
    for (const url of this.output.urls) this.urls.push(new UrlStream(this, await this.resolve(url), url));
    this.tick = setInterval(() => {
      const queues = establishedSendQueues((f) => readFileSync(f, 'utf8'));
      for (const u of this.urls) u.check(queues);
    }, TICK_MS);
  }

  /** twitch:// (and Twitch's own ingest URLs) become the ingest server Twitch lists; the rest is as planned. */
  private async resolve(url: string): Promise<string> {
    const key = /^twitch:\/\/(.+)$/i.exec(url)?.[1] ?? /^rtmps?:\/\/[^/]*\.contribute\.live-video\.net\/app\/(.+)$/i.exec(url)?.[1];
    if (!key) return url;
    // The template comes from the network: checked like a URL in a request.
    return validateStreamUrl(await resolveTwitch(key, this.twitchCache, this.ctx.config.testOverrides.twitchIngestUrl), 'rtmp');
  }

  branch(name: string): StreamBranch {
    return { type: 'stream', name };
  }

  attach(outputs: { audio?: Readable; video?: Readable }): void {
    this.kinds = (['audio', 'video'] as const).filter((k) => outputs[k]);
    const ends: Promise<unknown>[] = [];
    for (const kind of this.kinds) {
      const parser = new GdpParser();
      const out = outputs[kind]!;
      out.on('data', (chunk: Buffer) => {
        for (const p of parser.push(chunk)) this.packet(kind, p);
      });
      ends.push(new Promise((r) => out.once('close', r)));
      out.on('error', () => undefined);
    }
    this.outputsEnded = Promise.all(ends);
  }

  private packet(kind: Kind, p: GdpPacket): void {
    if (p.type === 'event') return;
    if (p.type === 'segment') {
      this.ptsOffset[kind] = p.start - p.base;
      return;
    }
    if (p.type === 'caps') this.caps[kind] = p.packet;
    for (const u of this.urls) u.packet(kind, p);
  }

  /** The job's current stream results (live updates and the final EgressInfo). */
  results(info: EgressInfo): void {
    info.streamResults = this.urls.map((u) => u.info.clone());
    if (this.ctx.plan.outputs.length === 1 && (info.result.case === undefined || info.result.case === 'stream')) {
      info.result = { case: 'stream', value: new StreamInfoList({ info: info.streamResults.map((s) => s.clone()) }) };
    }
  }

  /** A URL's state changed: the job sends an update. */
  changed(): void {
    if (!this.ended) this.ctx.changed();
  }

  /** A URL failed or was removed: with none left, a stream-only job is over. */
  gone(error?: string): void {
    if (this.ended || this.urls.some((u) => u.live)) return;
    if (!this.only) return;
    if (error) this.fail(new EgressError('unavailable', error));
    else this.ctx.endJob('All streams stopped');
  }

  /** UpdateStream: every URL is tried; the errors are joined, with the first one's code. */
  async update(add: string[], remove: string[]): Promise<void> {
    const failures: EgressError[] = [];
    for (const raw of add) {
      try {
        const url = await this.resolve(validateStreamUrl(raw, this.output.protocol));
        if (this.urls.some((u) => u.live && u.url === url)) throw errors.invalidUrl(raw, 'already streaming');
        const u = new UrlStream(this, url, raw);
        this.urls.push(u);
        this.ctx.log.info('stream added', { url: u.info.url });
      } catch (err) {
        failures.push(err instanceof EgressError ? err : new EgressError('invalid_argument', (err as Error).message));
      }
    }
    for (const raw of remove) {
      try {
        const url = await this.resolve(validateStreamUrl(raw, this.output.protocol)).catch(() => raw);
        const u = this.urls.find((x) => x.live && (x.url === url || x.given === raw));
        if (!u) throw errors.streamNotFound(raw);
        this.ctx.log.info('stream removed', { url: u.info.url });
        u.finish(StreamInfo_Status.FINISHED);
      } catch (err) {
        failures.push(err instanceof EgressError ? err : new EgressError('invalid_argument', (err as Error).message));
      }
    }
    if (add.length || remove.length) this.changed();
    this.gone();
    if (failures.length) throw new EgressError(failures[0]!.code, failures.map((f) => f.message).join('\n'));
  }

  async finish(info: EgressInfo): Promise<void> {
    // gst finishing ends its outputs; once all they held is passed on, each URL gets EOS.
    await this.encoder.finish().catch(() => undefined);
    await Promise.race([this.outputsEnded, new Promise((r) => setTimeout(r, FINISH_TIMEOUT_MS))]);
    this.ended = true;
    clearInterval(this.tick);
    await Promise.all(this.urls.map((u) => u.finish(StreamInfo_Status.FINISHED)));
    this.results(info);
  }

  /** The job failed: streams that ended well are FAILED with its error. */
  failAll(error: string, info: EgressInfo): void {
    for (const u of this.urls) {
      if (u.info.status === StreamInfo_Status.FAILED) continue;
      u.info.status = StreamInfo_Status.FAILED;
      u.info.error ||= error;
    }
    this.results(info);
  }

  abort(): void {
    this.ended = true;
    clearInterval(this.tick);
    for (const u of this.urls) u.kill();
  }

  debug(): { commandLines: string[] } {
    return { commandLines: this.urls.flatMap((u) => u.commandLines()) };
  }
}

/** One URL: its process, restarted while an outage lasts, and its StreamInfo. */
class UrlStream {
  readonly info: StreamInfo;
  private proc?: GstProcess;
  private inputs: Partial<Record<Kind, Writable>> = {};
  /** Running time of the key frame this process started at: its time 0. */
  private baseNs = 0n;
  private state: 'waiting' | 'running' | 'retrying' | 'done' = 'waiting';
  private upOnce = false;
  private outageSince?: number;
  private retryMs = FIRST_RETRY_MS;
  private retryTimer?: NodeJS.Timeout;
  private upTimer?: NodeJS.Timeout;
  /** The process's TCP send queue at the last check, and when the connection last moved. */
  private sendQueue?: number;
  private progressAt = 0;
  /** After a skip: nothing is sent until the next key frame. */
  private skipping = false;
  private lastRetryUpdate = 0;
  private finishing?: Promise<void>;

  constructor(
    private readonly sink: StreamSink,
    readonly url: string,
    /** As the request gave it (mux://, twitch://), for UpdateStream's lookups. */
    readonly given: string,
  ) {
    this.info = new StreamInfo({ url: redactStreamUrl(url), status: StreamInfo_Status.ACTIVE });
    if (sink.protocol === 'srt') this.info.startedAt = nowNs();
  }

  /** The stream key (the URL's last path part) never leaves in a log line or an error. */
  redact(text: string): string {
    const key = /\/([^/\s]+)(?: live=1)?$/.exec(this.url)?.[1];
    let out = text.split(this.url).join(this.info.url);
    if (this.sink.protocol === 'rtmp' && key && key.length >= 3) out = out.split(key).join(/\{[^}]*\}$/.exec(this.info.url)?.[0] ?? '{}');
    return out;
  }

  private get outageLimitMs(): number {
    return this.sink.opts.outageLimitMs ?? OUTAGE_LIMIT_MS;
  }

  get live(): boolean {
    return this.state !== 'done';
  }

  packet(kind: Kind, p: GdpPacket): void {
    if (this.state === 'done') return;
    if (p.type === 'caps') {
      this.inputs[kind]?.write(p.packet);
      return;
    }
    if (p.type !== 'buffer') return;
    const leader: Kind = this.sink.kinds.includes('video') ? 'video' : 'audio';
    const startsHere = kind === leader && p.keyFrame;
    const offset = this.sink.ptsOffset[kind];
    const runningNs = p.ptsNs - offset;
    if (this.state === 'waiting' && startsHere && this.sink.kinds.every((k) => this.sink.caps[k])) this.spawn(runningNs);
    if (this.state !== 'running' || runningNs < this.baseNs) return;
    if (this.skipping) {
      if (!startsHere) return;
      this.skipping = false;
    }
    const input = this.inputs[kind];
    if (!input) return;
    if (this.backlog() > MAX_BACKLOG_BYTES) {
      this.skipping = true;
      return;
    }
    input.write(gdpRebasedHeader(p.packet, offset + this.baseNs));
    input.write(p.packet.subarray(62));
  }

  private backlog(): number {
    return Object.values(this.inputs).reduce((n, w) => n + (w?.writableLength ?? 0), 0);
  }

  private spawn(baseNs: bigint): void {
    const { ctx } = this.sink;
    this.baseNs = baseNs;
    const kinds = this.sink.kinds;
    const target = { protocol: this.sink.protocol, url: this.url, audio: kinds.includes('audio'), video: kinds.includes('video') };
    const proc = startGst((this.sink.opts.publishArgs ?? streamPublishArgs)(target), {
      extraFds: kinds.length,
      logger: ctx.log,
      redact: (line) => this.redact(line),
    });
    this.proc = proc;
    this.state = 'running';
    this.sendQueue = undefined;
    this.progressAt = Date.now();
    this.skipping = false;
    ctx.process({ pid: proc.pid, pgid: proc.pid, name: 'gst-launch-1.0', commandLine: proc.commandLine });
    this.inputs = {};
    kinds.forEach((k, i) => {
      const w = proc.inputs[i]!;
      w.write(Buffer.concat([gdpStreamStart(k), this.sink.caps[k]!, gdpSegment()]));
      this.inputs[k] = w;
    });
    if (!this.upOnce) this.info.startedAt ||= nowNs();
    this.upTimer = setTimeout(() => {
      if (this.proc !== proc || this.state !== 'running') return;
      this.upOnce = true;
      this.outageSince = undefined;
      this.retryMs = FIRST_RETRY_MS;
    }, UP_AFTER_MS);
    void proc.exited.then((exit) => {
      if (this.proc !== proc) return;
      clearTimeout(this.upTimer);
      if (this.state !== 'running') return;
      this.failed(exit.error ?? `stream process exited (${exit.signal ?? `exit ${exit.code}`})`);
    });
  }

  /** The process ended with an error: retry while the outage is young, else drop the URL. */
  private failed(error: string): void {
    const { ctx } = this.sink;
    this.proc = undefined;
    this.inputs = {};
    const now = Date.now();
    this.outageSince ??= now;
    if (!this.upOnce || now - this.outageSince >= this.outageLimitMs) {
      ctx.log.warn('stream failed', { url: this.info.url, error });
      this.end(StreamInfo_Status.FAILED, error);
      this.sink.changed();
      this.sink.gone(error);
      return;
    }
    ctx.log.warn('stream lost; retrying', { url: this.info.url, error, inMs: this.retryMs });
    this.state = 'retrying';
    this.info.retries++;
    this.info.lastRetryAt = nowNs();
    if (now - this.lastRetryUpdate >= RETRY_UPDATE_MS) {
      this.lastRetryUpdate = now;
      this.sink.changed();
    }
    this.retryTimer = setTimeout(() => {
      if (this.state === 'retrying') this.state = 'waiting';
    }, this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
  }

  /**
   * Once a second: a connection whose send queue has not moved for 30 s is stalled (its server
   * stopped reading: the queue filled and stays full; see tcp-progress.ts). Connecting, or SRT (UDP),
   * there is nothing to watch: rtmp2sink's timeout and srtsink's errors end those.
   */
  check(queues: Map<number, number>): void {
    if (this.state !== 'running' || !this.proc) return;
    const queue = sendQueueOf(socketInodes(this.proc.pid, (d) => readdirSync(d), (l) => readlinkSync(l)), queues);
    const now = Date.now();
    const moved = queue === undefined || queue === 0 || queue !== this.sendQueue;
    this.sendQueue = queue;
    if (moved) {
      this.progressAt = now;
      return;
    }
    if (now - this.progressAt < this.outageLimitMs) return;
    const proc = this.proc;
    this.proc = undefined;
    proc?.kill();
    this.outageSince = this.progressAt;
    this.failed(`no outbound progress for ${this.outageLimitMs / 1000}s`);
  }

  private end(status: StreamInfo_Status, error?: string): void {
    this.state = 'done';
    clearTimeout(this.retryTimer);
    clearTimeout(this.upTimer);
    const now = nowNs();
    this.info.status = status;
    if (error) this.info.error = error;
    this.info.endedAt = now;
    if (this.info.startedAt) this.info.duration = now - this.info.startedAt;
  }

  /** Ends the URL: its process gets EOS (the mux closes the stream properly), or is killed. */
  finish(status: StreamInfo_Status): Promise<void> {
    this.finishing ??= (async () => {
      const proc = this.proc;
      if (this.state !== 'done') this.end(status);
      this.proc = undefined;
      if (proc) await proc.stop({ timeoutMs: FINISH_TIMEOUT_MS });
    })();
    return this.finishing;
  }

  kill(): void {
    this.end(StreamInfo_Status.FAILED);
    this.proc?.kill();
  }

  commandLines(): string[] {
    return this.proc ? [this.proc.commandLine] : [];
  }
}

