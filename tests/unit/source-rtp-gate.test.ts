// The video jitter buffer in front of gst (source/rtp/frame-gate.ts): order restored, whole frames
// only, and after a packet lost for good nothing until the next key frame, renumbered without a hole.
import t from 'tap';
import { FrameGate, type GatedPacket } from '../../handler/src/source/rtp/frame-gate.ts';

/** Frame f of `per` packets, starting at sequence number `seq0`; frames 0 and `keyEvery`-multiples are key frames. */
function frames(count: number, per: number, seq0 = 100, keyEvery = 5): GatedPacket[] {
  const out: GatedPacket[] = [];
  for (let f = 0; f < count; f++) {
    for (let i = 0; i < per; i++) {
      const data = Buffer.alloc(12);
      data[1] = i === per - 1 ? 0x80 | 96 : 96;
      const seq = (seq0 + f * per + i) & 0xffff;
      data.writeUInt16BE(seq, 2);
      data.writeUInt32BE(f * 3000, 4);
      out.push({ seq, ts: f * 3000, key: i === 0 && f % keyEvery === 0, data });
    }
  }
  return out;
}

function gate() {
  const out: { seq: number; ts: number }[][] = [];
  let lost = 0;
  const g = new FrameGate({ giveUpMs: 100, emit: (ps) => out.push(ps.map((p) => ({ seq: p.readUInt16BE(2), ts: p.readUInt32BE(4) }))), lost: () => lost++ });
  return { g, out, lost: () => lost };
}

t.test('in order: each frame goes out whole, as its marker packet arrives', async (t) => {
  const { g, out, lost } = gate();
  for (const p of frames(3, 3)) g.push({ ...p, data: Buffer.from(p.data) }, 0);
  t.same(out.map((f) => f.map((p) => p.seq)), [[100, 101, 102], [103, 104, 105], [106, 107, 108]]);
  t.equal(lost(), 0);
});

t.test('a retransmission that comes late but in time takes its place', async (t) => {
  const { g, out, lost } = gate();
  const ps = frames(2, 3);
  for (const p of [ps[0]!, ps[2]!, ps[3]!, ps[1]!, ps[4]!, ps[5]!]) g.push(p, 10);
  t.same(out.map((f) => f.map((p) => p.seq)), [[100, 101, 102], [103, 104, 105]]);
  t.equal(lost(), 0);
});

t.test('a packet lost for good: its frame and the rest up to the next key frame are dropped, one key frame asked for', async (t) => {
  const { g, out, lost } = gate();
  const ps = frames(7, 3); // key frames: 0 and 5
  let now = 0;
  for (const p of ps) {
    if (p.seq === 104) continue; // the middle of frame 1
    g.push(p, (now += 5));
    g.tick(now);
  }
  g.tick(now + 200);
  t.equal(lost(), 1, 'one request');
  g.tick(now + 5000);
  t.equal(lost(), 1, 'none again once a key frame came');
  t.same(out.map((f) => f[0]!.ts / 3000), [0, 5, 6], 'frames 1 (broken) to 4 (after it) dropped, 5 (key) on');
  t.same(out.flat().map((p) => p.seq), [100, 101, 102, 103, 104, 105, 106, 107, 108], 'renumbered: no hole for rtpbin to see');
});

t.test("livekit-server's blank frames leave no hole and ask for nothing", async (t) => {
  const { g, out, lost } = gate();
  const ps = frames(6, 2);
  for (const p of ps) g.push({ ...p, skip: p.ts === 3000 * 2 }, 0);
  t.equal(lost(), 0);
  t.same(out.map((f) => f[0]!.ts / 3000), [0, 1, 3, 4, 5]);
});

t.test('sequence numbers wrap; a jump far ahead is a restart that waits for a key frame', async (t) => {
  const { g, out, lost } = gate();
  for (const p of frames(3, 2, 65532)) g.push(p, 0);
  t.same(out.flat().map((p) => p.seq), [65532, 65533, 65534, 65535, 0, 1], 'across the wrap');
  const later = frames(6, 2, 20000);
  for (const p of later.slice(2, 10)) g.push(p, 0); // frames 1 to 4: no key frame
  t.equal(lost(), 1, 'a restart asks for a key frame');
  g.tick(1500);
  t.equal(lost(), 2, 'and asks again while none comes');
  for (const p of later.slice(10)) g.push(p, 1500);
  t.same(out.slice(3).map((f) => f[0]!.ts / 3000), [5], 'and takes nothing before it');
});
