import t from 'tap';
import {
  AUDIO_DRIFT_DEADBAND_NS,
  AUDIO_GAP_CONFIRM_NS,
  AUDIO_GAP_NS,
  AUDIO_MAX_SLEW,
  AudioClock,
  VIDEO_DRIFT_DEADBAND_NS,
  VideoClock,
} from '../../handler/src/media/clock.ts';

const MS = 1_000_000n;
const ORIGIN = 5_000n * MS; // arbitrary monotonic time at which recording started

function fakeClock(start: bigint) {
  let now = start;
  return {
    now: () => now,
    set: (t: bigint) => {
      now = t;
    },
    advance: (d: bigint) => {
      now += d;
    },
  };
}

t.test('video: first frame lands at its arrival time, later frames follow timestampUs deltas', async (t) => {
  const clock = fakeClock(ORIGIN + 700n * MS);
  const video = new VideoClock(ORIGIN, clock.now);
  t.equal(video.ptsFor(123_000_000n), 700n * MS);
  // Arrival jitters (early, late), PTS do not.
  clock.advance(5n * MS);
  t.equal(video.ptsFor(123_033_333n), 700n * MS + 33_333_000n);
  clock.advance(90n * MS);
  t.equal(video.ptsFor(123_066_666n), 700n * MS + 66_666_000n);
});

t.test('video: frame arriving before origin starts at 0', async (t) => {
  const clock = fakeClock(ORIGIN - 10n * MS);
  const video = new VideoClock(ORIGIN, clock.now);
  t.equal(video.ptsFor(1_000n), 0n);
  t.equal(video.ptsFor(34_333n), 33_333_000n);
});

t.test('video: equal or older timestamps are clamped to previous + 1 µs', async (t) => {
  const clock = fakeClock(ORIGIN);
  const video = new VideoClock(ORIGIN, clock.now);
  t.equal(video.ptsFor(1_000_000n), 0n);
  t.equal(video.ptsFor(1_033_000n), 33_000_000n);
  t.equal(video.ptsFor(1_033_000n), 33_001_000n, 'equal timestamp');
  t.equal(video.ptsFor(1_020_000n), 33_002_000n, 'slightly older timestamp');
  t.equal(video.ptsFor(1_066_000n), 66_000_000n, 'back on the original timeline');
});

t.test('video: a gap in timestamps stays a gap', async (t) => {
  const clock = fakeClock(ORIGIN);
  const video = new VideoClock(ORIGIN, clock.now);
  t.equal(video.ptsFor(0n), 0n);
  clock.advance(1_000n * MS);
  t.equal(video.ptsFor(1_000_000n), 1_000n * MS);
  // Sender stalls for 2 s; frames resume with timestamps 2 s later.
  clock.advance(2_000n * MS);
  t.equal(video.ptsFor(3_000_000n), 3_000n * MS);
});

t.test('video: a timestamp far in the past starts a new timeline at the arrival time', async (t) => {
  const clock = fakeClock(ORIGIN);
  const video = new VideoClock(ORIGIN, clock.now);
  video.ptsFor(50_000_000n);
  clock.advance(4_000n * MS);
  t.equal(video.ptsFor(54_000_000n), 4_000n * MS);
  clock.advance(500n * MS);
  t.equal(video.ptsFor(7_000n), 4_500n * MS, 'track restarted with small timestamps');
  clock.advance(40n * MS);
  t.equal(video.ptsFor(47_000n), 4_540n * MS, 'continues from the new anchor');
});

