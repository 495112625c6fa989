// The zero-transcode graph (pipeline/rtp.ts) and the forwarder that feeds it (source/rtp/forwarder.ts),
// run for real: a gst sender encodes and payloads test media to a socket of the test's, which hands
// each packet to an RtpForwarder (with another payload type than gst's caps name, as the SFU would
// negotiate), and the remuxing gst writes the file. Nothing in between decodes; ffprobe checks the
// container, the codec and the duration. No LiveKit here: tests/integration/track-rtp.test.ts has that.
import t from 'tap';
import dgram from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { startGst } from '../../handler/src/gst/runner.ts';
import { encodeArgs, encodeGraph, type FileBranch } from '../../handler/src/pipeline/encode.ts';
import { containerFor } from '../../handler/src/pipeline/file.ts';
import { remuxes, RTP_PAYLOAD_TYPE, rtpArgs, type RtpCapture } from '../../handler/src/pipeline/rtp.ts';
import { freeUdpPorts, RtpForwarder, withPayloadType } from '../../handler/src/source/rtp/forwarder.ts';
import { isBlankFrame, rtpPayload, startsKeyFrame } from '../../handler/src/source/rtp/frames.ts';
import type { PipelineConfig } from '@egress/shared/plan/pipeline-config.ts';
import { audioLevel, probe, videoChanges } from '../rig/probe.ts';

const capture = (mimeType: string): RtpCapture => ({ type: 'rtp', mimeType, rtpPort: 5000, rtcpPort: 5001 });
const file = (mimeType: string): FileBranch => ({ type: 'file', name: 'out0', fileType: containerFor(mimeType), location: '/x/out' });

t.test('the graph of each codec', async (t) => {
  const cases: [string, string[], string[]][] = [
    ['audio/opus', ['encoding-name=OPUS', 'clock-rate=48000', 'rtpopusdepay', 'opusparse', 'oggmux'], ['opusenc', 'opusdec']],
    ['audio/pcmu', ['encoding-name=PCMU', 'clock-rate=8000', 'mulawdec', 'opusenc', 'oggmux'], []],
    ['audio/pcma', ['encoding-name=PCMA', 'alawdec', 'opusenc', 'oggmux'], []],
    ['video/vp8', ['encoding-name=VP8', 'clock-rate=90000', 'rtpvp8depay', 'wait-for-keyframe=true', 'webmmux'], ['vp8enc', 'vp8dec']],
    ['video/vp9', ['encoding-name=VP9', 'rtpvp9depay', 'vp9parse', 'webmmux'], ['vp9enc']],
    ['video/H264', ['encoding-name=H264', 'rtph264depay', 'h264parse', 'mp4mux', 'fragment-duration=1000'], ['x264enc', 'avdec_h264']],
  ];
  for (const [mime, want, never] of cases) {
    t.ok(remuxes(mime), `${mime} is remuxed`);
    const args = rtpArgs(capture(mime), file(mime));
    const flat = args.join(' ');
    for (const w of want) t.ok(flat.includes(w), `${mime}: ${w}`);
    for (const n of never) t.notOk(args.includes(n), `${mime}: no ${n}`);
    t.ok(flat.includes(`payload=${RTP_PAYLOAD_TYPE}`), `${mime}: the forwarder's payload type in the caps`);
    t.same(args.filter((a) => a.startsWith('port=')), ['port=5000', 'port=5001'], `${mime}: RTP and RTCP ports`);
    t.ok(args.every((a) => !a.startsWith('address=') || a === 'address=127.0.0.1'), `${mime}: loopback only`);
  }
  t.notOk(remuxes('video/av1'));
  t.throws(() => rtpArgs(capture('video/av1'), file('video/vp8')), { message: 'video/av1 is not yet supported' });

  const plan = { passthrough: true } as PipelineConfig;
  const g = encodeGraph(plan, [file('audio/opus')], undefined, capture('audio/opus'));
  t.same(g, { capture: capture('audio/opus'), branches: [file('audio/opus')] }, 'a passthrough plan with RTP encodes nothing');
  t.same(encodeArgs(g), rtpArgs(capture('audio/opus'), file('audio/opus')));
});

t.test('the payload type is rewritten, the marker bit kept', async (t) => {
  const p = Buffer.from([0x80, 0x80 | 111, 0, 1]);
  t.same([...withPayloadType(p)], [0x80, 0x80 | 96, 0, 1]);
  t.same([...withPayloadType(Buffer.from([0x80, 100, 0, 1]))], [0x80, 96, 0, 1]);
});

