// A file output: one gst-launch process encoding the job's audio and/or video (GDP on its fds)
// into the planned container in the scratch directory; at the end, the file is finalized and
// uploaded (local storage is a move), and its FileInfo added to the EgressInfo.
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { FileInfo, type EgressInfo } from '@livekit/protocol';
import { EgressError } from '@egress/shared/errors.ts';
import type { FileOutputPlan } from '@egress/shared/plan/pipeline-config.ts';
import { GdpWriter } from '../gst/gdp.ts';
import { startGst, type GstProcess } from '../gst/runner.ts';
import type { MixedFrame } from '../media/mixer.ts';
import type { TimedFrame } from '../media/video-timeline.ts';
import { MIX_CHANNELS, MIX_RATE } from '../media/mixer.ts';
import { AUDIO_CAPS, fileArgs, fileGraph, inputCount, VIDEO_CAPS, type FileGraph } from '../pipeline/file.ts';
import { contentTypeFor, createUploader, UploadFailedError, type Uploader } from '../upload/uploader.ts';
import type { Sink, SinkContext } from './sink.ts';

/** Video frames queued towards gst beyond this are dropped rather than buffered without bound. */
const MAX_VIDEO_BACKLOG_BYTES = 32 * 1024 * 1024;
/** After EOS, how long gst may take to finalize the file before it is interrupted. */
const FINALIZE_TIMEOUT_MS = 30_000;

export class FileSink implements Sink {
  readonly failed: Promise<EgressError>;
  private fail!: (e: EgressError) => void;
  private gst?: GstProcess;
  private audioWriter?: GdpWriter;
  private videoWriter?: GdpWriter;
  /** The video fd; its writer starts at the first frame, whose size its caps carry. */
  private videoInput?: Writable;
  private videoSize?: { width: number; height: number };
  private graph?: FileGraph;
  private readonly dotDir: string;
  private finishing = false;
  uploader?: Uploader;
  readonly localPath: string;

  /** `filename`: the storage path, both naming passes done; `mimeType`: the track's, for track egress. */
  constructor(
    private readonly ctx: SinkContext,
    private readonly output: FileOutputPlan,
    readonly filename: string,
    private readonly mimeType?: string,
  ) {
    this.failed = new Promise((r) => (this.fail = r));
    this.localPath = path.join(ctx.scratch, path.basename(filename));
    this.dotDir = path.join(ctx.scratch, 'dot');
  }

  async start(): Promise<void> {
    await mkdir(this.dotDir, { recursive: true });
    this.ctx.output({ localPath: this.localPath, filename: this.filename });
  }

  /** gst starts at the first frame: a track egress keeps its first frame's size as the output size. */
  private ensureGst(firstFrame?: { width: number; height: number }): GstProcess | undefined {
    if (this.gst || this.finishing) return this.gst;
    this.graph = fileGraph(this.ctx.plan, this.output, this.localPath, { ...(this.mimeType ? { mimeType: this.mimeType } : {}), ...(firstFrame ? { firstFrame } : {}) });
    // gst-launch writes its pipeline graph on every state change; inspect reads the newest.
    const gst = startGst(fileArgs(this.graph), { extraFds: inputCount(this.graph), logger: this.ctx.log, env: { GST_DEBUG_DUMP_DOT_DIR: this.dotDir } });
    this.gst = gst;
    this.ctx.process({ pid: gst.pid, pgid: gst.pid, name: 'gst-launch-1.0', commandLine: gst.commandLine });
    void gst.exited.then((exit) => {
      if (!this.finishing) this.fail(new EgressError('internal', exit.error ?? `gst-launch-1.0 exited (${exit.signal ?? `exit ${exit.code}`})`));
    });
    let fd = 0;
    if (this.graph.audio) {
      this.audioWriter = new GdpWriter(gst.inputs[fd++]!, { streamId: 'audio', caps: AUDIO_CAPS(MIX_RATE, MIX_CHANNELS), maxBacklogBytes: Infinity });
    }
    if (this.graph.video) this.videoInput = gst.inputs[fd]!;
    return gst;
  }

  audio(f: MixedFrame): void {
    if (!this.ensureGst() || !this.audioWriter) return;
    this.audioWriter.write(new Uint8Array(f.samples.buffer, f.samples.byteOffset, f.samples.byteLength), f.ptsNs, f.durationNs);
  }

  video(f: TimedFrame): void {
    if (!this.ensureGst({ width: f.width, height: f.height }) || !this.videoInput) return;
    if (!this.videoWriter) {
      this.videoWriter = new GdpWriter(this.videoInput, { streamId: 'video', caps: VIDEO_CAPS(f.width, f.height), maxBacklogBytes: MAX_VIDEO_BACKLOG_BYTES });
    } else if (f.width !== this.videoSize!.width || f.height !== this.videoSize!.height) {
      // A new size (simulcast layer, adaptive resolution): new caps in-stream; gst scales to the output size.
      this.ctx.log.info('video size changed', { from: this.videoSize, to: { width: f.width, height: f.height } });
      this.videoWriter.setCaps(VIDEO_CAPS(f.width, f.height));
    }
    this.videoSize = { width: f.width, height: f.height };
    this.videoWriter.write(f.data, f.ptsNs, null);
  }

  async finish(info: EgressInfo, timing: { startedAtNs: bigint; endNs: bigint } | undefined): Promise<void> {
    this.finishing = true;
    const gst = this.gst;
    if (!gst || !timing) return;
    await Promise.all([this.audioWriter?.end(), this.videoWriter?.end() ?? this.videoInput?.end()]);
    const exit = await Promise.race([gst.exited, new Promise((r) => setTimeout(r, FINALIZE_TIMEOUT_MS)).then(() => gst.stop())]);
    if (exit.code !== 0) throw new EgressError('internal', exit.error ?? `gst-launch-1.0 failed (${exit.signal ?? `exit ${exit.code}`})`);

    const file = new FileInfo({ filename: this.filename, startedAt: timing.startedAtNs, endedAt: timing.startedAtNs + timing.endNs, duration: timing.endNs });
    info.fileResults.push(file);
    if (info.result.case === undefined) info.result = { case: 'file', value: file };
    this.uploader = await createUploader(this.output.storage, this.ctx.config.backup, {
      logger: this.ctx.log,
      onBackupUsed: () => this.ctx.backupUsed(),
    });
    try {
      const uploaded = await this.uploader.enqueue(this.localPath, this.filename, contentTypeFor(this.filename));
      file.location = uploaded.location;
      file.size = BigInt(uploaded.size);
    } catch (err) {
      if (err instanceof UploadFailedError) {
        file.location = err.location;
        file.size = BigInt((await stat(err.location)).size);
      }
      throw err;
    }
  }

  abort(): void {
    this.finishing = true;
    this.gst?.kill();
  }

  debug(): { commandLines: string[]; dotDir?: string } {
    return { commandLines: this.gst ? [this.gst.commandLine] : [], dotDir: this.dotDir };
  }
}
