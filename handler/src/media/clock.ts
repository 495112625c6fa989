/**
 * Presentation timestamps for media decoded by rtc-node (the "SDK source").
 *
 * All PTS are nanoseconds on the job's timeline: 0 is `origin`, the monotonic time
 * at which recording started, shared by every track of the job. Audio and video
 * are both anchored to when their first frame arrived on that timeline, which is
 * what keeps them in sync with each other and with tracks that join later.
 *
 * - Video: rtc-node gives each frame a `timestampUs` derived from the sender's RTP
 *   clock. Its deltas are smooth, arrival times are jittery, so PTS follow the
 *   deltas. A gap in timestamps (sender stalled) stays a gap. The sender's clock is
 *   not ours, though, and the audio follows arrival: a sender whose frames come slower or
 *   faster than their timestamps say would drift the picture off the sound for as long as
 *   the recording lasts. So video is slewed toward arrival too, gently and on a smoothed
 *   lag, so that per-frame jitter never moves it.
 * - Audio: frames carry no timestamp. PTS come from the running sample count, which
 *   is exact between gaps, checked against the arrival clock: a large lag that lasts
 *   means audio went missing (re-anchor, keep the gap), a small one is clock drift
 *   (slew gently). Timing by byte count alone would close every gap and drift
 *   audio ahead of video after each stall. A large lag that drains in a burst is a
 *   stall of our own (the event loop, or rtc-node's delivery on a starved machine):
 *   the audio was all there, only late, so it keeps its place. Re-anchoring on it
 *   would put the sound that late behind the picture, and the slew takes a minute
 *   to bring it back.
 */

export type NowNs = () => bigint;

/** Monotonic nanoseconds; the clock `origin` must be taken from too. */
export const monotonicNs: NowNs = () => process.hrtime.bigint();

/**
 * A video timestamp this far behind the previous one is not reordering but a new
 * timeline (e.g. the sender's track restarted); without this, clamping every frame
 * to previous + 1 µs would freeze video until the new timestamps caught up.
 */
export const VIDEO_RESET_US = 1_000_000n;

/** Arrival lag beyond which audio is treated as missing and the gap is kept: well above
 *  normal delivery jitter (tens of ms), and before a lip-sync error becomes obvious. */
export const AUDIO_GAP_NS = 200_000_000n;

/** A lag above AUDIO_GAP_NS must hold this long on the arrival clock, without draining, before it is
 *  taken for missing audio. A backlog (frames that were late, not lost) drains within one burst. */
export const AUDIO_GAP_CONFIRM_NS = 100_000_000n;

/** Arrival jitter below this is noise; the sample clock is left alone. */
export const AUDIO_DRIFT_DEADBAND_NS = 20_000_000n;

/** Largest correction per frame, as a fraction of its duration. 0.5% outpaces real
 *  clock drift (≈0.01%) many times over, yet moves a 10 ms frame by only 50 µs. */
export const AUDIO_MAX_SLEW = 0.005;

/** Smoothed video lag below this is left alone: decode and delivery jitter, which must not move
 *  the picture, stays inside it; only a sender clock that really runs off does not. */
export const VIDEO_DRIFT_DEADBAND_NS = 30_000_000n;

/** Largest video correction per frame, as a fraction of the frame's interval: 0.5% is
 *  0.17 ms on a 30 fps frame (invisible), and fifty times a typical crystal's error (0.01%). */
export const VIDEO_MAX_SLEW = 0.005;

/** Weight of the newest frame in the smoothed lag (an exponential average over ≈2 s at 30 fps). */
const VIDEO_LAG_SMOOTHING = 64;

const NS_PER_US = 1_000n;
const NS_PER_S = 1_000_000_000n;

function arrivalPts(now: NowNs, origin: bigint): bigint {
  const t = now() - origin;
  return t > 0n ? t : 0n;
}

export class VideoClock {
  private readonly origin: bigint;
  private readonly now: NowNs;
  /** The anchor frame's timestamp maps to `anchorPts`; later frames add their delta, plus
   *  the drift correction `slewNs`, to it. */
  private state:
    | { anchorTsUs: bigint; anchorPts: bigint; lastTsUs: bigint; lastPts: bigint; slewNs: bigint; lagNs: number }
    | undefined;

  constructor(origin: bigint, now: NowNs = monotonicNs) {
    this.origin = origin;
    this.now = now;
  }

