import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { execa } from 'execa';
import {
  GDP_HEADER_LENGTH,
  GST_NONE,
  GdpParser,
  GdpWriter,
  gdpBufferHeader,
  gdpCaps,
  gdpPreamble,
  gdpRebasedHeader,
  gdpSegment,
  gdpStreamStart,
  type GdpPacket,
} from '../../handler/src/gst/gdp.ts';
import { startGst } from '../../handler/src/gst/runner.ts';

const NS = 1_000_000_000n;

t.test('buffer header layout', async (t) => {
  const h = gdpBufferHeader(1234, 5n * NS, 20_000_000n);
  t.equal(h.length, GDP_HEADER_LENGTH);
  const fields: [name: string, read: () => number | bigint, want: number | bigint][] = [
    ['major version', () => h.readUInt8(0), 1],
    ['minor version', () => h.readUInt8(1), 0],
    ['flags (no CRC)', () => h.readUInt8(2), 0],
    ['payload type buffer', () => h.readUInt16BE(4), 1],
    ['payload length', () => h.readUInt32BE(6), 1234],
    ['pts', () => h.readBigUInt64BE(10), 5n * NS],
    ['duration', () => h.readBigUInt64BE(18), 20_000_000n],
    ['offset', () => h.readBigUInt64BE(26), GST_NONE],
    ['offset_end', () => h.readBigUInt64BE(34), GST_NONE],
    ['buffer flags', () => h.readUInt16BE(42), 0],
    ['dts', () => h.readBigUInt64BE(44), GST_NONE],
    ['header crc', () => h.readUInt16BE(58), 0],
    ['payload crc', () => h.readUInt16BE(60), 0],
  ];
  for (const [name, read, want] of fields) t.equal(read(), want, name);
  t.equal(gdpBufferHeader(1, 0n, null).readBigUInt64BE(18), GST_NONE, 'null duration is NONE');
});

t.test('caps and event packets', async (t) => {
  const packets: [name: string, packet: Buffer, type: number, text: string][] = [
    ['caps', gdpCaps('audio/x-raw,rate=48000'), 2, 'audio/x-raw,rate=48000'],
    ['stream-start', gdpStreamStart('a1'), 64 + 0x280e, 'GstEventStreamStart, stream-id=(string)a1,'],
    ['segment', gdpSegment(), 64 + 0x460e, 'GstEventSegment, segment=(GstSegment)"segment,'],
  ];
  for (const [name, packet, type, text] of packets) {
    const length = packet.readUInt32BE(6);
    t.equal(packet.readUInt16BE(4), type, `${name} payload type`);
    t.equal(packet.length, GDP_HEADER_LENGTH + length, `${name} length covers the payload`);
    t.equal(packet[packet.length - 1], 0, `${name} payload is NUL-terminated`);
    t.ok(packet.subarray(GDP_HEADER_LENGTH).toString().startsWith(text), `${name} payload text`);
  }
  t.same(
    gdpPreamble('a1', 'audio/x-raw'),
    Buffer.concat([gdpStreamStart('a1'), gdpCaps('audio/x-raw'), gdpSegment()]),
    'preamble = stream-start, caps, segment',
  );
});

/** Splits a GDP byte stream back into (type, header, payload) packets. */
function parsePackets(data: Buffer): { type: number; header: Buffer; payload: Buffer }[] {
  const out = [];
  for (let at = 0; at < data.length; ) {
    const header = data.subarray(at, at + GDP_HEADER_LENGTH);
    const length = header.readUInt32BE(6);
    out.push({ type: header.readUInt16BE(4), header, payload: data.subarray(at + GDP_HEADER_LENGTH, at + GDP_HEADER_LENGTH + length) });
    at += GDP_HEADER_LENGTH + length;
  }
  return out;
}

t.test('GdpWriter writes the preamble once, then header + payload per frame', async (t) => {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (c: Buffer) => chunks.push(c));
  const w = new GdpWriter(sink, { streamId: 's', caps: 'audio/x-raw', maxBacklogBytes: Infinity });
  t.equal(w.write(new Uint8Array([1, 2, 3]), 10n, 5n), true);
  t.equal(w.write(new Uint8Array([4]), 15n, null), true);
  await w.end();
  const packets = parsePackets(Buffer.concat(chunks));
  t.same(
    packets.map((p) => p.type),
    [64 + 0x280e, 2, 64 + 0x460e, 1, 1],
  );
  t.same([...(packets[3]?.payload ?? [])], [1, 2, 3]);
  t.equal(packets[3]?.header.readBigUInt64BE(10), 10n);
  t.equal(packets[4]?.header.readBigUInt64BE(18), GST_NONE);
  t.equal(w.dropped, 0);
});

