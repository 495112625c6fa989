// The per-URL publish graph (pipeline/stream.ts) as a table, its refusal of URLs that could become
// pipeline syntax, and for real: the job graph's stream branch (encoded media out on fds 5, 6) read
// through GdpParser and rebased the way sink/stream.ts does, into the publish graph with a file in
// place of the network sink (FLV for RTMP, MPEG-TS for SRT), checked with ffprobe.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { EgressError } from '../../shared/src/errors.ts';
import { GdpParser, GdpWriter, gdpRebasedHeader, gdpSegment, gdpStreamStart, type GdpPacket } from '../../handler/src/gst/gdp.ts';
import { startGst } from '../../handler/src/gst/runner.ts';
import { AUDIO_CAPS, encodeArgs, outputFds, VIDEO_CAPS, type EncodeGraph } from '../../handler/src/pipeline/encode.ts';
import { rtmpLocation, srtUri, streamPublishArgs, type StreamTarget } from '../../handler/src/pipeline/stream.ts';
import { markerAudio, markerVideo } from '../rig/marker-media.ts';
import { probe } from '../rig/probe.ts';

const FLV = ['flvmux', 'name=mux', 'streamable=true', '!'];
const TS = ['mpegtsmux', 'name=mux', 'alignment=7', '!'];
const RTMP_SINK = (location: string) => ['rtmp2sink', `location=${location}`, 'async-connect=false', 'sync=false', 'async=false'];
const SRT_SINK = (uri: string) => ['srtsink', `uri=${uri}`, 'wait-for-connection=false', 'sync=false', 'async=false'];
const IN = (fd: number) => ['fdsrc', `fd=${fd}`, '!', 'gdpdepay', '!'];
const AAC = ['aacparse', '!', 'queue', '!', 'mux.'];
const H264 = (format: 'avc' | 'byte-stream') => ['h264parse', '!', `video/x-h264,stream-format=${format},alignment=au`, '!', 'queue', '!', 'mux.'];

t.test('streamPublishArgs: mux and sink per protocol, fds 3/4 with audio first', async (t) => {
  const rtmp = 'rtmp://live.example.com/app/streamkey';
  const srt = 'srt://127.0.0.1:9000?mode=caller&latency=200';
  const cases: [string, StreamTarget, string[]][] = [
    ['RTMP audio + video', { protocol: 'rtmp', url: rtmp, audio: true, video: true }, [...FLV, ...RTMP_SINK(rtmp), ...IN(3), ...AAC, ...IN(4), ...H264('avc')]],
    ['RTMP audio only', { protocol: 'rtmp', url: rtmp, audio: true, video: false }, [...FLV, ...RTMP_SINK(rtmp), ...IN(3), ...AAC]],
    ['RTMP video only: video on fd 3', { protocol: 'rtmp', url: rtmp, audio: false, video: true }, [...FLV, ...RTMP_SINK(rtmp), ...IN(3), ...H264('avc')]],
    ['RTMP live=1 stripped', { protocol: 'rtmp', url: `${rtmp} live=1`, audio: true, video: true }, [...FLV, ...RTMP_SINK(rtmp), ...IN(3), ...AAC, ...IN(4), ...H264('avc')]],
    ['RTMPS', { protocol: 'rtmp', url: 'rtmps://h:443/app/k', audio: true, video: true }, [...FLV, ...RTMP_SINK('rtmps://h:443/app/k'), ...IN(3), ...AAC, ...IN(4), ...H264('avc')]],
    ['SRT audio + video', { protocol: 'srt', url: srt, audio: true, video: true }, [...TS, ...SRT_SINK(srt), ...IN(3), ...AAC, ...IN(4), ...H264('byte-stream')]],
    ['SRT video only: video on fd 3', { protocol: 'srt', url: srt, audio: false, video: true }, [...TS, ...SRT_SINK(srt), ...IN(3), ...H264('byte-stream')]],
    [
      'SRT access-control streamid: # escaped for srtsink',
      { protocol: 'srt', url: 'srt://h:1?streamid=#!::r=live,m=publish', audio: true, video: false },
      [...TS, ...SRT_SINK('srt://h:1?streamid=%23!::r=live,m=publish'), ...IN(3), ...AAC],
    ],
  ];
  for (const [name, target, want] of cases) t.same(streamPublishArgs(target), want, name);

  t.equal(rtmpLocation('rtmp://h/app/key live=1'), 'rtmp://h/app/key');
  t.equal(rtmpLocation('rtmp://h/app/key'), 'rtmp://h/app/key', 'nothing to strip');
  t.equal(rtmpLocation('rtmp://h/app/live=1'), 'rtmp://h/app/live=1', 'only the space-separated option');
  t.equal(rtmpLocation('rtmp://h/app/key live=1 live=1'), 'rtmp://h/app/key live=1', 'only once, at the end');
  t.equal(srtUri('srt://h:1?streamid=a#b#c'), 'srt://h:1?streamid=a%23b%23c');
  t.equal(srtUri('srt://h:1?streamid=x'), 'srt://h:1?streamid=x');
});

