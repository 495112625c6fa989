// Pure: the one gst-launch graph of a job. Its raw media (GDP on fds 3, 4: audio first when present)
// is encoded once and fanned out to every gst output (file, HLS segments, thumbnails) through tees.
//
//   fd 3 → audio convert → encoder → tee aenc ─┬→ queue → parser → file muxer
//                                              └→ queue → parser → segment muxer
//   fd 4 → video convert/scale → tee vraw ─┬→ queue → encoder → tee venc ─┬→ queue → parser → file muxer
//                                          │                              └→ queue → parser → segment muxer
//                                          └→ queue (leaky) → videorate → jpegenc → multifilesink
//
// A web source is captured inside the same graph instead: ximagesrc on its X display and pulsesrc on
// its sink's monitor take the place of the fds, and everything after them is the same. A track
// egress that receives RTP is not encoded at all: pipeline/rtp.ts has its graph.
//
// A stream output takes the encoded audio and video out again (GDP on fds after the inputs): Node
// fans them out to one process per URL (sink/stream.ts), so one failing server never touches gst.
//
// The tees take the encoders' raw output and every branch has its own parser: mp4/flv want
// avc/raw AAC, mpegts wants byte-stream/ADTS, and a tee after one parser fails to negotiate both.
// Branch elements are named after their output (f0, s1, i2), which is how the bus messages that
// `gst-launch -m` prints reach the right sink.
import { EgressError } from '@egress/shared/errors.ts';
import type { FileType, H264Profile, PipelineConfig } from '@egress/shared/plan/pipeline-config.ts';
import { passthroughEncode } from './file.ts';
import { rtpArgs, type RtpCapture } from './rtp.ts';

export interface AudioEncode {
  codec: 'opus' | 'aac' | 'mp3';
  bitrateKbps: number;
  frequency: number;
}

export interface VideoEncode {
  codec: 'h264' | 'vp8';
  width: number;
  height: number;
  /** Constant output rate; undefined keeps the source's own frame timing (track egress). */
  fps?: number;
  bitrateKbps: number;
  profile?: H264Profile;
  /** Seconds between key frames; 0 = every 2 s (fragments, segments and recovery want regular ones). */
  keyFrameIntervalS?: number;
}

export interface FileBranch {
  type: 'file';
  name: string;
  fileType: FileType;
  location: string;
}

export interface SegmentsBranch {
  type: 'segments';
  name: string;
  /** splitmuxsink's location: a printf pattern with one %05d. */
  location: string;
  segmentDurationS: number;
}

export interface ImagesBranch {
  type: 'images';
  name: string;
  /** multifilesink's location: a printf pattern with one %05d. */
  location: string;
  captureIntervalS: number;
  /** 0 keeps the raw video's size. */
  width: number;
  height: number;
}

export interface StreamBranch {
  type: 'stream';
  name: string;
}

export type Branch = FileBranch | SegmentsBranch | ImagesBranch | StreamBranch;

/** A web source's display and sound, which gst captures itself (no input fds then). */
export interface ScreenCapture {
  type: 'screen';
  /** The X display, e.g. `:3`. */
  display: string;
  /** The PulseAudio source to record: the job's null sink's monitor. */
  pulseDevice: string;
}

/** What gst takes in itself rather than from Node's fds: a screen, or a track's RTP (pipeline/rtp.ts). */
export type CaptureInput = ScreenCapture | RtpCapture;

export interface EncodeGraph {
  capture?: CaptureInput;
  /** The audio encoder, when some branch takes audio. */
  audio?: AudioEncode;
  /** The raw video size and rate, and its encoder; `encode` is false when only images take video. */
  video?: VideoEncode & { encode: boolean };
  branches: Branch[];
}

/** The muxer of each container; MP4 is fragmented so a killed recording stays readable. */
const MUX: Record<FileType, string[]> = {
  mp4: ['mp4mux', 'fragment-duration=1000'],
  webm: ['webmmux'],
  ogg: ['oggmux'],
  // xingmux writes the frame count and seek table, so players know the duration.
  mp3: ['xingmux'],
};