t.test('GdpWriter drops frames while the backlog is over the limit', async (t) => {
  // A consumer that never finishes a write: everything after the first chunk stays queued.
  const stuck = new Writable({ write() {} });
  const w = new GdpWriter(stuck, { streamId: 'v', caps: 'video/x-raw', maxBacklogBytes: 1000 });
  const preamble = stuck.writableLength;
  t.ok(preamble < 1000, 'preamble alone is under the limit');
  t.equal(w.write(new Uint8Array(600), 0n, null), true, 'first frame accepted');
  t.equal(w.write(new Uint8Array(600), 1n, null), false, 'second frame dropped');
  t.equal(w.write(new Uint8Array(600), 2n, null), false, 'third frame dropped');
  t.equal(w.dropped, 2);
  t.equal(stuck.writableLength, preamble + GDP_HEADER_LENGTH + 600, 'dropped frames were not queued');
  void w.end();
  t.equal(stuck.writableLength, preamble + 2 * (GDP_HEADER_LENGTH + 600), 'the newest dropped frame goes out before the end, so the stream lasts to it');
  t.equal(w.dropped, 1);
});

t.test('GdpWriter.end is idempotent; writes after end and on a broken stream are dropped', async (t) => {
  const sink = new PassThrough();
  sink.resume();
  const w = new GdpWriter(sink, { streamId: 's', caps: 'audio/x-raw', maxBacklogBytes: Infinity });
  const first = w.end();
  t.equal(w.end(), first, 'same promise');
  await first;
  t.equal(w.write(new Uint8Array(4), 0n, null), false);
  t.equal(w.dropped, 1);

  const broken = new PassThrough();
  const w2 = new GdpWriter(broken, { streamId: 's', caps: 'audio/x-raw', maxBacklogBytes: Infinity });
  broken.destroy(new Error('EPIPE'));
  t.equal(w2.write(new Uint8Array(4), 0n, null), false, 'no throw on a destroyed stream');
  await w2.end();
  t.pass('end() resolves on a destroyed stream');
});

interface Probe {
  streams: { codec_name: string; width?: number; height?: number; nb_frames?: string }[];
  format: { duration: string };
}

async function probe(file: string): Promise<Probe> {
  const { stdout } = await execa('ffprobe', ['-v', 'error', '-show_format', '-show_streams', '-of', 'json', file]);
  return JSON.parse(stdout) as Probe;
}

async function packetTimes(file: string): Promise<number[]> {
  const { stdout } = await execa('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time', '-of', 'csv=p=0', file]);
  return stdout.split('\n').filter(Boolean).map(Number).sort((a, b) => a - b);
}

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gst-gdp-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const AUDIO_CAPS = 'audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=2';
const VIDEO_CAPS = 'video/x-raw,format=I420,width=320,height=240,framerate=0/1,pixel-aspect-ratio=1/1';
const H264 = [
  'videoconvert', '!', 'video/x-raw,format=I420', '!',
  'x264enc', 'speed-preset=veryfast', 'tune=zerolatency', 'key-int-max=60', 'bitrate=500', '!',
  'video/x-h264,profile=main', '!', 'h264parse',
];

/** One 320x240 I420 frame whose content moves with `i`, so the encoder has real work. */
function videoFrame(i: number): Uint8Array {
  const w = 320, h = 240;
  const frame = new Uint8Array(w * h * 1.5);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) frame[y * w + x] = (x + y + i * 4) & 0xff;
  }
  frame.fill(128, w * h); // neutral chroma
  return frame;
}

/** Feeds timestamped video frames into `... ! mp4mux ! filesink` and waits for gst to finish. */
async function encodeVideo(dir: string, frames: { index: number; pts: bigint }[]) {
  const out = join(dir, 'out.mp4');
  const gst = startGst(['fdsrc', 'fd=3', '!', 'gdpdepay', '!', ...H264, '!', 'mp4mux', '!', 'filesink', `location=${out}`], { extraFds: 1 });
  const writer = new GdpWriter(gst.inputs[0]!, { streamId: 'video', caps: VIDEO_CAPS, maxBacklogBytes: Infinity });
  for (const { index, pts } of frames) writer.write(videoFrame(index), pts, NS / 30n);
  await writer.end();
  return { out, exit: await gst.exited, dropped: writer.dropped };
}

