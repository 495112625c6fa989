// Pure: what a track egress (and the v2 PASSTHROUGH preset) writes, from the track's codec. The track
// is decoded and re-encoded in its own codec family (zero-transcode remuxing is the passthrough work).
import { errors } from '@egress/shared/errors.ts';
import type { FileType } from '@egress/shared/plan/pipeline-config.ts';
import type { AudioEncode, VideoEncode } from './encode.ts';

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

/** Track egress bitrates: the Go defaults. */
const TRACK_AUDIO: AudioEncode = { codec: 'opus', bitrateKbps: 128, frequency: 48_000 };
const TRACK_VIDEO_KBPS = 3000;

/** The encoding of a track egress file; video keeps the first frame's size and the source's timing. */
export function passthroughEncode(fileType: FileType, firstFrame: { width: number; height: number } | undefined): { audio: AudioEncode } | { video: VideoEncode } {
  if (fileType === 'ogg') return { audio: TRACK_AUDIO };
  const size = firstFrame ?? { width: 1280, height: 720 };
  return { video: { codec: fileType === 'webm' ? 'vp8' : 'h264', ...size, bitrateKbps: TRACK_VIDEO_KBPS } };
}
