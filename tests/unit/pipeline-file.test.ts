// The file graph builder, as a table, and run for real: gst-launch fed by GdpWriters the way a
// FileSink feeds it (mixed audio, video whose size changes mid-way), checked with ffprobe.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GdpWriter } from '../../handler/src/gst/gdp.ts';
import { startGst } from '../../handler/src/gst/runner.ts';
import { AUDIO_CAPS, containerFor, fileArgs, inputCount, VIDEO_CAPS, type FileGraph } from '../../handler/src/pipeline/file.ts';
import { markerAudio, markerVideo } from '../rig/marker-media.ts';
import { audioLevel, probe, videoChanges } from '../rig/probe.ts';

const A = { codec: 'aac', bitrateKbps: 128, frequency: 44100 } as const;
const V = { codec: 'h264', width: 1280, height: 720, fps: 30, bitrateKbps: 3000 } as const;

t.test('containers and encoders', async (t) => {
  const cases: [FileGraph, string[]][] = [
    [{ fileType: 'mp4', audio: A, video: V, location: 'x.mp4' }, ['mp4mux', 'avenc_aac', 'x264enc', 'video/x-raw,format=I420,width=1280,height=720,pixel-aspect-ratio=1/1', 'video/x-raw,framerate=30/1', 'video/x-h264,profile=main']],
    [{ fileType: 'ogg', audio: { codec: 'opus', bitrateKbps: 96, frequency: 48000 }, location: 'x.ogg' }, ['oggmux', 'opusenc', 'bitrate=96000', 'audio/x-raw,rate=48000,channels=2']],
    [{ fileType: 'mp3', audio: { codec: 'mp3', bitrateKbps: 128, frequency: 44100 }, location: 'x.mp3' }, ['xingmux', 'lamemp3enc', 'bitrate=128']],
    [{ fileType: 'webm', video: { codec: 'vp8', width: 640, height: 360, bitrateKbps: 3000 }, location: 'x.webm' }, ['webmmux', 'vp8enc']],
  ];
  for (const [g, want] of cases) {
    const args = fileArgs(g);
    for (const w of want) t.ok(args.includes(w), `${g.fileType}: ${w}`);
    t.equal(args.filter((a) => a.startsWith('fd=')).length, inputCount(g), `${g.fileType}: one fdsrc per input`);
  }
  t.notOk(fileArgs(cases[3]![0]).includes('videorate'), 'track egress video keeps its own timing');
  t.ok(fileArgs({ fileType: 'mp4', video: { ...V, keyFrameIntervalS: 4 }, location: 'x' }).includes('key-int-max=120'), 'key frame interval in frames');
  t.equal(containerFor('audio/opus'), 'ogg');
  t.equal(containerFor('video/H264'), 'mp4');
  t.equal(containerFor('video/vp9'), 'webm');
  t.throws(() => containerFor('video/av1'), { message: 'video/av1 is not yet supported' });
});

t.test('H.264 + AAC MP4 from GDP, with the input size changing mid-way, stays valid at the output size', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pipeline-file-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const location = join(dir, 'out.mp4');
  const graph: FileGraph = { fileType: 'mp4', audio: A, video: { ...V, width: 640, height: 360 }, location };
  const gst = startGst(fileArgs(graph), { extraFds: 2 });
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
});