t.test('video: a sender whose frames arrive slower than their timestamps is slewed to arrival', async (t) => {
  // Timestamps say 30 fps; frames really arrive 0.23% slower (a sender clock far off ours), with jitter.
  const clock = fakeClock(ORIGIN);
  const video = new VideoClock(ORIGIN, clock.now);
  const jitter = [0n, 12n, -6n, 25n, -3n, 8n]; // ms
  let prev = -1n;
  let worst = 0n;
  for (let i = 0; i < 30 * 60; i++) {
    const arrival = (BigInt(i) * 33_333_333n * 10023n) / 10000n;
    clock.set(ORIGIN + arrival + (jitter[i % jitter.length] ?? 0n) * MS);
    const pts = video.ptsFor(BigInt(i) * 33_333n);
    if (pts <= prev) {
      t.fail(`frame ${i}: pts ${pts} not after ${prev}`);
      return;
    }
    prev = pts;
    if (i > 30 * 20) {
      const off = pts > arrival ? pts - arrival : arrival - pts;
      if (off > worst) worst = off;
    }
  }
  // Uncorrected, the last frame would be 138 ms early.
  t.ok(worst <= VIDEO_DRIFT_DEADBAND_NS + 10n * MS, `offset from arrival after 20 s stays small (worst ${worst / MS} ms)`);
});

t.test('video: steady jitter alone never moves PTS off the timestamps', async (t) => {
  const clock = fakeClock(ORIGIN);
  const video = new VideoClock(ORIGIN, clock.now);
  const jitter = [0n, 9n, -4n, 14n, -9n, 3n, 30n, -2n]; // ms, averaging well inside the deadband
  for (let i = 0; i < 900; i++) {
    clock.set(ORIGIN + BigInt(i) * 33_333_000n + (jitter[i % jitter.length] ?? 0n) * MS);
    const pts = video.ptsFor(BigInt(i) * 33_333n);
    if (pts !== BigInt(i) * 33_333_000n) {
      t.fail(`frame ${i}: pts ${pts}`);
      return;
    }
  }
  t.pass('900 frames on their timestamps');
});

t.test('audio: steady frames get PTS = samples / rate exactly, even with arrival jitter', async (t) => {
  const clock = fakeClock(ORIGIN + 250n * MS);
  const audio = new AudioClock(ORIGIN, clock.now);
  const jitter = [0n, 7n, -4n, 15n, -9n, 3n]; // ms, below the drift deadband
  for (let i = 0; i < 600; i++) {
    clock.set(ORIGIN + 250n * MS + BigInt(i) * 10n * MS + (jitter[i % jitter.length] ?? 0n) * MS);
    const { pts, duration } = audio.ptsFor(480, 48_000);
    if (pts !== 250n * MS + BigInt(i) * 10n * MS || duration !== 10n * MS) {
      t.fail(`frame ${i}: pts ${pts} duration ${duration}`);
      return;
    }
  }
  t.pass('600 frames exact');
});

t.test('audio: non-integer frame durations stay exact over time (44.1 kHz, 1024-sample frames)', async (t) => {
  const clock = fakeClock(ORIGIN);
  const audio = new AudioClock(ORIGIN, clock.now);
  let last = { pts: 0n, duration: 0n };
  for (let i = 0; i < 441; i++) {
    clock.set(ORIGIN + (BigInt(i) * 1024n * 1_000_000_000n) / 44_100n);
    last = audio.ptsFor(1024, 44_100);
  }
  // 441 frames × 1024 samples = 451584 samples = 10.24 s exactly
  t.equal(last.pts + last.duration, 10_240n * MS);
});

t.test('audio: a 1 s arrival gap that holds re-anchors, so the gap is kept', async (t) => {
  const clock = fakeClock(ORIGIN);
  const audio = new AudioClock(ORIGIN, clock.now);
  for (let i = 0; i < 100; i++) {
    clock.set(ORIGIN + BigInt(i) * 10n * MS);
    audio.ptsFor(480, 48_000);
  }
  // Next frame would start at 1.000 s; it arrives 1 s later instead, and the frames after it come at
  // their normal pace: the second of audio is missing, not late.
  const pts: bigint[] = [];
  for (let i = 0; i < 20; i++) {
    clock.set(ORIGIN + 2_000n * MS + BigInt(i) * 10n * MS);
    pts.push(audio.ptsFor(480, 48_000).pts);
  }
  t.equal(pts[0], 1_000n * MS, 'the first late frame is not taken for a gap yet');
  const jump = pts.findIndex((p, i) => i > 0 && p - pts[i - 1]! > 100n * MS);
  t.equal(jump, Number(AUDIO_GAP_CONFIRM_NS / (10n * MS)), 'the gap is confirmed once the lag has held for AUDIO_GAP_CONFIRM_NS');
  t.equal(pts[jump], 2_000n * MS + AUDIO_GAP_CONFIRM_NS, 'then PTS jump to the arrival time: the gap is kept');
  t.equal(pts[jump + 1], pts[jump]! + 10n * MS, 'contiguous again after the jump');
});

