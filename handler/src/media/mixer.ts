/**
 * The audio timeline of a job: every subscribed audio track mixed into one continuous
 * 48 kHz stereo stream whose length is the wall time.
 *
 * Each track's frames get their PTS from an AudioClock (sample count, anchored to arrival,
 * drift-corrected; see clock.ts) on the job's timeline, and are summed into an accumulator
 * addressed by output sample index. The output trails real time by `latencyMs`, so a frame
 * that arrives a little late still lands where it belongs; whatever no track covers is
 * silence. A muted, stalled or departed track therefore leaves silence, never a jump, and
 * tracks that join later start where they arrive.
 *
 * Mixing here rather than in gst's audiomixer: gst-launch graphs are fixed at start, so a
 * track joining mid-recording would need a new process; and a non-live mixer stalls on a
 * silent input. Summing a few stereo streams costs next to nothing in JS.
 */
import type { AudioChannel } from '@egress/shared/plan/pipeline-config.ts';
import { AudioClock, monotonicNs, type NowNs } from './clock.ts';

export const MIX_RATE = 48_000;
export const MIX_CHANNELS = 2;
/** Output frames are 10 ms, as rtc-node delivers them. */
export const MIX_FRAME_SAMPLES = 480;
/** How far the output trails real time: above delivery jitter, well below a noticeable lip-sync error. */
export const DEFAULT_MIX_LATENCY_MS = 200;
/** Samples further ahead than this are not buffered (a track far ahead of the clock is broken). */
const HORIZON_SAMPLES = MIX_RATE * 3;
/** A track's position is nudged one sample per frame once it is this far from its clock. */
const NUDGE_THRESHOLD = 48;
/** Further than this and the track jumps to its clock position (a gap or re-anchor). */
const JUMP_THRESHOLD = MIX_FRAME_SAMPLES;

const NS_PER_S = 1_000_000_000n;

export interface MixedFrame {
  /** Interleaved S16LE stereo. */
  samples: Int16Array;
  ptsNs: bigint;
  durationNs: bigint;
}

export interface MixerInput {
  /** Adds one decoded frame (interleaved S16, `channels` 1 or 2, at `sampleRate`). */
  push(data: Int16Array, samplesPerChannel: number, sampleRate: number, channels: number): void;
  /** The track was unmuted: a lag at its next frame is the mute's silence, not a backlog. */
  unmuted(): void;
  readonly channel: AudioChannel;
}

const sampleToNs = (s: bigint): bigint => (s * NS_PER_S) / BigInt(MIX_RATE);

export class AudioMixer {
  /** Output sample index up to which frames have been emitted. */
  private emitted = 0n;
  /** Accumulator for [emitted, emitted + HORIZON), stereo interleaved, wrapping. */
  private readonly acc = new Int32Array(HORIZON_SAMPLES * MIX_CHANNELS);
  private readonly inputs = new Map<string, TrackInput>();
  private readonly latencyNs: bigint;
  private readonly now: NowNs;
  /** How much earlier than its arrival audio is placed: the receive path's extra buffering over video's. */
  advanceNs = 0n;

  /** `origin`: the monotonic time of PTS 0, shared with the job's video. */
  constructor(
    private readonly origin: bigint,
    opts: { latencyMs?: number; now?: NowNs } = {},
  ) {
    this.latencyNs = BigInt(opts.latencyMs ?? DEFAULT_MIX_LATENCY_MS) * 1_000_000n;
    this.now = opts.now ?? monotonicNs;
  }

  /** A new track on the timeline; a track id seen before (republished) starts afresh. */
  addTrack(id: string, channel: AudioChannel): MixerInput {
    const input = new TrackInput(this, channel, new AudioClock(this.origin, this.now));
    this.inputs.set(id, input);
    return input;
  }

  removeTrack(id: string): void {
    this.inputs.delete(id);
  }

  get trackCount(): number {
    return this.inputs.size;
  }

