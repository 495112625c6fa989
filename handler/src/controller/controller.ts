// The one lifecycle every egress runs: source → media timeline → sinks, with
// STARTING → ACTIVE → ENDING → COMPLETE / FAILED / ABORTED / LIMIT_REACHED. The kinds differ only
// in their plan (which source subscribes to what, which outputs); nothing here branches on kind.
// This is the only place that writes the final EgressInfo.
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { EgressStatus, type EgressInfo } from '@livekit/protocol';
import type { Config } from '@egress/shared/config/types.ts';
import { nowNs, setAborted, setComplete, setEndReason, setFailed, setLimitReached, updateStatus } from '@egress/shared/egress-info.ts';
import { EgressError, errors, toEgressError } from '@egress/shared/errors.ts';
import type { OutputReport, ProcessReport } from '@egress/shared/ipc.ts';
import type { Logger } from '@egress/shared/logging.ts';
import type { OutputPlan, PipelineConfig } from '@egress/shared/plan/pipeline-config.ts';
import { JobMedia } from '../media/job-media.ts';
import { Encoder } from '../sink/encoder.ts';
import { FileSink } from '../sink/file.ts';
import { ImagesSink } from '../sink/images.ts';
import { SegmentsSink } from '../sink/segments.ts';
import type { Sink, SinkContext } from '../sink/sink.ts';
import { StreamSink } from '../sink/stream.ts';
import { WebsocketSink } from '../sink/websocket.ts';
import { RoomSource } from '../source/sdk/room-source.ts';
import type { Source, TrackInfo } from '../source/source.ts';
import { recorderToken } from '../source/token.ts';
import { writeManifest, type Manifest } from '../upload/uploader.ts';
import { sdkNaming } from './naming.ts';
import { resolveSdkPlaceholders } from '@egress/shared/plan/outputs/sdk-placeholders.ts';

/** How often the recording's size is checked against session_limits.file_output_max_size. */
const SIZE_CHECK_MS = 1000;
/** The output size black filler starts at when the plan has no video encoding (track egress). */
const PASSTHROUGH_VIDEO = { width: 1280, height: 720, fps: 30 };

export interface ControllerHooks {
  status(info: EgressInfo): void;
  process(p: ProcessReport): void;
  output(o: OutputReport): void;
}

type Ending = { reason: string; error?: EgressError; limit?: boolean };

export class Controller {
  readonly info: EgressInfo;
  private source?: Source;
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
      await this.source?.close().catch(() => undefined);
    }
    return this.info;
  }

  /** Ends the recording gracefully; returns the EgressInfo at that moment (ENDING, or ABORTED if nothing started). */
  stop(reason: string): EgressInfo {
    this.end({ reason });
    return this.info.clone();
  }

  private end(e: Ending): void {
    if (this.ending) return;
    this.ending = e;
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
      setAborted(this.info, e.reason === 'Source closed' ? 'Start signal not received' : 'Stop called before pipeline could start');
    }
    this.endNow(e);
  }

  /** Joins and takes the initial tracks; false if the egress ended before that. */
  private async startSource(): Promise<boolean> {
    const src = this.plan.source;
    if (src.type !== 'sdk') throw new EgressError('unimplemented', 'web sources are not supported by this egress node yet');
    const token = this.plan.token || (await recorderToken(this.config.apiKey, this.config.apiSecret, this.plan.roomName, this.plan.egressId));
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
    const started = source.start(this.media);
    const outcome = await Promise.race([started.then((t) => ({ tracks: t })), this.ended.then(() => undefined)]);
    started.catch(() => undefined);
    if (!outcome) {
      if (this.ending?.error) throw this.ending.error;
      return false;
    }
    this.tracks = outcome.tracks;
    return true;
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
      this.media!.addConsumer(s);
      void s.failed.then((error) => this.end({ reason: 'Failure', error }));
    }
    this.media!.open();
    this.armLimits();

    const ending = await this.ended;
    const endNs = this.media!.end();
    await this.source!.close().catch(() => undefined);
    const timing = endNs === undefined ? undefined : { startedAtNs: this.startedAtNs, endNs };
    const errors: EgressError[] = ending.error ? [ending.error] : [];
    // Every output is finished even when one fails: what was recorded is still delivered.
    for (const s of this.sinks) {
      try {
        await s.finish(this.info, timing);
      } catch (err) {
        errors.push(toEgressError(err));
      }
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
    switch (o.type) {
      case 'file': {
        const n = naming();
        const resolved = resolveSdkPlaceholders(o, n);
        return new FileSink(ctx, resolved, resolved.filepath, encoder, n.mimeType);
      }
      case 'segments':
        return new SegmentsSink(ctx, resolveSdkPlaceholders(o, naming()), encoder, index);
      case 'images':
        return new ImagesSink(ctx, resolveSdkPlaceholders(o, naming()), encoder, index);
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
   * of them when backup storage is configured): next to the file, or in the output's storage directory.
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
      const keeps = 'disableManifest' in o && (!o.disableManifest || !!this.config.backup);
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