const CLEAN_EXIT = { code: 0, signal: null, killedByWatchdog: false };

t.test('real gst: 3 s of PCM in 10 ms GDP buffers → Opus/Ogg of 3 s', { timeout: 60_000 }, async (t) => {
  const out = join(await tempDir(t), 'out.ogg');
  const gst = startGst(
    ['fdsrc', 'fd=3', '!', 'gdpdepay', '!', 'audioconvert', '!', 'opusenc', '!', 'oggmux', '!', 'filesink', `location=${out}`],
    { extraFds: 1 },
  );
  const writer = new GdpWriter(gst.inputs[0]!, { streamId: 'audio', caps: AUDIO_CAPS, maxBacklogBytes: Infinity });
  const rate = 48_000, samplesPerFrame = 480;
  for (let f = 0; f < 300; f++) {
    const pcm = new Int16Array(samplesPerFrame * 2);
    for (let s = 0; s < samplesPerFrame; s++) {
      const v = Math.round(10_000 * Math.sin((2 * Math.PI * 440 * (f * samplesPerFrame + s)) / rate));
      pcm[2 * s] = v;
      pcm[2 * s + 1] = v;
    }
    const pts = (BigInt(f * samplesPerFrame) * NS) / BigInt(rate);
    writer.write(new Uint8Array(pcm.buffer), pts, 10_000_000n);
  }
  await writer.end();
  const exit = await gst.exited;
  t.same(exit, CLEAN_EXIT, 'gst finished cleanly');
  const info = await probe(out);
  t.equal(info.streams[0]?.codec_name, 'opus');
  const duration = Number(info.format.duration);
  t.ok(Math.abs(duration - 3) <= 0.1, `duration ${duration} ≈ 3 s`);
});

t.test('real gst: 2 s of 320x240 I420 at 30 fps → H.264/MP4 of 2 s', { timeout: 60_000 }, async (t) => {
  const frames = Array.from({ length: 60 }, (_, i) => ({ index: i, pts: (BigInt(i) * NS) / 30n }));
  const { out, exit, dropped } = await encodeVideo(await tempDir(t), frames);
  t.same(exit, CLEAN_EXIT, 'gst finished cleanly');
  t.equal(dropped, 0);
  const info = await probe(out);
  const video = info.streams[0];
  t.equal(video?.codec_name, 'h264');
  t.equal(video?.width, 320);
  t.equal(video?.height, 240);
  t.equal(video?.nb_frames, '60');
  const duration = Number(info.format.duration);
  t.ok(Math.abs(duration - 2) <= 0.1, `duration ${duration} ≈ 2 s`);
});

t.test('real gst: a 1 s stall in video (PTS gap) keeps its place on the timeline', { timeout: 60_000 }, async (t) => {
  const frames = Array.from({ length: 120 }, (_, i) => ({ index: i, pts: (BigInt(i) * NS) / 30n })).filter(
    ({ pts }) => pts < 1_500_000_000n || pts >= 2_500_000_000n,
  );
  t.equal(frames.length, 90);
  const { out, exit } = await encodeVideo(await tempDir(t), frames);
  t.same(exit, CLEAN_EXIT, 'gst finished cleanly');
  const duration = Number((await probe(out)).format.duration);
  t.ok(Math.abs(duration - 4) <= 0.1, `duration ${duration} ≈ 4 s`);
  const times = await packetTimes(out);
  t.equal(times.length, 90, 'no frames invented or lost');
  const gaps = times.slice(1).map((time, i) => time - (times[i] ?? 0));
  const largest = Math.max(...gaps);
  t.ok(Math.abs(largest - (1 + 1 / 30)) < 0.01, `largest gap between frames ${largest.toFixed(3)} s ≈ 1.033 s`);
});

// ---------------------------------------------------------------------------------------------------
// GdpParser and gdpRebasedHeader: reading what gst's own gdppay writes (the stream outputs)
// ---------------------------------------------------------------------------------------------------

type BufferPacket = Extract<GdpPacket, { type: 'buffer' }>;
type SegmentPacket = Extract<GdpPacket, { type: 'segment' }>;

/** What `gst-launch-1.0 -q <source> ! gdppay ! fdsink fd=1` writes (gdppay's defaults: header CRC on). */
async function gdppay(source: string[]): Promise<Buffer> {
  const { stdout } = await execa('gst-launch-1.0', ['-q', ...source, '!', 'gdppay', '!', 'fdsink', 'fd=1'], { encoding: 'buffer' });
  return Buffer.from(stdout);
}