t.test('streamPublishArgs: a URL that could become pipeline syntax throws (defense in depth)', async (t) => {
  const bad: [string, StreamTarget['protocol'], string][] = [
    ['quote', 'rtmp', 'rtmp://h/app/key" ! filesink location=/etc/x'],
    ['space', 'rtmp', 'rtmp://h/app/key extra'],
    ['backslash', 'rtmp', 'rtmp://h/app/ke\\y'],
    ['tab', 'rtmp', 'rtmp://h/app/key\tx'],
    ['newline', 'rtmp', 'rtmp://h/app/key\n'],
    ['NUL', 'rtmp', 'rtmp://h/app/key\0'],
    ['space before live=1', 'rtmp', 'rtmp://h/app/key  live=1'],
    ['quote', 'srt', 'srt://h:1?streamid="x"'],
    ['space', 'srt', 'srt://h:1?streamid=a b'],
    ['backslash', 'srt', 'srt://h:1?streamid=a\\b'],
    ['live=1 is an RTMP option only', 'srt', 'srt://h:1?streamid=x live=1'],
  ];
  for (const [what, protocol, url] of bad) {
    t.throws(
      () => streamPublishArgs({ protocol, url, audio: true, video: true }),
      new EgressError('invalid_argument', 'stream url has characters gst-launch cannot take'),
      `${protocol} ${what}: ${JSON.stringify(url)}`,
    );
  }
});

t.test('real gst: srtsink gets the whole access-control streamid', { timeout: 30_000 }, async (t) => {
  // srtsink in caller mode with nobody listening, wait-for-connection=false: it only logs its parameters.
  const streamid = async (uri: string) => {
    const { stderr } = await execa('gst-launch-1.0', ['fakesrc', 'num-buffers=1', '!', 'srtsink', `uri=${uri}`, 'wait-for-connection=false'], {
      env: { GST_DEBUG: 'srtobject:6', GST_DEBUG_NO_COLOR: '1' },
      reject: false,
    });
    return /streamid=\(string\)("(?:[^"\\]|\\.)*"|[^,;]*)/.exec(stderr)?.[1];
  };
  const url = 'srt://127.0.0.1:9?streamid=#!::r=live,m=publish';
  t.equal(await streamid(url), '""', 'the raw # starts a fragment srtsink ignores');
  const args = streamPublishArgs({ protocol: 'srt', url, audio: false, video: true });
  const uri = args.find((a) => a.startsWith('uri='))!.slice('uri='.length);
  t.equal(await streamid(uri), '"\\#\\!::r\\=live\\,m\\=publish"', 'escaped, it arrives (shown in GstStructure escaping)');
});

// ---------------------------------------------------------------------------------------------------
// The job graph's stream branch
// ---------------------------------------------------------------------------------------------------

const A = { codec: 'aac', bitrateKbps: 128, frequency: 44100 } as const;
const V = { codec: 'h264', width: 1280, height: 720, fps: 30, bitrateKbps: 3000, encode: true } as const;
const AUDIO_OUT = (fd: number) => ['aenc.', '!', 'queue', '!', 'aacparse', '!', 'gdppay', 'crc-header=false', '!', 'fdsink', `fd=${fd}`, 'sync=false'];
const VIDEO_OUT = (fd: number) => [
  'venc.', '!', 'queue', '!', 'h264parse', 'config-interval=-1', '!', 'video/x-h264,stream-format=byte-stream,alignment=au', '!',
  'gdppay', 'crc-header=false', '!', 'fdsink', `fd=${fd}`, 'sync=false',
];

/** Whether `seq` occurs in `args` as consecutive elements. */
function containsRun(args: string[], seq: string[]): boolean {
  for (let i = 0; i + seq.length <= args.length; i++) if (seq.every((s, j) => args[i + j] === s)) return true;
  return false;
}

