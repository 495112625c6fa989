// The job graph builder, as a table, and run for real: gst-launch fed by GdpWriters the way the
// Encoder feeds it (mixed audio, video whose size changes mid-way), one encode fanned out to a file,
// HLS segments and thumbnails, checked with ffprobe and the bus messages the sinks rely on.
import t from 'tap';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GdpWriter } from '../../handler/src/gst/gdp.ts';
import { startGst } from '../../handler/src/gst/runner.ts';
import { AUDIO_CAPS, encodeArgs, inputCount, VIDEO_CAPS, type Branch, type EncodeGraph } from '../../handler/src/pipeline/encode.ts';
import { containerFor } from '../../handler/src/pipeline/file.ts';
import type { GstElementMessage } from '../../handler/src/gst/runner.ts';
import { markerAudio, markerVideo } from '../rig/marker-media.ts';
import { audioLevel, probe, videoChanges } from '../rig/probe.ts';

const A = { codec: 'aac', bitrateKbps: 128, frequency: 44100 } as const;
const V = { codec: 'h264', width: 1280, height: 720, fps: 30, bitrateKbps: 3000, encode: true } as const;
const file = (fileType: 'mp4' | 'ogg' | 'mp3' | 'webm', location = `x.${fileType}`): Branch => ({ type: 'file', name: 'out0', fileType, location });

t.test('containers and encoders', async (t) => {
  const cases: [string, EncodeGraph, string[]][] = [
    ['mp4', { audio: A, video: V, branches: [file('mp4')] }, ['mp4mux', 'avenc_aac', 'x264enc', 'video/x-raw,format=I420,width=1280,height=720,pixel-aspect-ratio=1/1', 'video/x-raw,framerate=30/1', 'video/x-h264,profile=main']],
    ['ogg', { audio: { codec: 'opus', bitrateKbps: 96, frequency: 48000 }, branches: [file('ogg')] }, ['oggmux', 'opusenc', 'bitrate=96000', 'audio/x-raw,rate=48000,channels=2']],
    ['mp3', { audio: { codec: 'mp3', bitrateKbps: 128, frequency: 44100 }, branches: [file('mp3')] }, ['xingmux', 'lamemp3enc', 'bitrate=128', 'mpegaudioparse']],
    ['webm', { video: { codec: 'vp8', width: 640, height: 360, bitrateKbps: 3000, encode: true }, branches: [file('webm')] }, ['webmmux', 'vp8enc']],
    [
      'segments',
      { audio: A, video: V, branches: [{ type: 'segments', name: 'out0', location: 's_%05d.ts', segmentDurationS: 6 }] },
      ['splitmuxsink', 'muxer-factory=mpegtsmux', 'max-size-time=6000000000', 'send-keyframe-requests=true', 'out0.video', 'out0.audio_%u', 'h264parse', 'aacparse'],
    ],
    [
      'images only',
      { video: { ...V, encode: false }, branches: [{ type: 'images', name: 'out0', location: 'i_%05d.jpeg', captureIntervalS: 5, width: 320, height: 180 }] },
      ['jpegenc', 'multifilesink', 'post-messages=true', 'video/x-raw,framerate=1/5', 'video/x-raw,pixel-aspect-ratio=1/1,width=320,height=180', 'video/x-raw,format=RGB'],
    ],
  ];
  for (const [name, g, want] of cases) {
    const args = encodeArgs(g);
    for (const w of want) t.ok(args.includes(w), `${name}: ${w}`);
    t.equal(args.filter((a) => a.startsWith('fd=')).length, inputCount(g), `${name}: one fdsrc per input`);
  }
  t.notOk(encodeArgs(cases[3]![1]).includes('videorate'), 'track egress video keeps its own timing');
  t.notOk(encodeArgs(cases[5]![1]).includes('x264enc'), 'thumbnails alone encode no video');
  t.ok(encodeArgs({ video: { ...V, keyFrameIntervalS: 4 }, branches: [file('mp4')] }).includes('key-int-max=120'), 'key frame interval in frames');
  const both = encodeArgs({ audio: A, video: V, branches: [file('mp4'), { type: 'segments', name: 'out1', location: 's_%05d.ts', segmentDurationS: 4 }] });
  t.equal(both.filter((a) => a === 'x264enc').length, 1, 'file + segments: one video encode');
  t.equal(both.filter((a) => a === 'avenc_aac').length, 1, 'file + segments: one audio encode');
  t.equal(both.filter((a) => a === 'h264parse').length, 2, 'a parser per branch (avc for mp4, byte-stream for TS)');
  const audioHls = encodeArgs({ audio: A, branches: [{ type: 'segments', name: 'out0', location: 's_%05d.ts', segmentDurationS: 2 }] });
  t.notOk(audioHls.includes('send-keyframe-requests=true'), 'audio-only segments ask for no key frames (splitmuxsink hangs at EOS if so)');
  t.equal(containerFor('audio/opus'), 'ogg');
  t.equal(containerFor('video/H264'), 'mp4');
  t.equal(containerFor('video/vp9'), 'webm');
  t.throws(() => containerFor('video/av1'), { message: 'video/av1 is not yet supported' });
});