/** A small deterministic PRNG (mulberry32), so a failing chunking can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Feeds `data` to a parser in random chunks of 1..max bytes. */
function parseChunked(data: Buffer, seed: number, max = 300): GdpPacket[] {
  const parser = new GdpParser();
  const rand = random(seed);
  const out: GdpPacket[] = [];
  for (let at = 0; at < data.length; ) {
    const n = 1 + Math.floor(rand() * max);
    out.push(...parser.push(data.subarray(at, at + n)));
    at += n;
  }
  return out;
}

const buffersOf = (packets: GdpPacket[]) => packets.filter((p): p is BufferPacket => p.type === 'buffer');

t.test('GdpParser on a real gdppay stream: AAC', { timeout: 60_000 }, async (t) => {
  const data = await gdppay(['audiotestsrc', 'num-buffers=20', '!', 'avenc_aac', '!', 'aacparse']);
  const whole = new GdpParser().push(data);
  for (const seed of [1, 2, 3]) {
    const packets = parseChunked(data, seed);
    t.same(packets.map((p) => p.type), whole.map((p) => p.type), `seed ${seed}: chunking changes nothing`);
    t.ok(Buffer.concat(packets.map((p) => p.packet)).equals(data), `seed ${seed}: the packets are the stream, byte for byte`);
  }
  const oneByte = parseChunked(data, 9, 1);
  t.equal(oneByte.length, whole.length, 'one byte at a time');

  t.same(whole.slice(0, 3).map((p) => p.type), ['event', 'caps', 'segment'], 'stream-start, caps, segment');
  t.ok(whole[0]!.packet.subarray(GDP_HEADER_LENGTH).toString().startsWith('GstEventStreamStart'));
  t.match(whole[1]!.packet.subarray(GDP_HEADER_LENGTH).toString(), /^audio\/mpeg, .*mpegversion=\(int\)4/);
  const segment = whole[2] as SegmentPacket;
  t.equal(segment.start, 0n);
  t.equal(segment.base, 0n);
  t.ok(whole.some((p) => p.type === 'event' && p.packet.subarray(GDP_HEADER_LENGTH).toString().startsWith('GstTagList')), 'tag events are events');
  const buffers = buffersOf(whole);
  // 20 × 1024 samples in, plus the encoder's 1024-sample priming delay flushed at EOS: 21 AAC frames.
  t.equal(buffers.length, 21, 'num-buffers + the one frame of encoder delay');
  t.ok(buffers.every((b) => b.keyFrame), 'AAC frames are not delta units');
  t.equal(buffers[0]!.ptsNs, 0n);
  t.ok(buffers.every((b, i) => i === 0 || b.ptsNs > buffers[i - 1]!.ptsNs), 'PTS increasing');
  t.equal(buffers[1]!.ptsNs, 23_219_954n, '1024 samples at 44.1 kHz');
  t.ok(whole.every((p) => (p.packet[2]! & 1) === 1), 'gdppay\'s default: header CRC flagged');
});

