import t from 'tap';
import { blackFrame, DEFAULT_STALL_MS, MUTE_SETTLE_MS, VideoTimeline } from '../../handler/src/media/video-timeline.ts';

const MS = 1_000_000n;
const ORIGIN = 1_000n * MS;
const OUT = { width: 64, height: 36, fps: 10 };

function fakeNow(start: bigint) {
  let now = start;
  return { now: () => now, advance: (d: bigint) => void (now += d) };
}
const pic = (v: number, width = 32, height = 18) => ({ data: new Uint8Array((width * height * 3) / 2).fill(v), width, height });

t.test('no track: black at the output size and rate from 0', async (t) => {
  const clock = fakeNow(ORIGIN);
  const tl = new VideoTimeline(ORIGIN, OUT, { now: clock.now });
  clock.advance(350n * MS);
  const frames = tl.fill();
  t.same(frames.map((f) => f.ptsNs), [0n, 100n * MS, 200n * MS], 'whole frames only');
  t.ok(frames.every((f) => f.filler && f.width === 64 && f.data[0] === 16), 'black');
  t.equal(tl.endNs, 300n * MS);
});

t.test('real frames follow their timestamps; a stall repeats the last frame; a mute gives black', async (t) => {
  const clock = fakeNow(ORIGIN);
  const tl = new VideoTimeline(ORIGIN, OUT, { now: clock.now });
  tl.setTrack('v');
  const f1 = tl.push('v', pic(200), 5_000_000n);
  t.equal(f1?.ptsNs, 0n);
  clock.advance(100n * MS);
  t.equal(tl.push('v', pic(201), 5_100_000n)?.ptsNs, 100n * MS);
  t.equal(tl.push('other', pic(9), 5_100_000n), undefined, 'frames of another track are ignored');
  t.same(tl.fill(), [], 'no filler while frames flow');
  clock.advance(BigInt(DEFAULT_STALL_MS) * MS + 50n * MS);
  const stalled = tl.fill();
  t.ok(stalled.length >= 2 && stalled.every((f) => f.data[0] === 201), 'the last frame repeats');
  tl.setMuted('v', true);
  clock.advance(200n * MS);
  const muted = tl.fill();
  t.ok(muted.length >= 2 && muted.every((f) => f.data[0] === 16 && f.width === 32), 'black, at the last size');
  for (let i = 1; i < [...stalled, ...muted].length; i++) t.ok([...stalled, ...muted][i]!.ptsNs > [...stalled, ...muted][i - 1]!.ptsNs);
  tl.setMuted('v', false);
  clock.advance(10n * MS);
  const back = tl.push('v', pic(202), 5_100_000n + 700_000n);
  t.ok(back && back.ptsNs > muted.at(-1)!.ptsNs, 'unmuted frames continue the timeline');
});

t.test('fillUntil completes the timeline to the end of the recording', async (t) => {
  const clock = fakeNow(ORIGIN);
  const tl = new VideoTimeline(ORIGIN, OUT, { now: clock.now });
  tl.setTrack('v');
  tl.push('v', pic(50), 0n);
  const tail = tl.fillUntil(1000n * MS);
  t.equal(tail.length, 9, 'frames 100..900 ms');
  t.equal(tl.endNs, 1000n * MS);
  t.equal(blackFrame(4, 2).length, 12);
});

t.test('frames still in flight when the mute arrives keep it muted; a sender back without an unmute ends it', async (t) => {
  const clock = fakeNow(ORIGIN);
  const tl = new VideoTimeline(ORIGIN, OUT, { now: clock.now });
  tl.setTrack('v');
  tl.push('v', pic(200), 0n);
  tl.setMuted('v', true);
  clock.advance(200n * MS);
  t.ok(tl.push('v', pic(201), 200_000n), 'a late frame still takes its place in the timeline');
  clock.advance(BigInt(DEFAULT_STALL_MS) * MS + 100n * MS);
  const black = tl.fill();
  t.ok(black.length >= 2 && black.every((f) => f.data[0] === 16), 'black: the late frame did not undo the mute');
  clock.advance(BigInt(MUTE_SETTLE_MS) * MS);
  tl.push('v', pic(202), 2_500_000n);
  t.same(tl.fill(), [], 'a frame long after the mute: the sender is back, the frames show');
  clock.advance(BigInt(DEFAULT_STALL_MS) * MS + 50n * MS);
  t.ok(tl.fill().every((f) => f.data[0] === 202), 'and a stall repeats it, not black');
});