  /** PTS (ns) of a frame with rtc-node's `timestampUs`; strictly increasing. */
  ptsFor(timestampUs: bigint): bigint {
    const s = this.state;
    const arrival = arrivalPts(this.now, this.origin);
    if (!s || timestampUs < s.lastTsUs - VIDEO_RESET_US) {
      const pts = s && arrival <= s.lastPts ? s.lastPts + NS_PER_US : arrival;
      this.state = { anchorTsUs: timestampUs, anchorPts: pts, lastTsUs: timestampUs, lastPts: pts, slewNs: 0n, lagNs: 0 };
      return pts;
    }
    // Equal or slightly older timestamps would make PTS go backwards, which muxers reject.
    const tsUs = timestampUs > s.lastTsUs ? timestampUs : s.lastTsUs + 1n;
    const intervalNs = (tsUs - s.lastTsUs) * NS_PER_US;
    s.lastTsUs = tsUs;
    const pts = s.anchorPts + (tsUs - s.anchorTsUs) * NS_PER_US + s.slewNs;

    s.lagNs += (Number(arrival - pts) - s.lagNs) / VIDEO_LAG_SMOOTHING;
    if (Math.abs(s.lagNs) > Number(VIDEO_DRIFT_DEADBAND_NS)) {
      // Bounded by a fraction of the interval, so PTS stay increasing and motion smooth.
      const maxStep = Number(intervalNs) * VIDEO_MAX_SLEW;
      const step = BigInt(Math.round(Math.max(-maxStep, Math.min(maxStep, s.lagNs))));
      s.slewNs += step;
      s.lastPts = pts + step;
    } else {
      s.lastPts = pts;
    }
    return s.lastPts;
  }
}

export class AudioClock {
  private readonly origin: bigint;
  private readonly now: NowNs;
  private sampleRate = 0;
  /** PTS of the first sample since the last (re-)anchoring. */
  private anchorPts = 0n;
  private samplesSinceAnchor = 0n;
  /** Accumulated drift correction since the last anchoring. */
  private slewNs = 0n;
  /** Where the next frame starts; frames are contiguous between anchorings. */
  private nextPts: bigint | undefined;
  /** A lag above the gap threshold not yet confirmed: since when (arrival), and how large then. */
  private suspectGap: { since: bigint; lag: bigint } | undefined;
  /** The next frame follows a known gap (an unmute): a lag there needs no confirming. */
  private gapExpected = false;

  constructor(origin: bigint, now: NowNs = monotonicNs) {
    this.origin = origin;
    this.now = now;
  }

  /** PTS and duration (ns) of the frame that has just arrived. */
  ptsFor(samplesPerChannel: number, sampleRate: number): { pts: bigint; duration: bigint } {
    const arrival = arrivalPts(this.now, this.origin);
    const next = this.nextPts;
    let pts: bigint;
    if (next === undefined) {
      pts = this.reanchor(arrival, sampleRate);
    } else if (sampleRate !== this.sampleRate) {
      // The sample count only means time at one rate: continue from where we are.
      pts = this.reanchor(next, sampleRate);
    } else if (arrival - next > AUDIO_GAP_NS) {
      pts = this.gapExpected ? this.reanchor(arrival, sampleRate) : this.afterLag(arrival, next, sampleRate);
    } else {
      this.suspectGap = undefined;
      pts = next;
    }

    const lag = arrival - pts;
    if (lag > AUDIO_DRIFT_DEADBAND_NS || lag < -AUDIO_DRIFT_DEADBAND_NS) {
      // Stretch or shrink this frame a little; never jump, since a jump is an audible
      // gap or an overlap downstream. Early audio (negative lag) can only be slewed
      // back: PTS must not go backwards.
      const nominal = (BigInt(samplesPerChannel) * NS_PER_S) / BigInt(sampleRate);
      const maxStep = BigInt(Math.round(Number(nominal) * AUDIO_MAX_SLEW));
      this.slewNs += lag > maxStep ? maxStep : lag < -maxStep ? -maxStep : lag;
    }

    this.gapExpected = false;
    this.samplesSinceAnchor += BigInt(samplesPerChannel);
    const end = this.anchorPts + (this.samplesSinceAnchor * NS_PER_S) / BigInt(sampleRate) + this.slewNs;
    this.nextPts = end;
    return { pts, duration: end - pts };
  }

  /**
   * A frame far behind the arrival clock. If the lag holds (frames come at their normal pace, the
   * gap behind them), audio went missing: start again at the arrival time, so the silence stays
   * on the timeline instead of pulling later audio earlier. If it drains (a burst of queued
   * frames), nothing was missing and the frames stay contiguous; the window restarts whenever
   * the lag shrinks, so a slow drain never confirms.
   */
  private afterLag(arrival: bigint, next: bigint, sampleRate: number): bigint {
    const lag = arrival - next;
    const s = this.suspectGap;
    if (!s || lag < s.lag - AUDIO_DRIFT_DEADBAND_NS) this.suspectGap = { since: arrival, lag };
    if (arrival - this.suspectGap!.since < AUDIO_GAP_CONFIRM_NS) return next;
    this.suspectGap = undefined;
    return this.reanchor(arrival, sampleRate);
  }

  /** The sender was muted and is back: the gap before its next frame is real. */
  expectGap(): void {
    this.gapExpected = true;
  }

  private reanchor(pts: bigint, sampleRate: number): bigint {
    this.sampleRate = sampleRate;
    this.anchorPts = pts;
    this.samplesSinceAnchor = 0n;
    this.slewNs = 0n;
    this.suspectGap = undefined;
    return pts;
  }
}
