// The job's one gst-launch process: it takes the job's raw audio and video (GDP on its fds, or a web
// source's display and sound, which it captures itself), encodes each once and feeds every gst
// output (file, segments, images) from tees (pipeline/encode.ts). The outputs are its branches: each
// names its part of the graph and gets the bus messages of its elements. gst starts at the first
// media frame, whose size passthrough outputs keep, or when a web source's page says to start.
//
// To the controller the encoder is a sink that comes first: finishing it ends the inputs and waits
// for gst to finalize everything, after which each branch finishes (uploads, playlists) on its own.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { EgressError, errors } from '@egress/shared/errors.ts';
import { GdpWriter } from '../gst/gdp.ts';
import { startGst, type GstElementMessage, type GstProcess } from '../gst/runner.ts';
import type { MixedFrame } from '../media/mixer.ts';
import { MIX_CHANNELS, MIX_RATE } from '../media/mixer.ts';
import type { TimedFrame } from '../media/video-timeline.ts';
import { AUDIO_CAPS, encodeArgs, encodeGraph, inputCount, outputFds, VIDEO_CAPS, type Branch, type CaptureInput, type EncodeGraph } from '../pipeline/encode.ts';
import type { Sink, SinkContext } from './sink.ts';

/** Video frames queued towards gst beyond this are dropped rather than buffered without bound. */
const MAX_VIDEO_BACKLOG_BYTES = 32 * 1024 * 1024;
/** After EOS, how long gst may take to finalize its outputs before it is interrupted. */
const FINALIZE_TIMEOUT_MS = 30_000;
/** After the deadline, how long a last SIGINT gets before gst is killed: it had its chance. */
const FROZEN_STOP_MS = 2_000;

/** One output that gst writes: its part of the graph, and the bus messages of its elements. */
export interface GstBranch {
  /** `name`: unique in the graph; `firstFrame`: the first video frame's size, if the job has video. */
  branch(name: string, firstFrame?: { width: number; height: number }): Branch;
  message?(m: GstElementMessage): void;
  /** The encoded media gst writes out for this branch (stream outputs), once gst has started. */
  attach?(outputs: { audio?: Readable; video?: Readable }): void;
  /**
   * After the inputs ended: true once this branch has written everything (its last segment closed).
   * splitmuxsink in gst 1.22 sometimes never posts EOS after closing its last fragment (measured: 4 of
   * 30 short runs, with any muxer), which holds the whole pipeline; this is how the encoder tells
   * that hang from a pipeline still at work.
   */
  drained?(): boolean;
}

/** How long gst may sit after every branch that reports it has drained before it is stopped. */
const DRAINED_GRACE_MS = 2_000;
const DRAIN_POLL_MS = 250;

export class Encoder implements Sink {
  readonly failed: Promise<EgressError>;
  private fail!: (e: EgressError) => void;
  private readonly branches: GstBranch[] = [];
  private readonly byName = new Map<string, GstBranch>();
  private gst?: GstProcess;
  private graph?: EncodeGraph;
  private audioWriter?: GdpWriter;
  private videoWriter?: GdpWriter;
  /** The video fd; its writer starts at the first frame, whose size its caps carry. */
  private videoInput?: Writable;
  private videoSize?: { width: number; height: number };
  private readonly dotDir: string;
  private finishing?: Promise<void>;
  private stopped = false;

  constructor(private readonly ctx: SinkContext) {
    this.failed = new Promise((r) => (this.fail = r));
    this.dotDir = path.join(ctx.scratch, 'dot');
  }

  add(b: GstBranch): void {
    this.branches.push(b);
  }

  /** Whether gst ran at all (nothing was recorded if not). */
  get started(): boolean {
    return this.gst !== undefined;
  }

  async start(): Promise<void> {
    await mkdir(this.dotDir, { recursive: true });
  }

  /**
   * Starts gst on a web source's display and sound; resolves true once the pipeline is PLAYING (the
   * recording's time 0), false if gst exited first (`failed` says why) or the job already ended.
   */
  async capture(input: CaptureInput): Promise<boolean> {
    const gst = this.ensureGst(undefined, input);
    if (!gst) return false;
    return Promise.race([gst.playing.then(() => true), gst.exited.then(() => false)]);
  }