const input = (fd: number) => [
  'fdsrc', `fd=${fd}`, '!', 'gdpdepay', '!',
  // Unbounded in buffers and bytes: the writer in Node bounds the backlog (drops video, never audio).
  'queue', 'max-size-buffers=0', 'max-size-bytes=0', 'max-size-time=3000000000', '!',
];

/**
 * Both are live sources on one clock: pulsesrc provides the pipeline's (PulseAudio's, driven by the
 * null sink) and stamps its samples by their count on it; ximagesrc stamps each grab with the same
 * clock's running time. Measured with flash + beep markers: 0-50 ms apart. With provide-clock=false
 * pulsesrc slaves to the system clock instead and started 240-380 ms off, early or late from one
 * run to the next; do-timestamp=true stamps arrival times, whose jitter audiorate would then "fix"
 * with inserted and dropped samples.
 * Their leaky queues drop the oldest media when the encoder falls behind instead of stalling the
 * capture (a stalled pulsesrc overruns and a stalled ximagesrc skips, both worse).
 */
const LIVE_QUEUE = ['queue', 'leaky=downstream', 'max-size-buffers=0', 'max-size-bytes=0', 'max-size-time=3000000000', '!'];

const captureVideo = (c: ScreenCapture, v: VideoEncode) => [
  'ximagesrc', `display-name=${c.display}`, 'use-damage=false', 'show-pointer=false', '!',
  // The display is exactly the output size; pinned so a change there fails loudly instead of renegotiating.
  `video/x-raw,framerate=${v.fps ?? 30}/1,width=${v.width},height=${v.height}`, '!', ...LIVE_QUEUE,
];

const captureAudio = (c: ScreenCapture) => [
  'pulsesrc', `device=${c.pulseDevice}`, '!',
  // The sink's own format (shared/src/pulse.ts), so pulse converts nothing.
  'audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=2', '!',
  // Samples pulsesrc drops when the machine is busy become silence, so the sound keeps its place on
  // the time line instead of moving earlier after every gap (the reference's audiorate, 3 ms).
  'audiorate', 'skip-to-first=true', 'tolerance=3000000', '!', ...LIVE_QUEUE,
];

function audioEncoder(a: AudioEncode): string[] {
  switch (a.codec) {
    case 'opus':
      return ['opusenc', `bitrate=${a.bitrateKbps * 1000}`];
    case 'aac':
      // No mid/side or intensity stereo: at 128 kb/s they bleed one channel into the other (measured:
      // a left-only tone came out 2 dB louder on the right), and dual-channel recordings (agent left,
      // caller right) must keep them apart (with both off: 40 dB).
      return ['avenc_aac', `bitrate=${a.bitrateKbps * 1000}`, 'aac-ms=false', 'aac-is=false'];
    case 'mp3':
      return ['lamemp3enc', 'target=bitrate', 'cbr=true', `bitrate=${a.bitrateKbps}`];
  }
}

const AUDIO_PARSER: Record<AudioEncode['codec'], string[]> = { opus: [], aac: ['aacparse', '!'], mp3: ['mpegaudioparse', '!'] };
const VIDEO_PARSER: Record<VideoEncode['codec'], string[]> = { h264: ['h264parse', '!'], vp8: [] };

function videoEncoder(v: VideoEncode): string[] {
  const fps = v.fps ?? 30;
  const keyInt = Math.max(1, Math.round((v.keyFrameIntervalS || 2) * fps));
  if (v.codec === 'vp8') {
    return [
      'vp8enc', 'deadline=1', 'cpu-used=8', 'threads=2', 'token-partitions=2', `target-bitrate=${v.bitrateKbps * 1000}`,
      `keyframe-max-dist=${keyInt}`, 'end-usage=cbr',
    ];
  }
  return ['x264enc', 'speed-preset=veryfast', 'tune=zerolatency', `key-int-max=${keyInt}`, `bitrate=${v.bitrateKbps}`, '!', `video/x-h264,profile=${v.profile ?? 'main'}`];
}

/** Whether a branch takes audio / encoded video. */
export const takesAudio = (b: Branch): boolean => b.type !== 'images';
export const takesEncodedVideo = (b: Branch): boolean => b.type !== 'images';

