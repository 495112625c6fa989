// Pure: a subscribed track's codec → container, and the gst-launch arguments that encode decoded
// frames (GDP on fd 3) into that container.
import { errors } from '@egress/shared/errors.ts';

export type Container = 'ogg' | 'webm' | 'mp4';

/** The track egress table (egress-behaviour §1.7): Opus/PCMU/PCMA → OGG, H.264 → MP4, VP8/VP9 → WebM. */
export function containerFor(mimeType: string): Container {
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

export const extensionFor = (c: Container): string => `.${c}`;

export interface TrackFileArgs {
  container: Container;
  location: string;
}

const INPUT = ['fdsrc', 'fd=3', '!', 'gdpdepay', '!', 'queue', 'max-size-buffers=0', 'max-size-bytes=0', 'max-size-time=3000000000'];

export function trackFileArgs({ container, location }: TrackFileArgs): string[] {
  // Unbuffered: each muxed fragment reaches the disk at once, so a killed handler loses at most one.
  const sink = ['!', 'filesink', 'buffer-mode=unbuffered', `location=${location}`];
  switch (container) {
    case 'ogg':
      return [...INPUT, '!', 'audioconvert', '!', 'audioresample', '!', 'opusenc', 'bitrate=128000', '!', 'oggmux', ...sink];
    case 'webm':
      return [
        ...INPUT, '!', 'videoconvert', '!', 'video/x-raw,format=I420', '!',
        'vp8enc', 'deadline=1', 'cpu-used=8', 'threads=2', 'token-partitions=2', 'target-bitrate=3000000',
        'keyframe-max-dist=60', 'end-usage=cbr', '!', 'webmmux', ...sink,
      ];
    case 'mp4':
      // Fragmented, so a killed recording stays readable up to its last fragment.
      return [
        ...INPUT, '!', 'videoconvert', '!', 'video/x-raw,format=I420', '!',
        'x264enc', 'speed-preset=veryfast', 'tune=zerolatency', 'key-int-max=60', 'bitrate=3000', '!',
        'video/x-h264,profile=main', '!', 'h264parse', '!', 'mp4mux', 'fragment-duration=1000', ...sink,
      ];
  }
}

export const AUDIO_CAPS = (rate: number, channels: number) =>
  `audio/x-raw,format=S16LE,layout=interleaved,rate=${rate},channels=${channels}`;

export const VIDEO_CAPS = (width: number, height: number) =>
  `video/x-raw,format=I420,width=${width},height=${height},framerate=0/1,pixel-aspect-ratio=1/1`;