t.test('one encode to MP4 + HLS segments + thumbnails from GDP, with the input size changing mid-way', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pipeline-encode-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const location = join(dir, 'out.mp4');
  const graph: EncodeGraph = {
    audio: A,
    video: { ...V, width: 640, height: 360 },
    branches: [
      { type: 'file', name: 'out0', fileType: 'mp4', location },
      { type: 'segments', name: 'out1', location: join(dir, 'seg_%05d.ts'), segmentDurationS: 2 },
      { type: 'images', name: 'out2', location: join(dir, 'img_%05d.jpeg'), captureIntervalS: 1, width: 320, height: 180 },
    ],
  };
  const messages: GstElementMessage[] = [];
  const gst = startGst(encodeArgs(graph), { extraFds: 2, onMessage: (m) => messages.push(m) });
  const audio = new GdpWriter(gst.inputs[0]!, { streamId: 'a', caps: AUDIO_CAPS(48000, 2), maxBacklogBytes: Infinity });
  let size = { width: 320, height: 180 };
  const video = new GdpWriter(gst.inputs[1]!, { streamId: 'v', caps: VIDEO_CAPS(size.width, size.height), maxBacklogBytes: Infinity });
  const seconds = 4;
  for (let ms = 0; ms < seconds * 1000; ms += 10) {
    const s = markerAudio(ms / 10, 2);
    audio.write(new Uint8Array(s.buffer), BigInt(ms) * 1_000_000n, 10_000_000n);
    if (ms % 40 === 0) {
      const frame = ms / 40;
      if (frame === 50) {
        size = { width: 480, height: 360 }; // another aspect ratio: letterboxed
        video.setCaps(VIDEO_CAPS(size.width, size.height));
      }
      video.write(markerVideo(frame, 25, size.width, size.height), BigInt(ms) * 1_000_000n, null);
    }
  }
  await Promise.all([audio.end(), video.end()]);
  const exit = await gst.exited;
  t.equal(exit.code, 0, `gst exits cleanly (${exit.error ?? ''})`);
  const info = await probe(location);
  const v = info.streams.find((s) => s.codecType === 'video');
  const a = info.streams.find((s) => s.codecType === 'audio');
  t.equal(v?.codecName, 'h264');
  t.equal(v?.width, 640);
  t.equal(v?.height, 360);
  t.equal(v?.frameRate, 30, 'constant output rate');
  t.equal(a?.codecName, 'aac');
  t.equal(a?.sampleRate, 44100);
  t.ok(Math.abs(info.duration - seconds) < 0.2, `duration ${info.duration}`);
  t.ok((await audioLevel(location)).meanDb > -50, 'audio not silent');
  const changes = await videoChanges(location);
  t.ok(changes.distinctFrames > changes.frames / 3, `video changes (${changes.distinctFrames}/${changes.frames})`);

  const closed = messages.filter((m) => m.element === 'out1' && m.name === 'splitmuxsink-fragment-closed');
  t.equal(closed.length, 2, 'two 2 s segments, each reported closed');
  t.same(closed.map((m) => m.fields.location), [join(dir, 'seg_00000.ts'), join(dir, 'seg_00001.ts')]);
  const ends = closed.map((m) => Number(m.fields['running-time']) / 1e9);
  t.equal(ends[0], 2, 'the first segment closes at 2 s (running time)');
  t.ok(ends[1]! > 3.9 && ends[1]! <= 4, `the last closes at the last frame (${ends[1]} s)`);
  for (const m of closed) {
    const seg = await probe(m.fields.location!);
    t.same(seg.streams.map((s) => s.codecName).sort(), ['aac', 'h264'], `${m.fields.location}: H.264 + AAC in MPEG-TS`);
    t.ok(Math.abs(seg.duration - 2) < 0.15, `segment duration ${seg.duration}`);
  }
  const images = messages.filter((m) => m.element === 'out2' && m.name === 'GstMultiFileSink');
  t.ok(images.length >= 4 && images.length <= 5, `a thumbnail a second (${images.length})`);
  t.same(images.map((m) => Number(m.fields.index)), images.map((_, i) => i), 'indexes in order');
  t.equal((await readdir(dir)).filter((f) => f.endsWith('.jpeg')).length, images.length, 'each reported file is on disk');
  const jpeg = await probe(images[0]!.fields.filename!);
  t.equal(jpeg.streams[0]?.codecName, 'mjpeg');
  t.equal(jpeg.streams[0]?.width, 320);
  t.equal(jpeg.streams[0]?.height, 180);
});