  /** Frames that are due now (real time minus the latency). */
  pull(): MixedFrame[] {
    return this.pullUntil(this.now() - this.origin - this.latencyNs);
  }

  /** Every frame up to `endNs` on the timeline, the last one shortened to end exactly there. */
  flush(endNs: bigint): MixedFrame[] {
    return this.pullUntil(endNs, true);
  }

  private pullUntil(untilNs: bigint, partial = false): MixedFrame[] {
    const until = untilNs <= 0n ? 0n : (untilNs * BigInt(MIX_RATE)) / NS_PER_S;
    const frames: MixedFrame[] = [];
    while (this.emitted < until) {
      const n = Number(until - this.emitted < BigInt(MIX_FRAME_SAMPLES) ? until - this.emitted : BigInt(MIX_FRAME_SAMPLES));
      if (n < MIX_FRAME_SAMPLES && !partial) break;
      frames.push(this.emit(n));
    }
    return frames;
  }

  private emit(n: number): MixedFrame {
    const out = new Int16Array(n * MIX_CHANNELS);
    const base = Number(this.emitted % BigInt(HORIZON_SAMPLES)) * MIX_CHANNELS;
    for (let i = 0; i < out.length; i++) {
      const j = (base + i) % this.acc.length;
      const v = this.acc[j]!;
      out[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
      this.acc[j] = 0;
    }
    const ptsNs = sampleToNs(this.emitted);
    this.emitted += BigInt(n);
    return { samples: out, ptsNs, durationNs: sampleToNs(this.emitted) - ptsNs };
  }

  /** Adds one sample pair at output index `at`; dropped if already emitted (too late) or beyond the horizon. */
  accumulate(at: bigint, left: number, right: number): void {
    if (at < this.emitted || at >= this.emitted + BigInt(HORIZON_SAMPLES)) return;
    const j = Number(at % BigInt(HORIZON_SAMPLES)) * MIX_CHANNELS;
    this.acc[j] = this.acc[j]! + left;
    this.acc[j + 1] = this.acc[j + 1]! + right;
  }
}

class TrackInput implements MixerInput {
  /** Next output sample index this track writes at; undefined until its first frame. */
  private position: bigint | undefined;

  constructor(
    private readonly mixer: AudioMixer,
    readonly channel: AudioChannel,
    private readonly clock: AudioClock,
  ) {}

  unmuted(): void {
    this.clock.expectGap();
  }

  push(data: Int16Array, samplesPerChannel: number, sampleRate: number, channels: number): void {
    if (sampleRate !== MIX_RATE) throw new Error(`mixer input at ${sampleRate} Hz; rtc-node is asked for ${MIX_RATE}`);
    const { pts } = this.clock.ptsFor(samplesPerChannel, sampleRate);
    const placed = pts - this.mixer.advanceNs;
    const target = ((placed > 0n ? placed : 0n) * BigInt(MIX_RATE)) / NS_PER_S;
    // Follow the clock: contiguous writes while close, a one-sample nudge for drift, a jump for a gap.
    if (this.position === undefined) this.position = target;
    const drift = target - this.position;
    if (drift > BigInt(JUMP_THRESHOLD) || drift < -BigInt(JUMP_THRESHOLD)) this.position = target;
    else if (drift > BigInt(NUDGE_THRESHOLD)) this.position += 1n;
    else if (drift < -BigInt(NUDGE_THRESHOLD)) this.position -= 1n;

    let at = this.position;
    for (let i = 0; i < samplesPerChannel; i++, at++) {
      const l = data[i * channels]!;
      const r = channels > 1 ? data[i * channels + 1]! : l;
      switch (this.channel) {
        case 'both':
          this.mixer.accumulate(at, l, r);
          break;
        case 'left':
          this.mixer.accumulate(at, (l + r) >> 1, 0);
          break;
        case 'right':
          this.mixer.accumulate(at, 0, (l + r) >> 1);
          break;
      }
    }
    this.position = at;
  }
}