/** An encoded stream that gst writes out: which branch, which media, which fd. */
export interface OutputFd {
  branch: string;
  kind: 'audio' | 'video';
  fd: number;
}

/** The fds gst writes encoded media to, after its input fds: audio then video, per stream branch. */
export function outputFds(g: EncodeGraph): OutputFd[] {
  let fd = 3 + inputCount(g);
  const out: OutputFd[] = [];
  for (const b of g.branches) {
    if (b.type !== 'stream') continue;
    if (g.audio) out.push({ branch: b.name, kind: 'audio', fd: fd++ });
    if (g.video?.encode) out.push({ branch: b.name, kind: 'video', fd: fd++ });
  }
  return out;
}

const gdpOut = (fd: number) => ['gdppay', 'crc-header=false', '!', 'fdsink', `fd=${fd}`, 'sync=false'];

interface BranchArgs {
  args: string[];
  /** What follows the branch's queue and parser on the audio / encoded video tee (undefined: it takes none). */
  audioPad?: string[];
  videoPad?: string[];
  /** In place of the codec's default parser. */
  videoParser?: string[];
}

/** The branch's own elements, and where its audio and encoded video link in. */
function branchArgs(b: Branch, g: EncodeGraph, fds: OutputFd[]): BranchArgs {
  switch (b.type) {
    case 'file':
      return { args: [...MUX[b.fileType], `name=${b.name}`, '!', 'filesink', 'buffer-mode=unbuffered', `location=${b.location}`], audioPad: [`${b.name}.`], videoPad: [`${b.name}.`] };
    case 'segments':
      // Segments are cut on key frames; send-keyframe-requests asks the encoder for one at each boundary.
      // Only with video: on audio alone it never finishes at EOS (gst 1.22, measured).
      return {
        args: [
          'splitmuxsink', `name=${b.name}`, 'muxer-factory=mpegtsmux', `location=${b.location}`,
          `max-size-time=${b.segmentDurationS * 1_000_000_000}`, ...(g.video?.encode ? ['send-keyframe-requests=true'] : []),
        ],
        audioPad: [`${b.name}.audio_%u`],
        videoPad: [`${b.name}.video`],
      };
    case 'images': {
      const size = b.width > 0 && b.height > 0 ? `,width=${b.width},height=${b.height}` : '';
      return {
        args: [
          // Leaky: a slow JPEG encode drops thumbnails, never holds back the recording behind the tee.
          'vraw.', '!', 'queue', 'leaky=downstream', 'max-size-buffers=2', '!', 'videorate', 'skip-to-first=true', '!',
          `video/x-raw,framerate=1/${b.captureIntervalS}`, '!', 'videoscale', '!', `video/x-raw,pixel-aspect-ratio=1/1${size}`, '!',
          // Through RGB: JPEG is full-range, and jpegenc copies limited-range I420 as it is (black
          // became grey 16). One frame per capture interval, so the conversion costs nothing.
          'videoconvert', '!', 'video/x-raw,format=RGB', '!', 'jpegenc', '!', 'multifilesink', `name=${b.name}`, 'post-messages=true', `location=${b.location}`,
        ],
      };
    }
    case 'stream': {
      const fd = (kind: OutputFd['kind']) => fds.find((f) => f.branch === b.name && f.kind === kind)?.fd;
      const audio = fd('audio');
      const video = fd('video');
      return {
        args: [],
        ...(audio !== undefined ? { audioPad: gdpOut(audio) } : {}),
        // Byte-stream with SPS/PPS at every key frame: a URL that joins late starts at any key frame.
        ...(video !== undefined
          ? { videoPad: gdpOut(video), videoParser: ['h264parse', 'config-interval=-1', '!', 'video/x-h264,stream-format=byte-stream,alignment=au', '!'] }
          : {}),
      };
    }
  }
}

