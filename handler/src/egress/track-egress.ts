// A track egress: subscribe to one track, encode its decoded frames into the container its codec
// implies, and report STARTING → ACTIVE → ENDING → COMPLETE (or FAILED/ABORTED) with the file result.
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { AudioFrame, type VideoFrameEvent } from '@livekit/rtc-node';
import { EgressInfo, EgressStatus, FileInfo } from '@livekit/protocol';
import type { Config } from '@egress/shared/config/types.ts';
import { nowNs, setAborted, setComplete, setEndReason, setFailed, setLimitReached, updateStatus } from '@egress/shared/egress-info.ts';
import { EgressError } from '@egress/shared/errors.ts';
import type { OutputReport, ProcessReport } from '@egress/shared/ipc.ts';
import type { Logger } from '@egress/shared/logging.ts';
import { fileOutputPath } from '@egress/shared/plan/naming.ts';
import type { TrackPlan } from '@egress/shared/plan/request.ts';
import type { StartEgressRequest } from '@egress/shared/proto/rpc.ts';
import { GdpWriter } from '../gst/gdp.ts';
import { startGst, type GstProcess } from '../gst/runner.ts';
import { AudioClock, VideoClock } from '../media/clock.ts';
import { AUDIO_CAPS, VIDEO_CAPS, containerFor, extensionFor, trackFileArgs } from '../pipeline/track-file.ts';
import { AUDIO_CHANNELS, AUDIO_RATE, SdkSource, type SubscribedTrack } from '../source/sdk-source.ts';
import { recorderToken } from '../source/token.ts';
import { resolveStorage } from '../upload/storage.ts';
import { contentTypeFor, createUploader, UploadFailedError, writeManifest } from '../upload/uploader.ts';

/** Video frames queued towards gst beyond this are dropped rather than buffered without bound. */
const MAX_BACKLOG_BYTES = 32 * 1024 * 1024;
/** After EOS, how long gst may take to finalize the file before it is interrupted. */
const FINALIZE_TIMEOUT_MS = 30_000;
/** How often the recording's size is checked against session_limits.file_output_max_size. */
const SIZE_CHECK_MS = 1000;

export interface Hooks {
  status(info: EgressInfo): void;
  process(p: ProcessReport): void;
  output(o: OutputReport): void;
}

export class TrackEgress {
  readonly info: EgressInfo;
  private readonly source: SdkSource;
  private gst?: GstProcess;
  private cancelRead?: () => void;
  private stopping?: string;
  private stopRequested!: () => void;
  private readonly stopSignal = new Promise<void>((r) => (this.stopRequested = r));
  private firstWallNs = 0n;
  private endPtsNs = 0n;
  private dotDir?: string;
  private readonly limitTimers: NodeJS.Timeout[] = [];

  constructor(
    private readonly req: StartEgressRequest,
    private readonly plan: TrackPlan,
    private readonly config: Config,
    private readonly log: Logger,
    private readonly hooks: Hooks,
    info: EgressInfo,
  ) {
    this.info = info;
    this.source = new SdkSource(log);
    this.source.onEnded((reason) => this.stop(reason));
  }

  /** Runs to the end; resolves with the final EgressInfo. */
  async run(): Promise<EgressInfo> {
    try {
      const track = await this.subscribe();
      if (track && !this.stopping) await this.record(track);
      this.finish();
    } catch (err) {
      this.log.error('egress failed', { error: (err as Error).message });
      setFailed(this.info, err);
    } finally {
      await this.source.close().catch(() => undefined);
    }
    return this.info;
  }

  /** Ends the recording gracefully; returns the EgressInfo at that moment (ENDING, or ABORTED if nothing started). */
  stop(reason: string): EgressInfo {
    this.limitTimers.forEach(clearTimeout);
    if (!this.stopping) {
      this.stopping = reason;
      setEndReason(this.info, reason);
      if (this.info.status === EgressStatus.EGRESS_ACTIVE) {
        updateStatus(this.info, EgressStatus.EGRESS_ENDING);
        this.hooks.status(this.info.clone());
      } else if (this.info.status === EgressStatus.EGRESS_STARTING) {
        setAborted(this.info, 'Stop called before pipeline could start');
      }
      this.stopRequested();
      this.cancelRead?.();
    }
    return this.info.clone();
  }