  private ensureGst(firstFrame?: { width: number; height: number }, capture?: CaptureInput): GstProcess | undefined {
    if (this.gst || this.stopped) return this.gst;
    const branches = this.branches.map((b, i) => {
      const branch = b.branch(`out${i}`, firstFrame);
      this.byName.set(branch.name, b);
      return branch;
    });
    this.graph = encodeGraph(this.ctx.plan, branches, firstFrame, capture);
    // gst-launch writes its pipeline graph on every state change; inspect reads the newest.
    const outputs = outputFds(this.graph);
    const gst = startGst(encodeArgs(this.graph), {
      extraFds: inputCount(this.graph),
      outputFds: outputs.length,
      logger: this.ctx.log,
      env: { GST_DEBUG_DUMP_DOT_DIR: this.dotDir },
      onMessage: (m) => this.byName.get(m.element)?.message?.(m),
    });
    this.gst = gst;
    this.ctx.process({ pid: gst.pid, pgid: gst.pid, name: 'gst-launch-1.0', commandLine: gst.commandLine });
    void gst.exited.then((exit) => {
      if (!this.stopped) this.fail(new EgressError('internal', exit.error ?? `gst-launch-1.0 exited (${exit.signal ?? `exit ${exit.code}`})`));
    });
    let fd = 0;
    if (this.graph.audio && !capture) {
      this.audioWriter = new GdpWriter(gst.inputs[fd++]!, { streamId: 'audio', caps: AUDIO_CAPS(MIX_RATE, MIX_CHANNELS), maxBacklogBytes: Infinity });
    }
    if (this.graph.video && !capture) this.videoInput = gst.inputs[fd]!;
    for (const name of new Set(outputs.map((o) => o.branch))) {
      const of = (kind: 'audio' | 'video') => {
        const i = outputs.findIndex((o) => o.branch === name && o.kind === kind);
        return i < 0 ? {} : { [kind]: gst.outputs[i]! };
      };
      this.byName.get(name)?.attach?.({ ...of('audio'), ...of('video') });
    }
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

  /** Ends the inputs and waits for gst to finalize every branch; the same promise for every caller. */
  finish(): Promise<void> {
    this.finishing ??= this.finalize();
    return this.finishing;
  }

  private async finalize(): Promise<void> {
    this.stopped = true;
    const gst = this.gst;
    if (!gst) return;
    // One deadline for the whole stop: ending the inputs can hang as well (gst stopped reading, its
    // pipes full), and a stop must end even then. After it gst is stopped, killed if need be, and
    // what it wrote is delivered as it is (fragmented MP4, OGG pages).
    let timeout: NodeJS.Timeout | undefined;
    let frozen = false;
    const deadline = new Promise<void>((r) => (timeout = setTimeout(r, FINALIZE_TIMEOUT_MS))).then(() => void (frozen = true));
    await Promise.race([Promise.all([this.audioWriter?.end(), this.videoWriter?.end() ?? this.videoInput?.end()]), deadline]);
    // Live capture has no input to end: SIGINT makes gst-launch send EOS from its sources.
    if (this.graph?.capture) void gst.stop({ timeoutMs: FINALIZE_TIMEOUT_MS });
    let wedged = false;
    const watchdog = this.watchDrained(() => {
      wedged = true;
      this.ctx.log.warn('gst wedged after its segments closed (splitmuxsink EOS); stopping it', { pid: gst.pid });
      void gst.stop({ timeoutMs: DRAINED_GRACE_MS });
    });
    const exit = await Promise.race([gst.exited, deadline.then(() => gst.stop({ timeoutMs: FROZEN_STOP_MS }))]).finally(() => {
      clearInterval(watchdog);
      clearTimeout(timeout);
    });
    if (frozen) throw errors.pipelineFrozen();
    if (exit.code !== 0 && !wedged) throw new EgressError('internal', exit.error ?? `gst-launch-1.0 failed (${exit.signal ?? `exit ${exit.code}`})`);
  }

  /** Calls `wedged` once every branch that can tell has drained and gst has not exited in the grace time. */
  private watchDrained(wedged: () => void): NodeJS.Timeout | undefined {
    const reporting = this.branches.filter((b) => b.drained);
    if (!reporting.length) return undefined;
    let since: number | undefined;
    const timer = setInterval(() => {
      if (!reporting.every((b) => b.drained!())) {
        since = undefined;
        return;
      }
      since ??= Date.now();
      if (Date.now() - since < DRAINED_GRACE_MS) return;
      clearInterval(timer);
      wedged();
    }, DRAIN_POLL_MS);
    return timer;
  }

  abort(): void {
    this.stopped = true;
    this.gst?.kill();
  }

  debug(): { commandLines: string[]; dotDir?: string } {
    return { commandLines: this.gst ? [this.gst.commandLine] : [], dotDir: this.dotDir };
  }
}