t.test('outputFds and the stream branch of encodeArgs', async (t) => {
  const fileAndStream: EncodeGraph = { audio: A, video: V, branches: [{ type: 'file', name: 'out0', fileType: 'mp4', location: 'x.mp4' }, { type: 'stream', name: 'out1' }] };
  t.same(outputFds(fileAndStream), [{ branch: 'out1', kind: 'audio', fd: 5 }, { branch: 'out1', kind: 'video', fd: 6 }], 'inputs on 3, 4; outputs 5 (audio), 6 (video)');
  const args = encodeArgs(fileAndStream);
  t.same(args.filter((a) => a.startsWith('fd=')), ['fd=3', 'fd=5', 'fd=4', 'fd=6'], 'fdsrc 3, 4 and fdsink 5, 6, nothing else');
  t.ok(containsRun(args, ['fdsrc', 'fd=3', '!', 'gdpdepay']), 'audio input on fd 3');
  t.ok(containsRun(args, ['fdsrc', 'fd=4', '!', 'gdpdepay']), 'video input on fd 4');
  t.ok(containsRun(args, AUDIO_OUT(5)), 'encoded audio → aacparse → gdppay → fd 5');
  t.ok(containsRun(args, VIDEO_OUT(6)), 'encoded video → byte-stream h264parse resending SPS/PPS → gdppay → fd 6');
  t.ok(containsRun(args, ['venc.', '!', 'queue', '!', 'h264parse', '!', 'out0.']), 'the file keeps its own plain parser');
  t.ok(containsRun(args, ['aenc.', '!', 'queue', '!', 'aacparse', '!', 'out0.']));
  t.equal(args.filter((a) => a === 'x264enc').length, 1, 'one video encode for file and stream');
  t.equal(args.filter((a) => a === 'avenc_aac').length, 1, 'one audio encode for file and stream');

  const two: EncodeGraph = { audio: A, video: V, branches: [{ type: 'stream', name: 'out0' }, { type: 'stream', name: 'out1' }] };
  t.same(outputFds(two), [
    { branch: 'out0', kind: 'audio', fd: 5 },
    { branch: 'out0', kind: 'video', fd: 6 },
    { branch: 'out1', kind: 'audio', fd: 7 },
    { branch: 'out1', kind: 'video', fd: 8 },
  ]);
  const twoArgs = encodeArgs(two);
  for (const [run, what] of [[AUDIO_OUT(5), 'out0 audio'], [VIDEO_OUT(6), 'out0 video'], [AUDIO_OUT(7), 'out1 audio'], [VIDEO_OUT(8), 'out1 video']] as const) {
    t.ok(containsRun(twoArgs, [...run]), what);
  }

  const audioOnly: EncodeGraph = { audio: A, branches: [{ type: 'stream', name: 'out0' }] };
  t.same(outputFds(audioOnly), [{ branch: 'out0', kind: 'audio', fd: 4 }], 'audio alone: input 3, output 4');
  t.ok(containsRun(encodeArgs(audioOnly), AUDIO_OUT(4)));
  const videoOnly: EncodeGraph = { video: V, branches: [{ type: 'stream', name: 'out0' }] };
  t.same(outputFds(videoOnly), [{ branch: 'out0', kind: 'video', fd: 4 }], 'video alone: input 3, output 4');
  t.ok(containsRun(encodeArgs(videoOnly), VIDEO_OUT(4)));
  t.same(outputFds({ audio: A, video: V, branches: [{ type: 'file', name: 'out0', fileType: 'mp4', location: 'x.mp4' }] }), [], 'no stream branch, no outputs');
  const withImages: EncodeGraph = {
    audio: A,
    video: V,
    branches: [{ type: 'images', name: 'out0', location: 'i_%05d.jpeg', captureIntervalS: 5, width: 0, height: 0 }, { type: 'stream', name: 'out1' }],
  };
  t.same(outputFds(withImages).map((f) => f.fd), [5, 6], 'images take no output fd');
});