  private async subscribe(): Promise<SubscribedTrack | undefined> {
    const token = this.req.token || (await recorderToken(this.config.apiKey, this.config.apiSecret, this.plan.roomName, this.req.egressId));
    await this.source.connect(this.req.wsUrl || this.config.wsUrl, token);
    return Promise.race([this.source.subscribeTrack(this.plan.trackId, this.config.subscribeTimeoutMs), this.stopSignal.then(() => undefined)]);
  }

  private async record(track: SubscribedTrack): Promise<void> {
    const container = containerFor(track.mimeType);
    const filename = fileOutputPath(this.plan.filepath, extensionFor(container), track.trackId, {
      roomName: this.plan.roomName,
      roomId: this.req.roomId,
      publisherIdentity: track.publisherIdentity,
      trackId: track.trackId,
      trackType: track.kind,
      trackSource: track.source,
      retryCount: this.req.retryCount,
      now: new Date(),
    });
    const scratch = path.join(this.config.tmpDir, this.req.egressId);
    await mkdir(scratch, { recursive: true });
    const local = path.join(scratch, path.basename(filename));
    const file = new FileInfo({ filename });
    this.info.fileResults = [file];
    this.info.result = { case: 'file', value: file };

    this.hooks.output({ localPath: local, filename });

    // gst-launch writes its pipeline graph here on every state change; inspect reads the newest.
    this.dotDir = path.join(scratch, 'dot');
    await mkdir(this.dotDir, { recursive: true });
    const gst = startGst(trackFileArgs({ container, location: local }), { extraFds: 1, logger: this.log, env: { GST_DEBUG_DUMP_DOT_DIR: this.dotDir } });
    this.gst = gst;
    this.hooks.process({ pid: gst.pid, pgid: gst.pid, name: 'gst-launch-1.0', commandLine: gst.commandLine });
    const input = gst.inputs[0]!;
    // gst exiting on its own ends the recording: the failure is read from its exit below.
    void gst.exited.then(() => this.cancelRead?.());
    this.armLimits(local);

    const writer = await (track.kind === 'audio' ? this.pumpAudio(track, input) : this.pumpVideo(track, input));
    await writer?.end();
    if (!writer) input.end();

    const exit = await Promise.race([gst.exited, new Promise((r) => setTimeout(r, FINALIZE_TIMEOUT_MS)).then(() => gst.stop())]);
    if (exit.code !== 0) throw new EgressError('internal', exit.error ?? `gst-launch-1.0 failed (${exit.signal ?? `exit ${exit.code}`})`);
    if (!writer) return;

    file.startedAt = this.firstWallNs;
    file.endedAt = this.firstWallNs + this.endPtsNs;
    file.duration = file.endedAt - file.startedAt;
    await this.deliver(local, file, scratch, track);
  }

  /**
   * Uploads the finished file (local storage is a move) and its manifest. When neither the storage nor
   * the backup takes it, the file stays where it is, its result says so, and the egress fails.
   */
  private async deliver(local: string, file: FileInfo, scratch: string, track: SubscribedTrack): Promise<void> {
    const uploader = await createUploader(resolveStorage(this.plan.upload, this.config), this.config.backup, {
      logger: this.log,
      onBackupUsed: () => void (this.info.backupStorageUsed = true),
    });
    try {
      const uploaded = await uploader.enqueue(local, file.filename, contentTypeFor(file.filename));
      file.location = uploaded.location;
      file.size = BigInt(uploaded.size);
      if (!this.plan.disableManifest || this.config.backup) {
        const manifest = {
          egress_id: this.req.egressId,
          room_id: this.req.roomId,
          room_name: this.plan.roomName,
          started_at: file.startedAt,
          ended_at: nowNs(),
          track_id: track.trackId,
          track_kind: track.kind,
          track_source: track.source,
          publisher_identity: track.publisherIdentity,
          files: [{ filename: file.filename, location: file.location }],
        };
        const stored = path.posix.join(path.posix.dirname(file.filename), `${this.req.egressId}.json`);
        this.info.manifestLocation = (await writeManifest(uploader, manifest, path.join(scratch, `${this.req.egressId}.json`), stored, { logger: this.log })) ?? '';
      }
    } catch (err) {
      if (err instanceof UploadFailedError) {
        file.location = err.location;
        file.size = BigInt((await stat(err.location)).size);
      }
      throw err;
    } finally {
      await uploader.close();
    }
  }

