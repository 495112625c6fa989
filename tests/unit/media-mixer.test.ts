import t from 'tap';
import { AudioMixer, DEFAULT_MIX_LATENCY_MS, MIX_FRAME_SAMPLES, MIX_RATE } from '../../handler/src/media/mixer.ts';

const MS = 1_000_000n;
const ORIGIN = 9_000n * MS;

function fakeNow(start: bigint) {
  let now = start;
  return { now: () => now, advance: (d: bigint) => void (now += d) };
}

/** 10 ms of a constant stereo value (or per-channel values). */
const frame = (l: number, r = l) => {
  const d = new Int16Array(MIX_FRAME_SAMPLES * 2);
  for (let i = 0; i < MIX_FRAME_SAMPLES; i++) {
    d[2 * i] = l;
    d[2 * i + 1] = r;
  }
  return d;
};

const samplesOf = (frames: { samples: Int16Array }[]) => frames.reduce((n, f) => n + f.samples.length / 2, 0);

t.test('output trails real time by the latency and is contiguous from 0', async (t) => {
  const clock = fakeNow(ORIGIN);
  const mixer = new AudioMixer(ORIGIN, { now: clock.now });
  t.same(mixer.pull(), [], 'nothing before the latency has passed');
  clock.advance(BigInt(DEFAULT_MIX_LATENCY_MS) * MS + 100n * MS);
  const frames = mixer.pull();
  t.equal(samplesOf(frames), (MIX_RATE * 100) / 1000, '100 ms due');
  t.equal(frames[0]!.ptsNs, 0n);
  for (let i = 1; i < frames.length; i++) t.equal(frames[i]!.ptsNs, frames[i - 1]!.ptsNs + frames[i - 1]!.durationNs, 'no gaps');
  t.ok(frames.every((f) => f.samples.every((s) => s === 0)), 'silence when no track');
});

t.test('a track lands at its arrival time; tracks sum; channels route', async (t) => {
  const clock = fakeNow(ORIGIN);
  const mixer = new AudioMixer(ORIGIN, { now: clock.now });
  const both = mixer.addTrack('a', 'both');
  const left = mixer.addTrack('b', 'left');
  const right = mixer.addTrack('c', 'right');
  clock.advance(50n * MS); // tracks start 50 ms in
  for (let i = 0; i < 10; i++) {
    both.push(frame(100), MIX_FRAME_SAMPLES, MIX_RATE, 2);
    left.push(frame(1000, 3000), MIX_FRAME_SAMPLES, MIX_RATE, 2); // mono mix 2000 → left
    right.push(frame(-500), MIX_FRAME_SAMPLES, MIX_RATE, 2);
    clock.advance(10n * MS);
  }
  const out = mixer.flush(205n * MS);
  t.equal(samplesOf(out), (MIX_RATE * 205) / 1000, 'flush ends exactly at 205 ms');
  const all = new Int16Array(out.flatMap((f) => [...f.samples]));
  const at = (ms: number) => [all[((ms * MIX_RATE) / 1000) * 2], all[((ms * MIX_RATE) / 1000) * 2 + 1]];
  t.same(at(20), [0, 0], 'silence before the tracks arrive');
  t.same(at(100), [100 + 2000, 100 - 500], 'left = both + left track; right = both + right track');
  t.same(at(149), [2100, -400], 'the tracks cover 50..150 ms');
  t.same(at(170), [0, 0], 'silence after the tracks stop');
});

t.test('samples are clipped, late samples dropped, removed tracks go silent', async (t) => {
  const clock = fakeNow(ORIGIN);
  const mixer = new AudioMixer(ORIGIN, { now: clock.now, latencyMs: 0 });
  const a = mixer.addTrack('a', 'both');
  const b = mixer.addTrack('b', 'both');
  a.push(frame(30000), MIX_FRAME_SAMPLES, MIX_RATE, 2);
  b.push(frame(30000), MIX_FRAME_SAMPLES, MIX_RATE, 2);
  clock.advance(10n * MS);
  const [f] = mixer.pull();
  t.equal(f!.samples[0], 32767, 'clipped, not wrapped');
  mixer.removeTrack('b');
  t.equal(mixer.trackCount, 1);
});

t.test('a gap in a track stays a gap (silence), later audio is not pulled earlier', async (t) => {
  const clock = fakeNow(ORIGIN);
  const mixer = new AudioMixer(ORIGIN, { now: clock.now });
  const a = mixer.addTrack('a', 'both');
  a.push(frame(500), MIX_FRAME_SAMPLES, MIX_RATE, 2);
  clock.advance(1000n * MS); // one second without audio (muted publisher), then audio at its pace
  for (let i = 0; i < 20; i++) {
    a.push(frame(700), MIX_FRAME_SAMPLES, MIX_RATE, 2);
    clock.advance(10n * MS);
  }
  const all = new Int16Array(mixer.flush(1200n * MS).flatMap((f) => [...f.samples]));
  t.equal(all[0], 500);
  t.equal(all[((500 * MIX_RATE) / 1000) * 2], 0, 'silence in the gap');
  // The clock takes the gap for one once it has held for 100 ms (AUDIO_GAP_CONFIRM_NS).
  t.equal(all[((1150 * MIX_RATE) / 1000) * 2], 700, 'the resumed audio at its arrival time');
});