t.test('the RTP payload, past the CSRCs, the header extension and the padding', async (t) => {
  const header = Buffer.from([0x80, 96, 0, 1, 0, 0, 0, 9, 0, 0, 0, 1]);
  t.same([...rtpPayload(Buffer.concat([header, Buffer.from([7, 8])]))], [7, 8]);
  const csrc = Buffer.from(header);
  csrc[0] = 0x81;
  t.same([...rtpPayload(Buffer.concat([csrc, Buffer.alloc(4), Buffer.from([7])]))], [7], 'one CSRC');
  const ext = Buffer.from(header);
  ext[0] = 0x90;
  t.same([...rtpPayload(Buffer.concat([ext, Buffer.from([0xbe, 0xde, 0, 1, 1, 2, 3, 4, 7])]))], [7], 'a one-word extension');
  const padded = Buffer.from(header);
  padded[0] = 0xa0;
  t.same([...rtpPayload(Buffer.concat([padded, Buffer.from([7, 0, 0, 3])]))], [7], 'three bytes of padding');
  t.equal(rtpPayload(Buffer.alloc(5)).length, 0, 'too short');
  const rtp = (payload: number[]) => Buffer.concat([header, Buffer.from(payload)]);
  t.ok(startsKeyFrame('video/h264', rtp([0x65])), 'H.264 IDR');
  t.ok(startsKeyFrame('video/h264', rtp([0x78, 0, 2, 0x67, 0, 0, 2, 0x68, 0])), 'H.264 STAP-A with an SPS');
  t.ok(startsKeyFrame('video/h264', rtp([0x7c, 0x85])), 'H.264 FU-A starting an IDR');
  t.notOk(startsKeyFrame('video/h264', rtp([0x7c, 0x05])), 'H.264 FU-A continuing an IDR');
  t.notOk(startsKeyFrame('video/h264', rtp([0x41])), 'H.264 P slice');
  t.ok(startsKeyFrame('video/vp8', rtp([0x90, 0x80, 0x81, 0x23, 0x10])), 'VP8 key frame, 15-bit picture id');
  t.notOk(startsKeyFrame('video/vp8', rtp([0x90, 0x80, 0x81, 0x23, 0x11])), 'VP8 inter frame');
  t.notOk(startsKeyFrame('video/vp8', rtp([0x80, 0x80, 0x81, 0x23, 0x10])), 'VP8 not the start of a frame');
  t.ok(startsKeyFrame('video/vp9', rtp([0x08])), 'VP9 start, not predicted');
  t.notOk(startsKeyFrame('video/vp9', rtp([0x48])), 'VP9 predicted');
  t.ok(startsKeyFrame('audio/opus', rtp([1])), 'any audio packet');
  t.notOk(startsKeyFrame('video/av1', rtp([0])), 'an unknown video codec never');
  // livekit-server's own bytes (sfu/downtrack.go), behind the descriptors it sends them with.
  const vp8Blank = [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x08, 0x00, 0x08, 0x00, 0x00, 0x47, 0x08, 0x85];
  t.ok(isBlankFrame('video/vp8', rtp([0x90, 0x80, 0x81, 0x23, ...vp8Blank])), 'the SFU\'s 8x8 VP8 blank frame');
  t.ok(startsKeyFrame('video/vp8', rtp([0x90, 0x80, 0x81, 0x23, ...vp8Blank])), 'which is a key frame too');
  t.notOk(isBlankFrame('video/vp8', rtp([0x90, 0x80, 0x81, 0x23, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01])), 'a 640x360 key frame is not');
  const sps = [0x67, 0x42, 0xc0, 0x1f, 0x0f, 0xd9, 0x1f, 0x88, 0x88, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x60, 0xc9, 0x20];
  t.ok(isBlankFrame('video/h264', rtp([0x18, 0, sps.length, ...sps, 0, 6, 0x68, 0x87, 0xcb, 0x83, 0xcb, 0x20])), 'the SFU\'s 2x2 H.264 blank frame');
  t.notOk(isBlankFrame('video/h264', rtp([0x18, 0, 4, 0x67, 0x42, 0xc0, 0x1e, 0, 2, 0x68, 0x87])), 'another STAP-A is not');
  t.notOk(isBlankFrame('audio/opus', rtp([0xf8, 0xff, 0xfe])), 'Opus silence is sound, kept');
});