  private async pumpAudio(track: SubscribedTrack, input: Writable): Promise<GdpWriter | undefined> {
    const reader = this.source.audioFrames(track.track).getReader();
    this.cancelRead = () => void reader.cancel();
    let writer: GdpWriter | undefined;
    let clock: AudioClock | undefined;
    for (;;) {
      const { done, value } = await reader.read();
      if (done || this.stopping) break;
      const frame: AudioFrame = value;
      if (!writer) {
        writer = new GdpWriter(input, { streamId: `${track.trackId}-audio`, caps: AUDIO_CAPS(AUDIO_RATE, AUDIO_CHANNELS), maxBacklogBytes: MAX_BACKLOG_BYTES });
        clock = new AudioClock(process.hrtime.bigint());
        this.markActive();
      }
      const { pts, duration } = clock!.ptsFor(frame.samplesPerChannel, frame.sampleRate);
      writer.write(new Uint8Array(frame.data.buffer, frame.data.byteOffset, frame.data.byteLength), pts, duration);
      this.endPtsNs = pts + duration;
    }
    return writer;
  }

  private async pumpVideo(track: SubscribedTrack, input: Writable): Promise<GdpWriter | undefined> {
    const reader = this.source.videoFrames(track.track).getReader();
    this.cancelRead = () => void reader.cancel();
    let writer: GdpWriter | undefined;
    let clock: VideoClock | undefined;
    let lastPts = 0n;
    for (;;) {
      const { done, value } = await reader.read();
      if (done || this.stopping) break;
      const { frame, timestampUs } = value as VideoFrameEvent;
      if (!writer) {
        writer = new GdpWriter(input, { streamId: `${track.trackId}-video`, caps: VIDEO_CAPS(frame.width, frame.height), maxBacklogBytes: MAX_BACKLOG_BYTES });
        clock = new VideoClock(process.hrtime.bigint());
        this.markActive();
      }
      const pts = clock!.ptsFor(timestampUs);
      writer.write(frame.data, pts, null);
      // The last frame is shown for as long as the one before it.
      this.endPtsNs = pts + (lastPts ? pts - lastPts : 0n);
      lastPts = pts;
    }
    return writer;
  }

  /** session_limits: the duration limit runs from the pipeline's start; the size limit is polled. */
  private armLimits(local: string): void {
    const { fileOutputMaxDurationMs, fileOutputMaxSize } = this.config.sessionLimits;
    if (fileOutputMaxDurationMs > 0) this.limitTimers.push(setTimeout(() => this.limitReached(), fileOutputMaxDurationMs));
    if (fileOutputMaxSize > 0) {
      const check = () =>
        void stat(local).then(
          (s) => (s.size >= fileOutputMaxSize ? this.limitReached() : this.limitTimers.push(setTimeout(check, SIZE_CHECK_MS))),
          () => this.limitTimers.push(setTimeout(check, SIZE_CHECK_MS)),
        );
      this.limitTimers.push(setTimeout(check, SIZE_CHECK_MS));
    }
  }

  private limitReached(): void {
    if (this.stopping) return;
    if (this.info.status === EgressStatus.EGRESS_STARTING) {
      this.stop('Session limit reached');
      setAborted(this.info, 'Session limit reached before start signal');
      return;
    }
    // No update now: LIMIT_REACHED is terminal to livekit-server, and the file is not final yet.
    this.log.info('session limit reached');
    setLimitReached(this.info);
    this.stop('Session limit reached');
  }

  /** The newest pipeline graph gst-launch wrote, in Graphviz dot. */
  async pipelineDot(): Promise<string> {
    const files = this.dotDir ? (await readdir(this.dotDir)).filter((f) => f.endsWith('.dot')).sort() : [];
    const newest = files.at(-1);
    if (!newest) throw new EgressError('not_found', 'pipeline graph not available yet');
    return readFile(path.join(this.dotDir!, newest), 'utf8');
  }

  private markActive(): void {
    this.firstWallNs = nowNs();
    if (this.info.status !== EgressStatus.EGRESS_STARTING) return;
    updateStatus(this.info, EgressStatus.EGRESS_ACTIVE);
    this.hooks.status(this.info.clone());
    this.log.info('egress active');
  }

  private finish(): void {
    if (this.info.status === EgressStatus.EGRESS_STARTING) setAborted(this.info, 'Stop called before pipeline could start');
    if (this.info.status === EgressStatus.EGRESS_ACTIVE || this.info.status === EgressStatus.EGRESS_ENDING) setComplete(this.info);
  }

  /** What debug.enable_profiling keeps when the pipeline failed. */
  async debugArtifacts(): Promise<{ dot?: string; commandLines: string[] }> {
    return { dot: await this.pipelineDot().catch(() => undefined), commandLines: this.gst ? [this.gst.commandLine] : [] };
  }
}