t.test('audio: after an unmute, the gap before the next frame is kept at once', async (t) => {
  const clock = fakeClock(ORIGIN);
  const audio = new AudioClock(ORIGIN, clock.now);
  audio.ptsFor(480, 48_000);
  audio.expectGap();
  clock.set(ORIGIN + 2_000n * MS);
  t.equal(audio.ptsFor(480, 48_000).pts, 2_000n * MS, 'the first frame after the unmute is at its arrival');
  clock.set(ORIGIN + 2_010n * MS);
  t.equal(audio.ptsFor(480, 48_000).pts, 2_010n * MS, 'and contiguous after it');
  // Only that once: a later stall is confirmed as usual.
  clock.set(ORIGIN + 2_500n * MS);
  t.equal(audio.ptsFor(480, 48_000).pts, 2_020n * MS, 'a later lag is not taken for a gap at once');
});

t.test('audio: a stall of our own (late frames drained in a burst) keeps every frame in its place', async (t) => {
  const clock = fakeClock(ORIGIN);
  const audio = new AudioClock(ORIGIN, clock.now);
  let i = 0;
  for (; i < 100; i++) {
    clock.set(ORIGIN + BigInt(i) * 10n * MS);
    audio.ptsFor(480, 48_000);
  }
  // The event loop is blocked for 450 ms: the 45 frames of that time all arrive when it resumes,
  // then delivery goes on at its pace. Re-anchoring here would put the sound 450 ms late.
  const stallEnd = ORIGIN + BigInt(i) * 10n * MS + 450n * MS;
  let contiguous = true;
  let expected = BigInt(i) * 10n * MS;
  for (let k = 0; k < 45; k++) {
    clock.set(stallEnd);
    const f = audio.ptsFor(480, 48_000);
    contiguous &&= f.pts === expected;
    expected = f.pts + f.duration;
  }
  for (let k = 0; k < 100; k++) {
    clock.set(stallEnd + BigInt(k + 1) * 10n * MS);
    const f = audio.ptsFor(480, 48_000);
    contiguous &&= f.pts === expected;
    expected = f.pts + f.duration;
  }
  t.ok(contiguous, 'no jump: the late audio was all there');
  const lag = clock.now() - ORIGIN - expected;
  t.ok(lag < AUDIO_DRIFT_DEADBAND_NS && lag > -AUDIO_DRIFT_DEADBAND_NS, `and it is on time again (lag ${lag / MS} ms)`);
});

t.test('audio: a backlog that drains slowly (at twice real time) is never taken for a gap', async (t) => {
  const clock = fakeClock(ORIGIN);
  const audio = new AudioClock(ORIGIN, clock.now);
  audio.ptsFor(480, 48_000);
  // 400 ms late, then frames every 5 ms until caught up.
  let expected = 10n * MS;
  let at = ORIGIN + 410n * MS;
  let jumped = false;
  for (let k = 0; k < 100; k++, at += 5n * MS) {
    clock.set(at);
    const f = audio.ptsFor(480, 48_000);
    jumped ||= f.pts !== expected;
    expected = f.pts + f.duration;
  }
  t.notOk(jumped, 'contiguous throughout');
});

t.test('audio: a lag just under the gap threshold is not a re-anchor', async (t) => {
  const clock = fakeClock(ORIGIN);
  const audio = new AudioClock(ORIGIN, clock.now);
  audio.ptsFor(480, 48_000);
  clock.set(ORIGIN + 10n * MS + AUDIO_GAP_NS - MS);
  const { pts } = audio.ptsFor(480, 48_000);
  t.equal(pts, 10n * MS, 'still contiguous; the lag is slewed instead');
});