/** gst encoding test media to RTP on `port`, for `seconds`. */
function sender(kind: 'opus' | 'vp8' | 'h264', port: number, seconds: number) {
  const video = (enc: string[], pay: string[]) => [
    'videotestsrc', 'is-live=true', 'pattern=smpte', 'horizontal-speed=8', `num-buffers=${seconds * 30}`, '!', 'video/x-raw,width=640,height=360,framerate=30/1', '!', ...enc, '!', ...pay,
  ];
  const media = {
    opus: ['audiotestsrc', 'is-live=true', 'wave=sine', 'freq=440', `num-buffers=${seconds * 50}`, 'samplesperbuffer=960', '!', 'audio/x-raw,rate=48000,channels=2', '!', 'opusenc', '!', 'rtpopuspay', 'pt=111'],
    vp8: video(['vp8enc', 'deadline=1', 'keyframe-max-dist=30'], ['rtpvp8pay', 'pt=100', 'mtu=1200']),
    h264: video(['x264enc', 'tune=zerolatency', 'speed-preset=ultrafast', 'key-int-max=30', '!', 'video/x-h264,profile=constrained-baseline'], ['rtph264pay', 'pt=108', 'config-interval=-1', 'mtu=1200']),
  }[kind];
  return execa('gst-launch-1.0', ['-q', ...media, '!', 'udpsink', 'host=127.0.0.1', `port=${port}`]);
}

for (const [kind, mime, codecName] of [['opus', 'audio/opus', 'opus'], ['vp8', 'video/vp8', 'vp8'], ['h264', 'video/h264', 'h264']] as const) {
  t.test(`${mime} RTP → ${containerFor(mime)}, remuxed through the forwarder`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'pipeline-rtp-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const [rtpPort, rtcpPort] = await freeUdpPorts(2);
    const location = join(dir, `out.${containerFor(mime)}`);
    const gst = startGst(rtpArgs({ type: 'rtp', mimeType: mime, rtpPort: rtpPort!, rtcpPort: rtcpPort! }, { ...file(mime), location }), { extraFds: 0 });
    const forwarder = new RtpForwarder({ rtp: rtpPort!, rtcp: rtcpPort! });
    const inbound = dgram.createSocket('udp4');
    await new Promise<void>((r) => inbound.bind(0, '127.0.0.1', () => r()));
    const keyFrames = new Set<number>();
    inbound.on('message', (m) => {
      if (startsKeyFrame(mime, m)) keyFrames.add(m.readUInt32BE(4));
      forwarder.rtp(m);
    });
    // Held until gst listens, as while a subscription races gst's start.
    const seconds = 3;
    const send = sender(kind, inbound.address().port, seconds);
    await gst.playing;
    // Packets held for a while, then flushed at once: what a slow gst start looks like to rtpbin.
    await new Promise((r) => setTimeout(r, 300));
    forwarder.open();
    await send;
    await new Promise((r) => setTimeout(r, 500));
    const exit = await gst.stop();
    inbound.close();
    forwarder.close();
    t.equal(exit.code, 0, `gst exits cleanly (${exit.error ?? ''})`);
    const info = await probe(location);
    t.same(info.streams.map((s) => s.codecName), [codecName], `one ${codecName} stream`);
    t.ok(Math.abs(info.duration - seconds) < 0.4, `duration ${info.duration.toFixed(2)} s of ${seconds} s sent`);
    if (kind === 'opus') {
      t.ok((await audioLevel(location)).meanDb > -40, 'audio not silent');
      t.ok(keyFrames.size >= seconds * 50 - 2, `every audio packet can begin a file (${keyFrames.size})`);
    } else {
      // One every 30 frames of 90: at 0, 1 and 2 s, and no other packet taken for one.
      t.equal(keyFrames.size, seconds, `the key frames are told from the payload descriptors (${keyFrames.size})`);
      t.equal(info.streams[0]?.width, 640);
      t.equal(info.streams[0]?.height, 360);
      const changes = await videoChanges(location);
      t.ok(changes.distinctFrames > changes.frames / 2, `video changes (${changes.distinctFrames}/${changes.frames})`);
    }
    const { stderr } = await execa('ffmpeg', ['-v', 'error', '-i', location, '-f', 'null', '-']);
    t.equal(stderr.trim(), '', 'decodes with no error');
  });
}