t.test('GdpParser, gdpRebasedHeader and gdpdepay on a real H.264 stream', { timeout: 120_000 }, async (t) => {
  const data = await gdppay(['videotestsrc', 'num-buffers=30', '!', 'x264enc', 'key-int-max=10', 'tune=zerolatency', '!', 'h264parse']);
  const packets = parseChunked(data, 42, 4000);
  t.ok(Buffer.concat(packets.map((p) => p.packet)).equals(data), 'the packets are the stream, byte for byte');
  t.same(packets.slice(0, 3).map((p) => p.type), ['event', 'caps', 'segment']);
  const caps = packets[1]!;
  t.match(caps.packet.subarray(GDP_HEADER_LENGTH).toString(), /^video\/x-h264, .*stream-format=\(string\)avc/);
  const segment = packets[2] as SegmentPacket;
  t.equal(segment.start, 3_600_000_000_000_000n, 'x264enc\'s segment starts at 1000 hours');
  t.equal(segment.base, 0n);
  const buffers = buffersOf(packets);
  t.equal(buffers.length, 30, 'num-buffers');
  t.same(buffers.flatMap((b, i) => (b.keyFrame ? [i] : [])), [0, 10, 20], 'key frames every key-int-max');
  t.equal(buffers[0]!.ptsNs, segment.start, 'the first frame at the segment start');
  t.equal(buffers[1]!.ptsNs - buffers[0]!.ptsNs, 33_333_333n, '30 fps');
  const offset = segment.start - segment.base;

  /** What UrlStream writes: stream-start, caps, a segment at 0, then the buffers from a key frame on, rebased. */
  const rebased = (from: number) => {
    const baseNs = buffers[from]!.ptsNs - offset;
    return Buffer.concat([
      gdpStreamStart('v'),
      caps.packet,
      gdpSegment(),
      ...buffers.slice(from).flatMap((b) => [gdpRebasedHeader(b.packet, offset + baseNs), b.packet.subarray(GDP_HEADER_LENGTH)]),
    ]);
  };
  const dir = await tempDir(t);
  for (const [from, frames] of [[0, 30], [10, 20]] as const) {
    const out = join(dir, `from-${from}.mp4`);
    await execa('gst-launch-1.0', ['-q', 'fdsrc', 'fd=0', '!', 'gdpdepay', '!', 'h264parse', '!', 'mp4mux', '!', 'filesink', `location=${out}`], { input: rebased(from) });
    const info = await probe(out);
    t.equal(info.streams[0]?.codec_name, 'h264', `from frame ${from}: H.264`);
    t.equal(info.streams[0]?.nb_frames, String(frames), `from frame ${from}: ${frames} frames`);
    const times = await packetTimes(out);
    t.equal(times[0], 0, `from frame ${from}: starts at 0`);
    const duration = Number(info.format.duration);
    t.ok(Math.abs(duration - frames / 30) < 0.05, `from frame ${from}: duration ${duration} ≈ ${(frames / 30).toFixed(3)} s`);
  }
});

t.test('gdpRebasedHeader', async (t) => {
  const payload = Buffer.from([9, 8, 7]);
  const packet = (pts: bigint, dts: bigint) => {
    const h = gdpBufferHeader(payload.length, pts, 20_000_000n);
    h.writeBigUInt64BE(dts, 44);
    h.writeUInt16BE(1 << 13, 42); // a delta unit
    h[2] = 0b11; // header and payload CRC
    h.writeUInt16BE(0xbeef, 58);
    h.writeUInt16BE(0xcafe, 60);
    return Buffer.concat([h, payload]);
  };
  const cases: [name: string, pts: bigint, dts: bigint, offset: bigint, wantPts: bigint, wantDts: bigint][] = [
    ['both moved back', 5n * NS, 4n * NS, 3n * NS, 2n * NS, 1n * NS],
    ['offset 0: unchanged', 5n * NS, 4n * NS, 0n, 5n * NS, 4n * NS],
    ['exactly at the offset: 0', 3n * NS, 3n * NS, 3n * NS, 0n, 0n],
    ['before the offset: clamped at 0', 5n * NS, 2n * NS, 3n * NS, 2n * NS, 0n],
    ['both before: both 0', 1n, 0n, 3n * NS, 0n, 0n],
    ['no DTS (NONE) stays NONE', 5n * NS, GST_NONE, 3n * NS, 2n * NS, GST_NONE],
    ['no PTS (NONE) stays NONE', GST_NONE, 4n * NS, 3n * NS, GST_NONE, 1n * NS],
    ['x264enc\'s 1000 hours', 3_600_000_033_333_333n, 3_600_000_033_333_333n, 3_600_000_000_000_000n, 33_333_333n, 33_333_333n],
  ];
  for (const [name, pts, dts, offset, wantPts, wantDts] of cases) {
    const p = packet(pts, dts);
    const before = Buffer.from(p);
    const h = gdpRebasedHeader(p, offset);
    t.equal(h.length, GDP_HEADER_LENGTH, `${name}: the header alone`);
    t.equal(h.readBigUInt64BE(10), wantPts, `${name}: pts`);
    t.equal(h.readBigUInt64BE(44), wantDts, `${name}: dts`);
    t.equal(h[2], 0b10, `${name}: header CRC flag cleared, payload CRC flag kept`);
    t.equal(h.readUInt16BE(58), 0, `${name}: header CRC zeroed`);
    t.equal(h.readUInt16BE(60), 0xcafe, `${name}: payload CRC kept`);
    const same = (from: number, to: number) => h.subarray(from, to).equals(p.subarray(from, to));
    t.ok(same(0, 2) && same(3, 10) && same(18, 44) && same(52, 58), `${name}: every other field copied (type, length, duration, offsets, flags)`);
    t.ok(p.equals(before), `${name}: the packet is not changed`);
  }
});