t.test('audio: drift is slewed, at most AUDIO_MAX_SLEW per frame, without jumps', async (t) => {
  const clock = fakeClock(ORIGIN);
  const audio = new AudioClock(ORIGIN, clock.now);
  const nominal = 10n * MS;
  const maxStep = BigInt(Math.round(Number(nominal) * AUDIO_MAX_SLEW));
  // The sender's clock is 0.1% slow: each 10 ms frame arrives 10.01 ms after the previous one.
  let expectedNext = 0n;
  let maxLag = 0n;
  for (let i = 0; i < 30_000; i++) {
    clock.set(ORIGIN + BigInt(i) * 10_010_000n);
    const { pts, duration } = audio.ptsFor(480, 48_000);
    if (pts !== expectedNext) return t.fail(`frame ${i} not contiguous: ${pts} vs ${expectedNext}`);
    if (duration < nominal - maxStep || duration > nominal + maxStep) {
      return t.fail(`frame ${i} duration ${duration} outside the slew bound`);
    }
    const lag = clock.now() - ORIGIN - pts;
    if (lag > maxLag) maxLag = lag;
    expectedNext = pts + duration;
  }
  // Uncorrected, the lag would reach 300 ms after 30000 frames (and trigger re-anchors).
  t.ok(maxLag <= AUDIO_DRIFT_DEADBAND_NS + maxStep, `lag held near the deadband (max ${maxLag} ns)`);
});

t.test('audio: a sudden 150 ms offset is slewed in over many frames, not jumped', async (t) => {
  const clock = fakeClock(ORIGIN);
  const audio = new AudioClock(ORIGIN, clock.now);
  for (let i = 0; i < 10; i++) {
    clock.set(ORIGIN + BigInt(i) * 10n * MS);
    audio.ptsFor(480, 48_000);
  }
  const offset = 150n * MS;
  const durations: bigint[] = [];
  let lastLag = 0n;
  for (let i = 10; i < 4_000; i++) {
    clock.set(ORIGIN + BigInt(i) * 10n * MS + offset);
    const { pts, duration } = audio.ptsFor(480, 48_000);
    durations.push(duration);
    lastLag = clock.now() - ORIGIN - pts;
  }
  t.equal(durations[0], 10_050_000n, 'first correction is capped at 0.5% of the frame');
  t.ok(durations.every((d) => d >= 10n * MS && d <= 10_050_000n), 'every frame within the bound');
  t.ok(lastLag <= AUDIO_DRIFT_DEADBAND_NS, `converged to within the deadband (lag ${lastLag} ns)`);
});

t.test('audio: audio ahead of the arrival clock is slewed back, PTS never decrease', async (t) => {
  const clock = fakeClock(ORIGIN + 500n * MS);
  const audio = new AudioClock(ORIGIN, clock.now);
  // A burst: 50 frames delivered at once (e.g. after our event loop was blocked).
  let prevEnd = 0n;
  let monotonic = true;
  for (let i = 0; i < 50; i++) {
    const { pts, duration } = audio.ptsFor(480, 48_000);
    monotonic &&= pts >= prevEnd && duration > 0n;
    prevEnd = pts + duration;
  }
  t.ok(monotonic, 'PTS never decrease during the burst');
  clock.advance(10n * MS);
  const { duration } = audio.ptsFor(480, 48_000);
  t.equal(duration, 9_950_000n, 'shrunk by the maximum step');
});

t.test('audio: a sample-rate change continues from the current position', async (t) => {
  const clock = fakeClock(ORIGIN);
  const audio = new AudioClock(ORIGIN, clock.now);
  audio.ptsFor(480, 48_000);
  clock.advance(10n * MS);
  const changed = audio.ptsFor(160, 16_000);
  t.same(changed, { pts: 10n * MS, duration: 10n * MS });
});
