// The one lifecycle every egress runs: source → media timeline → sinks, with
// STARTING → ACTIVE → ENDING → COMPLETE / FAILED / ABORTED / LIMIT_REACHED. The kinds differ only
// in their plan (which source subscribes to what, which outputs); nothing here branches on kind.
// This is the only place that writes the final EgressInfo.
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { EgressStatus, type EgressInfo } from '@livekit/protocol';
import type { Config } from '@egress/shared/config/types.ts';
import { nowNs, setAborted, setComplete, setEndReason, setFailed, setLimitReached, updateStatus } from '@egress/shared/egress-info.ts';
import { EgressError, errors, START_SIGNAL_NOT_RECEIVED, toEgressError } from '@egress/shared/errors.ts';
import type { OutputReport, ProcessReport } from '@egress/shared/ipc.ts';
import type { Logger } from '@egress/shared/logging.ts';
import type { OutputPlan, PipelineConfig } from '@egress/shared/plan/pipeline-config.ts';
import { JobMedia } from '../media/job-media.ts';
import type { CaptureInput } from '../pipeline/encode.ts';
import { Encoder } from '../sink/encoder.ts';
import { FileSink } from '../sink/file.ts';
import { ImagesSink } from '../sink/images.ts';
import { SegmentsSink } from '../sink/segments.ts';
import type { Sink, SinkContext } from '../sink/sink.ts';
import { StreamSink } from '../sink/stream.ts';
import { WebsocketSink } from '../sink/websocket.ts';
import { remuxedTrack, RtpSource } from '../source/rtp/rtp-source.ts';
import { RoomSource } from '../source/sdk/room-source.ts';
import type { CaptureSource, Source, TrackInfo } from '../source/source.ts';
import { recorderToken } from '../source/token.ts';
import { WebSource } from '../source/web/web-source.ts';
import { writeManifest, type Manifest } from '../upload/uploader.ts';
import { sdkNaming } from './naming.ts';
import { resolveSdkPlaceholders } from '@egress/shared/plan/outputs/sdk-placeholders.ts';

/** How often the recording's size is checked against session_limits.file_output_max_size. */
const SIZE_CHECK_MS = 1000;
/** The output size black filler starts at when the plan has no video encoding (track egress). */
const PASSTHROUGH_VIDEO = { width: 1280, height: 720, fps: 30 };
/**
 * How long the source gets to close before the recording is finished without it. rtc-node's leave
 * has been seen never to resolve: a track egress stopped in CI sat there until the supervisor's 45 s
 * stop deadline killed it, and a recording that was whole ended FAILED.
 */
export const SOURCE_CLOSE_TIMEOUT_MS = 5_000;

export interface ControllerHooks {
  status(info: EgressInfo): void;
  process(p: ProcessReport): void;
  output(o: OutputReport): void;
  /** The job began to end; `finalized` follows once its pipeline has finished (before uploads). */
  ending(): void;
  finalized(): void;
}

type Ending = { reason: string; error?: EgressError; limit?: boolean };

export class Controller {
  readonly info: EgressInfo;
  private source?: Source | CaptureSource;
  /** A web source or a track's RTP: gst captures it, no frames go through the JobMedia. */
  private capture?: { source: CaptureSource; input: CaptureInput };
  private awaitingStartSignal = false;
  private media?: JobMedia;
  private sinks: Sink[] = [];
  /** One per planned output, in the plan's order. */
  private outputSinks: Sink[] = [];
  private tracks: TrackInfo[] = [];
  private ending?: Ending;
  private endNow!: (e: Ending) => void;
  private readonly ended = new Promise<Ending>((r) => (this.endNow = r));
  private startedAtNs = 0n;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly scratch: string;
  private sourceClosed?: Promise<void>;

  constructor(
    private readonly plan: PipelineConfig,
    private readonly config: Config,
    private readonly log: Logger,
    private readonly hooks: ControllerHooks,
    info: EgressInfo,
  ) {
    this.info = info;
    this.scratch = path.join(config.tmpDir, plan.egressId);
  }

