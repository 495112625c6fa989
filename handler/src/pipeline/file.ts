// Pure: the gst-launch arguments that encode a job's raw media (GDP on fds 3, 4) into one file.
// Audio, when present, is fd 3 and video the next fd; both carry their own PTS (see gst/gdp.ts).
import { errors } from '@egress/shared/errors.ts';
import type { FileOutputPlan, FileType, H264Profile, PipelineConfig } from '@egress/shared/plan/pipeline-config.ts';

export interface FileGraph {
  fileType: FileType;
  audio?: { codec: 'opus' | 'aac' | 'mp3'; bitrateKbps: number; frequency: number };
  video?: {
    codec: 'h264' | 'vp8';
    width: number;
    height: number;
    /** Constant output rate; undefined keeps the source's own frame timing (track egress). */
    fps?: number;
    bitrateKbps: number;
    profile?: H264Profile;
    /** Seconds between key frames; 0 = every 2 s (fragments and recovery want regular ones). */
    keyFrameIntervalS?: number;
  };
  location: string;
}

/** The muxer of each container; MP4 is fragmented so a killed recording stays readable. */
const MUX: Record<FileType, string[]> = {
  mp4: ['mp4mux', 'name=mux', 'fragment-duration=1000'],
  webm: ['webmmux', 'name=mux'],
  ogg: ['oggmux', 'name=mux'],
  // xingmux writes the frame count and seek table, so players know the duration.
  mp3: ['xingmux', 'name=mux'],
};

const input = (fd: number) => [
  'fdsrc', `fd=${fd}`, '!', 'gdpdepay', '!',
  // Unbounded in buffers and bytes: the writer in Node bounds the backlog (drops video, never audio).
  'queue', 'max-size-buffers=0', 'max-size-bytes=0', 'max-size-time=3000000000', '!',
];

function audioEncoder(a: NonNullable<FileGraph['audio']>): string[] {
  switch (a.codec) {
    case 'opus':
      return ['opusenc', `bitrate=${a.bitrateKbps * 1000}`];
    case 'aac':
      // No mid/side or intensity stereo: at 128 kb/s they bleed one channel into the other (measured:
      // a left-only tone came out 2 dB louder on the right), and dual-channel recordings (agent left,
      // caller right) must keep them apart (with both off: 40 dB).
      return ['avenc_aac', `bitrate=${a.bitrateKbps * 1000}`, 'aac-ms=false', 'aac-is=false', '!', 'aacparse'];
    case 'mp3':
      return ['lamemp3enc', 'target=bitrate', 'cbr=true', `bitrate=${a.bitrateKbps}`, '!', 'mpegaudioparse'];
  }
}

function videoEncoder(v: NonNullable<FileGraph['video']>): string[] {
  const fps = v.fps ?? 30;
  const keyInt = Math.max(1, Math.round((v.keyFrameIntervalS || 2) * fps));
  if (v.codec === 'vp8') {
    return [
      'vp8enc', 'deadline=1', 'cpu-used=8', 'threads=2', 'token-partitions=2', `target-bitrate=${v.bitrateKbps * 1000}`,
      `keyframe-max-dist=${keyInt}`, 'end-usage=cbr',
    ];
  }
  return [
    'x264enc', 'speed-preset=veryfast', 'tune=zerolatency', `key-int-max=${keyInt}`, `bitrate=${v.bitrateKbps}`, '!',
    `video/x-h264,profile=${v.profile ?? 'main'}`, '!', 'h264parse',
  ];
}

export function fileArgs(g: FileGraph): string[] {
  const args: string[] = [...MUX[g.fileType], '!', 'filesink', 'buffer-mode=unbuffered', `location=${g.location}`];
  // Audio reads fd 3; video the fd after audio's.
  const videoFd = g.audio ? 4 : 3;
  if (g.audio) {
    args.push(
      ...input(3), 'audioconvert', '!', 'audioresample', '!',
      `audio/x-raw,rate=${g.audio.frequency},channels=2`, '!', ...audioEncoder(g.audio), '!', 'queue', '!', 'mux.',
    );
  }
  if (g.video) {
    const v = g.video;
    // Any input size is scaled (letterboxed) to the output size, so a track that changes
    // resolution mid-way never reaches the encoder at a size its caps do not describe.
    const rate = v.fps ? ['videorate', '!', `video/x-raw,framerate=${v.fps}/1`, '!'] : [];
    args.push(
      ...input(videoFd), 'videoconvert', '!', 'videoscale', 'add-borders=true', '!',
      `video/x-raw,format=I420,width=${v.width},height=${v.height},pixel-aspect-ratio=1/1`, '!', ...rate,
      ...videoEncoder(v), '!', 'queue', '!', 'mux.',
    );
  }
  return args;
}

/** How many input fds a graph reads. */
export const inputCount = (g: FileGraph): number => (g.audio ? 1 : 0) + (g.video ? 1 : 0);

export const AUDIO_CAPS = (rate: number, channels: number) =>
  `audio/x-raw,format=S16LE,layout=interleaved,rate=${rate},channels=${channels}`;

export const VIDEO_CAPS = (width: number, height: number) =>
  `video/x-raw,format=I420,width=${width},height=${height},framerate=0/1,pixel-aspect-ratio=1/1`;

/** The track egress table (egress-behaviour §1.7): Opus/PCMU/PCMA → OGG, H.264 → MP4, VP8/VP9 → WebM. */
export function containerFor(mimeType: string): FileType {
  switch (mimeType.toLowerCase()) {
    case 'audio/opus':
    case 'audio/pcmu':
    case 'audio/pcma':
    case 'audio/red':
      return 'ogg';
    case 'video/h264':
      return 'mp4';
    case 'video/vp8':
    case 'video/vp9':
      return 'webm';
    default:
      throw errors.notYetSupported(mimeType || 'unknown codec');
  }
}

/** Track egress (decoded, re-encoded in its own codec family): bitrates of the Go defaults. */
const TRACK_AUDIO = { codec: 'opus', bitrateKbps: 128, frequency: 48_000 } as const;
const TRACK_VIDEO_KBPS = 3000;

/**
 * The graph of one file output. `firstFrame` is the size of the first video frame, which
 * passthrough-style outputs (track egress) keep as their output size.
 */
export function fileGraph(plan: PipelineConfig, output: FileOutputPlan, location: string, opts: { mimeType?: string; firstFrame?: { width: number; height: number } }): FileGraph {
  if (plan.passthrough) {
    // The naming pass has already picked the container from the codec; the codec is the fallback.
    const fileType = output.fileType ?? containerFor(opts.mimeType ?? '');
    if (fileType === 'ogg') return { fileType, audio: TRACK_AUDIO, location };
    const size = opts.firstFrame ?? { width: 1280, height: 720 };
    return { fileType, video: { codec: fileType === 'webm' ? 'vp8' : 'h264', ...size, bitrateKbps: TRACK_VIDEO_KBPS }, location };
  }
  const fileType = output.fileType ?? 'mp4';
  const a = plan.audio;
  const v = plan.video;
  return {
    fileType,
    ...(a && a.codec !== 'raw' ? { audio: { codec: a.codec, bitrateKbps: a.bitrateKbps, frequency: a.frequency } } : {}),
    ...(v
      ? { video: { codec: 'h264', width: v.width, height: v.height, fps: v.framerate, bitrateKbps: v.bitrateKbps, profile: v.profile, keyFrameIntervalS: v.keyFrameIntervalS } }
      : {}),
    location,
  };
}