t.test('real gst: the stream branch\'s output, rebased as the sink does, muxes to FLV and MPEG-TS', { timeout: 120_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pipeline-stream-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const graph: EncodeGraph = {
    audio: A,
    video: { ...V, width: 320, height: 180, keyFrameIntervalS: 1 },
    branches: [{ type: 'stream', name: 'out0' }],
  };
  const fds = outputFds(graph);
  const gst = startGst(encodeArgs(graph), { extraFds: 2, outputFds: fds.length });
  const packets: Record<'audio' | 'video', GdpPacket[]> = { audio: [], video: [] };
  const read = fds.map((f, i) => {
    const parser = new GdpParser();
    const out = gst.outputs[i]!;
    out.on('data', (chunk: Buffer) => packets[f.kind].push(...parser.push(chunk)));
    return new Promise((r) => out.once('close', r));
  });
  const audio = new GdpWriter(gst.inputs[0]!, { streamId: 'a', caps: AUDIO_CAPS(48000, 2), maxBacklogBytes: Infinity });
  const video = new GdpWriter(gst.inputs[1]!, { streamId: 'v', caps: VIDEO_CAPS(320, 180), maxBacklogBytes: Infinity });
  const seconds = 3;
  for (let ms = 0; ms < seconds * 1000; ms += 10) {
    audio.write(new Uint8Array(markerAudio(ms / 10, 2).buffer), BigInt(ms) * 1_000_000n, 10_000_000n);
    if (ms % 40 === 0) video.write(markerVideo(ms / 40, 25, 320, 180), BigInt(ms) * 1_000_000n, null);
  }
  await Promise.all([audio.end(), video.end()]);
  const exit = await gst.exited;
  await Promise.all(read);
  t.equal(exit.code, 0, `encode exits cleanly (${exit.error ?? ''})`);

  const caps = (k: 'audio' | 'video') => packets[k].find((p) => p.type === 'caps')!.packet.subarray(62).toString();
  t.match(caps('audio'), /^audio\/mpeg, .*mpegversion=\(int\)4/, 'AAC out');
  t.match(caps('video'), /^video\/x-h264, .*stream-format=\(string\)byte-stream/, 'H.264 byte-stream out');
  const buffers = (k: 'audio' | 'video') => packets[k].filter((p): p is Extract<GdpPacket, { type: 'buffer' }> => p.type === 'buffer');
  const segmentOf = (k: 'audio' | 'video') => packets[k].find((p): p is Extract<GdpPacket, { type: 'segment' }> => p.type === 'segment')!;
  t.equal(buffers('video').length, seconds * 30, 'every frame at the constant rate');
  const keys = buffers('video').flatMap((b, i) => (b.keyFrame ? [i] : []));
  // At least one a second (key-int-max); the marker video's jumps also make x264enc cut scenes.
  t.ok([0, 30, 60].every((k) => keys.includes(k)), `key frames at 0, 30, 60 (${keys.join(' ')})`);
  t.ok(packets.video.every((p) => p.packet.readUInt8(2) === 0), 'crc-header=false: no CRC flags');

  // As UrlStream.packet: start at the second key frame (a URL that joins late), rebase to 0.
  const offset = { audio: segmentOf('audio').start - segmentOf('audio').base, video: segmentOf('video').start - segmentOf('video').base };
  t.equal(offset.video, 3_600_000_000_000_000n, 'x264enc\'s 1000 hours');
  const baseNs = buffers('video')[30]!.ptsNs - offset.video;
  t.equal(baseNs, 1_000_000_000n);
  const feed = (k: 'audio' | 'video') =>
    Buffer.concat([
      gdpStreamStart(k),
      packets[k].find((p) => p.type === 'caps')!.packet,
      gdpSegment(),
      ...buffers(k)
        .filter((b) => b.ptsNs - offset[k] >= baseNs)
        .flatMap((b) => [gdpRebasedHeader(b.packet, offset[k] + baseNs), b.packet.subarray(62)]),
    ]);
  for (const protocol of ['rtmp', 'srt'] as const) {
    const file = join(dir, protocol === 'rtmp' ? 'out.flv' : 'out.ts');
    const args = streamPublishArgs({ protocol, url: protocol === 'rtmp' ? 'rtmp://h/app/key' : 'srt://h:1', audio: true, video: true });
    const sink = args.indexOf(protocol === 'rtmp' ? 'rtmp2sink' : 'srtsink');
    args.splice(sink, 5, 'filesink', `location=${file}`);
    const pub = startGst(args, { extraFds: 2 });
    pub.inputs[0]!.end(feed('audio'));
    pub.inputs[1]!.end(feed('video'));
    const pubExit = await pub.exited;
    t.equal(pubExit.code, 0, `${protocol}: publish graph exits cleanly (${pubExit.error ?? ''})`);
    const info = await probe(file);
    t.same(info.streams.map((s) => s.codecName).sort(), ['aac', 'h264'], `${protocol}: H.264 + AAC`);
    t.ok(Math.abs(info.duration - (seconds - 1)) < 0.15, `${protocol}: from the joined key frame to the end (${info.duration} s)`);
  }
});
