/**
 * The job's media: what sources push in (per-track frames) turned into what outputs consume
 * (one continuous audio stream, one continuous video stream, on one timeline).
 *
 * The timeline starts (PTS 0) at the first frame of any track: that is when the egress becomes
 * ACTIVE. From then on a 10 ms tick emits the mixed audio and any video filler that is due, and
 * `end()` completes both up to the moment the recording stops, so every output lasts exactly
 * as long as the recording.
 */
import type { AudioChannel } from '@egress/shared/plan/pipeline-config.ts';
import type { Role } from '../source/sdk/selection.ts';
import type { SourceSink, TrackInfo } from '../source/source.ts';
import { monotonicNs, type NowNs } from './clock.ts';
import { AudioMixer, type MixedFrame, type MixerInput } from './mixer.ts';
import { VideoTimeline, type RawFrame, type TimedFrame } from './video-timeline.ts';

export interface MediaConsumer {
  audio?(frame: MixedFrame): void;
  video?(frame: TimedFrame): void;
  /** A track the consumer may care about was (un)muted (websocket outputs say so). */
  muted?(trackId: string, muted: boolean): void;
}

export interface JobMediaOptions {
  audio: boolean;
  video?: { width: number; height: number; fps: number };
  /** Black frames while no video track is there (composites); false: only stalls are filled (track egress). */
  blackWithoutTrack?: boolean;
  now?: NowNs;
  /** Called once, at the first frame: the timeline's origin. */
  onStart(): void;
  log?: { debug(msg: string, meta?: object): void };
}

const TICK_MS = 10;

export class JobMedia implements SourceSink {
  private readonly now: NowNs;
  private origin?: bigint;
  private mixer?: AudioMixer;
  private timeline?: VideoTimeline;
  private readonly inputs = new Map<string, MixerInput>();
  /** Every audio track taken, with its channel: those taken before the start join the mixer at the start. */
  private readonly audioTracks = new Map<string, AudioChannel>();
  /** Video tracks in the order they arrived; the newest one is shown. */
  private readonly videoTracks: string[] = [];
  private readonly mutedTracks = new Set<string>();
  private readonly consumers: MediaConsumer[] = [];
  private ticker?: NodeJS.Timeout;
  /** Frames are taken only once the outputs are ready for them. */
  private opened = false;
  private ended = false;

  constructor(private readonly opts: JobMediaOptions) {
    this.now = opts.now ?? monotonicNs;
  }

  /** A consumer added after tracks were muted (the source subscribes before outputs start) hears of them now. */
  addConsumer(c: MediaConsumer): void {
    this.consumers.push(c);
    for (const id of this.mutedTracks) c.muted?.(id, true);
  }

  /** From now on frames are taken (before, tracks are announced but their frames dropped). */
  open(): void {
    this.opened = true;
  }

  trackAdded(info: TrackInfo, role: Role): void {
    if (role.kind === 'audio') {
      if (!this.opts.audio) return;
      this.audioTracks.set(info.trackId, role.channel);
      if (this.mixer) this.inputs.set(info.trackId, this.mixer.addTrack(info.trackId, role.channel));
    } else if (this.opts.video) {
      this.videoTracks.push(info.trackId);
      this.timeline?.setTrack(info.trackId);
    }
  }

  trackRemoved(trackId: string): void {
    this.audioTracks.delete(trackId);
    this.inputs.delete(trackId);
    this.mixer?.removeTrack(trackId);
    const i = this.videoTracks.indexOf(trackId);
    if (i >= 0) {
      this.videoTracks.splice(i, 1);
      this.timeline?.setTrack(this.videoTracks.at(-1));
    }
    this.mutedTracks.delete(trackId);
  }

  trackMuted(trackId: string, muted: boolean): void {
    if (muted) this.mutedTracks.add(trackId);
    else this.mutedTracks.delete(trackId);
    this.timeline?.setMuted(trackId, muted);
    if (!muted) this.inputs.get(trackId)?.unmuted();
    for (const c of this.consumers) c.muted?.(trackId, muted);
  }

  audioFrame(trackId: string, data: Int16Array, samplesPerChannel: number, sampleRate: number, channels: number): void {
    if (!this.opened || this.ended || !this.audioTracks.has(trackId)) return;
    this.startOnce();
    this.inputs.get(trackId)?.push(data, samplesPerChannel, sampleRate, channels);
  }

  videoFrame(trackId: string, frame: RawFrame, timestampUs: bigint): void {
    if (!this.opened || this.ended || !this.opts.video || !this.videoTracks.includes(trackId)) return;
    this.startOnce();
    const timed = this.timeline!.push(trackId, frame, timestampUs);
    if (timed) for (const c of this.consumers) c.video?.(timed);
  }

  /**
   * Decoded audio leaves the receiver later than video (NetEq holds more than the video jitter
   * buffer), so audio stamped at arrival would trail the picture by the difference: it is placed
   * that much earlier. Changes reach the mixer gradually (one sample per frame), never as a jump.
   */
  receiveDelays(audioMs: number, videoMs: number): void {
    this.audioAdvanceNs = BigInt(Math.round(Math.max(0, audioMs - videoMs) * 1e6));
    if (this.mixer && this.opts.video) this.mixer.advanceNs = this.audioAdvanceNs;
  }

  private audioAdvanceNs = 0n;

  private startOnce(): void {
    if (this.origin !== undefined) return;
    this.origin = this.now();
    if (this.opts.audio) {
      this.mixer = new AudioMixer(this.origin, { now: this.now });
      if (this.opts.video) this.mixer.advanceNs = this.audioAdvanceNs;
      for (const [id, channel] of this.audioTracks) this.inputs.set(id, this.mixer.addTrack(id, channel));
    }
    if (this.opts.video) {
      this.timeline = new VideoTimeline(this.origin, this.opts.video, { now: this.now, blackWithoutTrack: this.opts.blackWithoutTrack ?? true });
      this.timeline.setTrack(this.videoTracks.at(-1));
      for (const id of this.mutedTracks) this.timeline.setMuted(id, true);
    }
    this.opts.onStart();
    this.ticker = setInterval(() => this.tick(), TICK_MS);
  }

  private tick(): void {
    if (this.mixer) for (const f of this.mixer.pull()) for (const c of this.consumers) c.audio?.(f);
    if (this.timeline) for (const f of this.timeline.fill()) for (const c of this.consumers) c.video?.(f);
  }

  /**
   * Stops taking frames and completes both streams up to now; returns the timeline's length (ns),
   * or undefined if it never started.
   */
  end(): bigint | undefined {
    if (this.ended) return undefined;
    this.ended = true;
    clearInterval(this.ticker);
    if (this.origin === undefined) return undefined;
    const endNs = this.now() - this.origin;
    if (this.mixer) for (const f of this.mixer.flush(endNs)) for (const c of this.consumers) c.audio?.(f);
    if (this.timeline) for (const f of this.timeline.fillUntil(endNs)) for (const c of this.consumers) c.video?.(f);
    return endNs;
  }
}