export function encodeArgs(g: EncodeGraph): string[] {
  if (g.capture?.type === 'rtp') return rtpArgs(g.capture, g.branches[0] as FileBranch);
  const screen = g.capture;
  const args: string[] = [];
  const fds = outputFds(g);
  const branches = g.branches.map((b) => branchArgs(b, g, fds));
  for (const b of branches) args.push(...b.args);
  if (g.audio) {
    const a = g.audio;
    args.push(...(screen ? captureAudio(screen) : input(3)), 'audioconvert', '!', 'audioresample', '!', `audio/x-raw,rate=${a.frequency},channels=2`, '!', ...audioEncoder(a), '!', 'tee', 'name=aenc');
    for (const b of branches) if (b.audioPad) args.push('aenc.', '!', 'queue', '!', ...AUDIO_PARSER[a.codec], ...b.audioPad);
  }
  if (g.video) {
    const v = g.video;
    // Any input size is scaled (letterboxed) to the output size, so a track that changes
    // resolution mid-way never reaches the encoder at a size its caps do not describe.
    // A capture's first grab comes some time after the pipeline's time 0 (its elements start under
    // load): videorate must not fill that time with copies of it, which the sound does not have.
    const skip = screen ? ['skip-to-first=true'] : [];
    const rate = v.fps ? ['!', 'videorate', ...skip, '!', `video/x-raw,framerate=${v.fps}/1`] : [];
    args.push(
      ...(screen ? captureVideo(screen, v) : input(g.audio ? 4 : 3)), 'videoconvert', '!', 'videoscale', 'add-borders=true', '!',
      `video/x-raw,format=I420,width=${v.width},height=${v.height},pixel-aspect-ratio=1/1`, ...rate, '!', 'tee', 'name=vraw',
    );
    if (v.encode) {
      args.push('vraw.', '!', 'queue', '!', ...videoEncoder(v), '!', 'tee', 'name=venc');
      for (const b of branches) if (b.videoPad) args.push('venc.', '!', 'queue', '!', ...(b.videoParser ?? VIDEO_PARSER[v.codec]), ...b.videoPad);
    }
  }
  return args;
}

/** How many input fds a graph reads. */
export const inputCount = (g: EncodeGraph): number => (g.capture ? 0 : (g.audio ? 1 : 0) + (g.video ? 1 : 0));

export const AUDIO_CAPS = (rate: number, channels: number) =>
  `audio/x-raw,format=S16LE,layout=interleaved,rate=${rate},channels=${channels}`;

export const VIDEO_CAPS = (width: number, height: number) =>
  `video/x-raw,format=I420,width=${width},height=${height},framerate=0/1,pixel-aspect-ratio=1/1`;

/**
 * The graph of a job's gst outputs. `firstFrame` is the size of the first video frame, which
 * passthrough outputs (track egress) keep as their output size. Passthrough plans have exactly one
 * output, a file, whose container the naming pass has already taken from the track's codec.
 * `capture`: a web source's display and sound, or a track's RTP, which gst captures itself.
 */
export function encodeGraph(plan: PipelineConfig, branches: Branch[], firstFrame?: { width: number; height: number }, capture?: CaptureInput): EncodeGraph {
  if (plan.passthrough) {
    const file = branches.find((b): b is FileBranch => b.type === 'file');
    if (!file || branches.length !== 1) throw new EgressError('internal', 'a passthrough job writes exactly one file');
    // Remuxed as received: nothing is encoded.
    if (capture?.type === 'rtp') return { capture, branches };
    const enc = passthroughEncode(file.fileType, firstFrame);
    return { ...('audio' in enc ? { audio: enc.audio } : { video: { ...enc.video, encode: true } }), branches };
  }
  const a = plan.audio;
  const v = plan.video;
  const audio = a && a.codec !== 'raw' && branches.some(takesAudio) ? { codec: a.codec, bitrateKbps: a.bitrateKbps, frequency: a.frequency } : undefined;
  const encode = branches.some(takesEncodedVideo);
  const video =
    v && (encode || branches.some((b) => b.type === 'images'))
      ? { codec: 'h264' as const, width: v.width, height: v.height, fps: v.framerate, bitrateKbps: v.bitrateKbps, profile: v.profile, keyFrameIntervalS: v.keyFrameIntervalS, encode }
      : undefined;
  return { ...(capture ? { capture } : {}), ...(audio ? { audio } : {}), ...(video ? { video } : {}), branches };
}