  /** Runs to the end; resolves with the final EgressInfo. */
  async run(): Promise<EgressInfo> {
    try {
      await mkdir(this.scratch, { recursive: true });
      if (await this.startSource()) await this.record();
    } catch (err) {
      this.log.error('egress failed', { error: (err as Error).message });
      this.sinks.forEach((s) => s.abort());
      setFailed(this.info, toEgressError(err));
    } finally {
      this.timers.forEach(clearTimeout);
      this.media?.end();
      await this.closeSource();
    }
    return this.info;
  }

  /** Once: after the recording, and again (a no-op then) on the way out of run(). */
  private closeSource(): Promise<void> {
    const source = this.source;
    if (!source) return Promise.resolve();
    this.sourceClosed ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      const closed = await Promise.race([
        source.close().then(() => true, () => true),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), SOURCE_CLOSE_TIMEOUT_MS))),
      ]);
      clearTimeout(timer);
      if (!closed) this.log.warn('the source did not close in time; the recording is finished without it', { timeoutMs: SOURCE_CLOSE_TIMEOUT_MS });
    })();
    return this.sourceClosed;
  }

  /** Ends the recording gracefully; returns the EgressInfo at that moment (ENDING, or ABORTED if nothing started). */
  stop(reason: string): EgressInfo {
    this.end({ reason });
    return this.info.clone();
  }

  private end(e: Ending): void {
    if (this.ending) return;
    this.ending = e;
    this.hooks.ending();
    this.timers.forEach(clearTimeout);
    setEndReason(this.info, e.reason);
    if (e.limit) {
      // No update now: LIMIT_REACHED is terminal to livekit-server, and the files are not final yet.
      if (this.info.status === EgressStatus.EGRESS_STARTING) setAborted(this.info, 'Session limit reached before start signal');
      else setLimitReached(this.info);
    } else if (this.info.status === EgressStatus.EGRESS_ACTIVE && !e.error) {
      updateStatus(this.info, EgressStatus.EGRESS_ENDING);
      this.hooks.status(this.info.clone());
    } else if (this.info.status === EgressStatus.EGRESS_STARTING && !e.error) {
      const noSignal = e.reason === 'Source closed' || this.awaitingStartSignal;
      setAborted(this.info, noSignal ? START_SIGNAL_NOT_RECEIVED : 'Stop called before pipeline could start');
    }
    this.endNow(e);
  }

  private recorderToken(): Promise<string> {
    return this.plan.token ? Promise.resolve(this.plan.token) : recorderToken(this.config.apiKey, this.config.apiSecret, this.plan.roomName, this.plan.egressId);
  }

  /** What `started` resolves with, or undefined if the egress ended first (the error it failed with is thrown). */
  private async unlessEnded<T>(started: Promise<T>): Promise<{ value: T } | undefined> {
    const outcome = await Promise.race([started.then((value) => ({ value })), this.ended.then(() => undefined)]);
    started.catch(() => undefined);
    if (!outcome && this.ending?.error) throw this.ending.error;
    return outcome;
  }

  /** Joins and takes the initial tracks, or loads the page; false if the egress ended before that. */
  private async startSource(): Promise<boolean> {
    const src = this.plan.source;
    const remuxed = this.config.remuxTracks ? remuxedTrack(this.plan) : undefined;
    if (remuxed) {
      const source = new RtpSource({
        wsUrl: this.plan.wsUrl || this.config.wsUrl,
        token: await this.recorderToken(),
        trackId: remuxed,
        subscribeTimeoutMs: this.config.subscribeTimeoutMs,
        lossPercent: this.config.testOverrides.rtpLossPercent,
        log: this.log,
      });
      if (!(await this.prepareCapture(source))) return false;
      this.tracks = source.tracks;
      return true;
    }
    if (src.type === 'web') {
      const source = new WebSource({
        plan: this.plan,
        source: src,
        config: this.config,
        log: this.log,
        scratch: this.scratch,
        report: (p) => this.hooks.process(p),
        room: async () => ({ wsUrl: this.plan.wsUrl || this.config.wsUrl, token: await this.recorderToken() }),
      });
      return this.prepareCapture(source);
    }
    const token = await this.recorderToken();
    const source = new RoomSource({
      wsUrl: this.plan.wsUrl || this.config.wsUrl,
      token,
      subscription: src.subscription,
      subscribeTimeoutMs: this.config.subscribeTimeoutMs,
      log: this.log,
    });
    this.source = source;
    const hasVideo = !!this.plan.video || (this.plan.passthrough && !this.plan.outputs.some((o) => o.type === 'websocket'));
    const hasAudio = !!this.plan.audio || this.plan.passthrough;
    const v = this.plan.video;
    this.media = new JobMedia({
      audio: hasAudio,
      ...(hasVideo ? { video: v ? { width: v.width, height: v.height, fps: v.framerate } : PASSTHROUGH_VIDEO } : {}),
      blackWithoutTrack: !this.plan.passthrough,
      onStart: () => this.markActive(),
    });
    void source.ended.then((e) => this.end(e));
    const outcome = await this.unlessEnded(source.start(this.media));
    if (!outcome) return false;
    this.tracks = outcome.value;
    return true;
  }

  private async prepareCapture(source: CaptureSource): Promise<boolean> {
    this.source = source;
    void source.ended.then((e) => this.end(e));
    const prepared = await this.unlessEnded(source.prepare());
    if (prepared) this.capture = { source, input: prepared.value };
    return !!prepared;
  }

  /**
   * A web source is recorded from its start signal on: gst starts then (nothing before it reaches
   * the outputs) and the egress is ACTIVE once gst plays. A page that never signals ends the egress
   * after web_start_timeout, where the Go egress would wait for ever.
   */
  private async startCapture(encoder: Encoder, capture: { source: CaptureSource; input: CaptureInput }): Promise<void> {
    this.awaitingStartSignal = true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((r) => (timer = setTimeout(r, this.config.webStartTimeoutMs)));
    const signalled = await Promise.race([capture.source.started.then(() => true), timeout.then(() => false), this.ended.then(() => false)]);
    clearTimeout(timer);
    // Ended while the flag is still up: ABORTED "Start signal not received" (a no-op if already ending).
    if (!signalled) this.end({ reason: START_SIGNAL_NOT_RECEIVED });
    this.awaitingStartSignal = false;
    if (this.ending) return;
    const start = process.hrtime.bigint();
    if (!(await encoder.capture(capture.input))) return;
    this.log.info('capture playing', { startMs: Number(process.hrtime.bigint() - start) / 1e6 });
    if (capture.source.capturing && !(await this.unlessEnded(capture.source.capturing()))) return;
    this.markActive();
  }

  private async record(): Promise<void> {
    const ctx: SinkContext = {
      plan: this.plan,
      config: this.config,
      log: this.log,
      scratch: this.scratch,
      process: (p) => this.hooks.process(p),
      output: (o) => this.hooks.output(o),
      startedAtNs: () => this.startedAtNs,
      backupUsed: () => void (this.info.backupStorageUsed = true),
      changed: () => this.sendUpdate(),
      endJob: (reason) => this.end({ reason }),
    };
    // The gst outputs share one encoder, which finishes first (the controller finishes sinks in order).
    const encoder = new Encoder(ctx);
    const outputs = this.plan.outputs.map((o, i) => this.sinkFor(o, ctx, encoder, i));
    this.outputSinks = outputs;
    this.sinks = outputs.some((s) => s instanceof FileSink || s instanceof SegmentsSink || s instanceof ImagesSink || s instanceof StreamSink) ? [encoder, ...outputs] : outputs;
    await Promise.all(this.sinks.map((s) => s.start()));
    for (const s of this.sinks) {
      this.media?.addConsumer(s);
      void s.failed.then((error) => this.end({ reason: 'Failure', error }));
    }
    this.media?.open();
    this.armLimits();
    if (this.capture) await this.startCapture(encoder, this.capture);

    const ending = await this.ended;
    const endedAtNs = nowNs();
    let endNs = this.media?.end();
    if (this.capture) {
      // gst's EOS goes through the display and the sink it captures: they go once it has finished
      // (its error, if any, comes again from its finish() below).
      await encoder.finish().catch(() => undefined);
      // As the reference: from PLAYING to when EOS was asked for, on the wall clock (§9.1).
      if (this.startedAtNs) endNs = endedAtNs - this.startedAtNs;
    }
    await this.closeSource();
    const timing = endNs === undefined ? undefined : { startedAtNs: this.startedAtNs, endNs };
    const errors: EgressError[] = ending.error ? [ending.error] : [];
    // Every output is finished even when one fails: what was recorded is still delivered.
    const pipeline = this.sinks.find((s) => s instanceof Encoder);
    if (!pipeline) this.hooks.finalized();
    for (const s of this.sinks) {
      try {
        await s.finish(this.info, timing);
      } catch (err) {
        errors.push(toEgressError(err));
      }
      if (s === pipeline) this.hooks.finalized();
    }
    if (timing) await this.writeManifest().catch((err: Error) => this.log.warn('manifest failed', { error: err.message }));
    if (errors.length) {
      // As the reference does: the streams of a failed egress end FAILED too.
      for (const s of this.outputSinks) if (s instanceof StreamSink) s.failAll(errors[0]!.message, this.info);
      setFailed(this.info, errors[0]);
    } else if (this.info.status === EgressStatus.EGRESS_ACTIVE || this.info.status === EgressStatus.EGRESS_ENDING) {
      setComplete(this.info);
    }
  }

  private sinkFor(o: OutputPlan, ctx: SinkContext, encoder: Encoder, index: number): Sink {
    const naming = () => sdkNaming(this.plan, this.tracks, new Date());
    // Web sources have no tracks: the second naming pass is the SDK's alone (§4.1).
    const web = this.plan.source.type === 'web';
    const named = <T extends OutputPlan>(p: T): T => (web ? p : resolveSdkPlaceholders(p, naming()));
    switch (o.type) {
      case 'file': {
        if (web) return new FileSink(ctx, o, o.filepath, encoder);
        const n = naming();
        const resolved = resolveSdkPlaceholders(o, n);
        return new FileSink(ctx, resolved, resolved.filepath, encoder, n.mimeType);
      }
      case 'segments':
        return new SegmentsSink(ctx, named(o), encoder, index);
      case 'images':
        return new ImagesSink(ctx, named(o), encoder, index);
      case 'stream':
        return new StreamSink(ctx, o, encoder, this.plan.outputs.length === 1);
      case 'websocket': {
        const video = this.plan.passthrough ? this.tracks.find((t) => t.kind === 'video') : undefined;
        if (video) throw errors.websocketIncompatible(video.mimeType);
        return new WebsocketSink(ctx, o);
      }
    }
  }

  /** An output's results changed mid-way (a stream failed, retried, was added): livekit-server hears of it. */
  private sendUpdate(): void {
    if (this.ending || this.info.status !== EgressStatus.EGRESS_ACTIVE) return;
    this.streamResults();
    this.info.updatedAt = nowNs();
    this.hooks.status(this.info.clone());
  }

  private streamResults(): void {
    for (const s of this.outputSinks) if (s instanceof StreamSink) s.results(this.info);
  }

  /** UpdateStream: adds and removes stream URLs; resolves with the EgressInfo after it. */
  async updateStream(add: string[], remove: string[]): Promise<EgressInfo> {
    const stream = this.outputSinks.find((s): s is StreamSink => s instanceof StreamSink);
    if (!stream) throw errors.notStreaming();
    if (this.ending) throw errors.cannotUpdate(EgressStatus[this.info.status].replace('EGRESS_', ''));
    try {
      await stream.update(add, remove);
    } finally {
      this.streamResults();
    }
    return this.info.clone();
  }

  private markActive(): void {
    this.startedAtNs = nowNs();
    if (this.info.status !== EgressStatus.EGRESS_STARTING || this.ending) return;
    updateStatus(this.info, EgressStatus.EGRESS_ACTIVE);
    this.streamResults();
    this.hooks.status(this.info.clone());
    this.log.info('egress active');
  }

  /** session_limits: the duration limit runs from the start; the size limit is polled. */
  private armLimits(): void {
    const limit = () => this.end({ reason: 'Session limit reached', limit: true });
    if (this.plan.maxDurationMs > 0) this.timers.push(setTimeout(limit, this.plan.maxDurationMs));
    const maxSize = this.config.sessionLimits.fileOutputMaxSize;
    const files = this.sinks.filter((s): s is FileSink => s instanceof FileSink);
    if (maxSize > 0 && files.length) {
      const check = () =>
        void Promise.all(files.map((f) => stat(f.localPath).then((s) => s.size, () => 0))).then((sizes) =>
          sizes.some((s) => s >= maxSize) ? limit() : this.ending || this.timers.push(setTimeout(check, SIZE_CHECK_MS)),
        );
      this.timers.push(setTimeout(check, SIZE_CHECK_MS));
    }
  }

  /**
   * `<egress_id>.json`, uploaded by every file, segments and images output that keeps its manifest (all
   * of them when the backup storage was used): next to the file, or in the output's storage directory.
   * manifest_location is the first that was stored (§4.6).
   */
  private async writeManifest(): Promise<void> {
    if (!this.plan.manifest) return;
    const outputs = this.outputSinks;
    const one = this.tracks.length === 1 ? this.tracks[0] : undefined;
    const audio = this.tracks.find((t) => t.kind === 'audio');
    const video = this.tracks.find((t) => t.kind === 'video');
    const playlists = outputs.flatMap((s) => (s instanceof SegmentsSink ? (s.manifestPlaylist() ?? []) : []));
    const images = outputs.flatMap((s) => (s instanceof ImagesSink ? s.manifestImages() : []));
    const manifest: Manifest = {
      egress_id: this.plan.egressId,
      room_id: this.plan.roomId,
      room_name: this.plan.roomName,
      started_at: this.startedAtNs,
      ended_at: nowNs(),
      ...(this.plan.source.type === 'sdk' && this.plan.source.subscription.kind === 'participant' ? { publisher_identity: this.plan.source.subscription.identity } : {}),
      ...(this.plan.passthrough && one ? { track_id: one.trackId, track_kind: one.kind, track_source: one.source, publisher_identity: one.publisherIdentity } : {}),
      ...(this.plan.kind === 'track_composite' ? { audio_track_id: audio?.trackId, video_track_id: video?.trackId } : {}),
      files: this.info.fileResults.map((f) => ({ filename: f.filename, location: f.location })),
      ...(playlists.length ? { playlists } : {}),
      ...(images.length ? { images } : {}),
    };
    const local = path.join(this.scratch, `${this.plan.egressId}.json`);
    for (const [i, sink] of outputs.entries()) {
      const o = this.plan.outputs[i]!;
      // As Go: a disabled manifest is still written when the backup storage took a file, so a
      // recording that landed somewhere unexpected can be found.
      const keeps = 'disableManifest' in o && (!o.disableManifest || this.info.backupStorageUsed);
      if (!keeps || !(sink instanceof FileSink || sink instanceof SegmentsSink || sink instanceof ImagesSink) || !sink.uploader) continue;
      const dir = sink instanceof FileSink ? path.posix.dirname(sink.filename) : sink.storageDir;
      const stored = path.posix.join(dir, `${this.plan.egressId}.json`);
      const location = await writeManifest(sink.uploader, manifest, local, stored, { logger: this.log });
      if (location && !this.info.manifestLocation) this.info.manifestLocation = location;
    }
  }

  /** The newest pipeline graph gst-launch wrote, in Graphviz dot. */
  async pipelineDot(): Promise<string> {
    for (const s of this.sinks) {
      const dir = s.debug().dotDir;
      if (!dir) continue;
      const files = (await readdir(dir).catch(() => [])).filter((f) => f.endsWith('.dot')).sort();
      const newest = files.at(-1);
      if (newest) return readFile(path.join(dir, newest), 'utf8');
    }
    throw new EgressError('not_found', 'pipeline graph not available yet');
  }

  /** What debug.enable_profiling keeps when the pipeline failed. */
  async debugArtifacts(): Promise<{ dot?: string; commandLines: string[] }> {
    return { dot: await this.pipelineDot().catch(() => undefined), commandLines: this.sinks.flatMap((s) => s.debug().commandLines) };
  }
}
