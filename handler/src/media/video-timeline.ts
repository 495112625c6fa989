/**
 * The video timeline of a job: frames of whichever video track is current, with PTS from
 * the VideoClock (rtc-node's `timestampUs`, anchored to the job's origin), and filler frames
 * where there is nothing to show, so that the timeline never jumps and the file lasts as long
 * as the recording:
 * - the track stalls (no frame for `stallMs`): its last frame is repeated at the output rate;
 * - the track is muted, unpublished, or there is none yet: black frames at the output rate.
 *
 * Frames keep their own size; a size change is passed on (the gst input sends new caps and
 * gst scales to the output size). Black frames are made at the last size seen, else the
 * output size, so muting does not cause a caps change by itself.
 */
import { monotonicNs, VideoClock, type NowNs } from './clock.ts';

export interface RawFrame {
  /** I420. */
  data: Uint8Array;
  width: number;
  height: number;
}

export interface TimedFrame extends RawFrame {
  ptsNs: bigint;
  /** A repeat of the last frame or black, not a frame the track sent. */
  filler: boolean;
}

export const DEFAULT_STALL_MS = 300;
/**
 * Frames that arrive this soon after a mute were in flight when the sender stopped (jitter buffer,
 * decoder, a loaded machine): they do not undo the mute. Later ones mean the sender is back, even if
 * its unmute has not reached us.
 */
export const MUTE_SETTLE_MS = 1_500;

const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;

export function blackFrame(width: number, height: number): Uint8Array {
  const luma = width * height;
  const data = new Uint8Array(luma + 2 * ((width >> 1) * (height >> 1)));
  data.fill(16, 0, luma); // limited-range black
  data.fill(128, luma);
  return data;
}

export class VideoTimeline {
  private readonly now: NowNs;
  private readonly frameNs: bigint;
  private readonly stallNs: bigint;
  private clock?: VideoClock;
  private current?: string;
  private muted = false;
  private mutedAt = 0n;
  private last?: RawFrame;
  private lastPts = -1n;
  /** When the last frame the track sent was taken in (monotonic), for stall detection. */
  private lastRealAt = 0n;
  private black?: RawFrame;
  /** Composites show black while there is no track; a track egress only fills its own stalls. */
  private readonly blackWithoutTrack: boolean;

  constructor(
    private readonly origin: bigint,
    private readonly output: { width: number; height: number; fps: number },
    opts: { stallMs?: number; now?: NowNs; blackWithoutTrack?: boolean } = {},
  ) {
    this.now = opts.now ?? monotonicNs;
    this.blackWithoutTrack = opts.blackWithoutTrack ?? true;
    this.frameNs = NS_PER_S / BigInt(Math.max(1, Math.round(output.fps)));
    this.stallNs = BigInt(opts.stallMs ?? DEFAULT_STALL_MS) * NS_PER_MS;
  }

  /** The track whose frames are shown from now on (undefined: none, black). */
  setTrack(trackId: string | undefined): void {
    if (trackId === this.current) return;
    this.current = trackId;
    this.muted = false;
    // Another track's timestamps are on another sender clock.
    this.clock = undefined;
    if (!trackId) this.last = undefined;
  }

  setMuted(trackId: string, muted: boolean): void {
    if (trackId !== this.current) return;
    this.muted = muted;
    if (muted) this.mutedAt = this.now();
  }

  /** A frame of `trackId`; undefined when it is not the current track or would go backwards. */
  push(trackId: string, frame: RawFrame, timestampUs: bigint): TimedFrame | undefined {
    if (trackId !== this.current) return undefined;
    this.clock ??= new VideoClock(this.origin, this.now);
    const pts = this.clock.ptsFor(timestampUs);
    const now = this.now();
    this.lastRealAt = now;
    if (this.muted && now - this.mutedAt >= BigInt(MUTE_SETTLE_MS) * NS_PER_MS) this.muted = false;
    this.last = frame;
    if (pts <= this.lastPts) return undefined;
    this.lastPts = pts;
    return { ...frame, ptsNs: pts, filler: false };
  }

  /** Filler frames due now, if the current track stalled, is muted or absent. */
  fill(): TimedFrame[] {
    const now = this.now();
    if (!this.blackWithoutTrack && !this.last) return [];
    if (this.current && !this.muted && this.last && now - this.lastRealAt < this.stallNs) return [];
    return this.fillUntil(now - this.origin);
  }

  /** Filler frames up to `endNs` on the timeline (the end of the recording). */
  fillUntil(endNs: bigint): TimedFrame[] {
    const frames: TimedFrame[] = [];
    const picture = this.muted || !this.last ? this.blackPicture() : this.last;
    let pts = this.lastPts < 0n ? 0n : this.lastPts + this.frameNs;
    while (pts + this.frameNs <= endNs) {
      frames.push({ ...picture, ptsNs: pts, filler: true });
      this.lastPts = pts;
      pts += this.frameNs;
    }
    return frames;
  }

  /** The end of the last frame given out, i.e. the timeline's length so far. */
  get endNs(): bigint {
    return this.lastPts < 0n ? 0n : this.lastPts + this.frameNs;
  }

  private blackPicture(): RawFrame {
    const width = this.last?.width ?? this.output.width;
    const height = this.last?.height ?? this.output.height;
    if (!this.black || this.black.width !== width || this.black.height !== height) {
      this.black = { data: blackFrame(width, height), width, height };
    }
    return this.black;
  }
}
