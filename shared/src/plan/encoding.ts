// Encoding settings: defaults, presets 0–8 and advanced options (egress-behaviour §2.1–2.3).
// Codecs are chosen later by codecs.ts; this only records what the request asked for.
import { AudioCodec as ProtoAudioCodec, EncodingOptions, EncodingOptionsPreset, VideoCodec as ProtoVideoCodec } from '@livekit/protocol';
import { errors } from '../errors.ts';
import type { AudioCodec, H264Profile } from './pipeline-config.ts';

export interface EncodingRequest {
  /** Explicit audio codec (advanced.audio_codec), else chosen by inference. */
  audioCodec?: AudioCodec;
  audioBitrateKbps: number;
  audioFrequency: number;
  profile: H264Profile;
  width: number;
  height: number;
  depth: number;
  framerate: number;
  videoBitrateKbps: number;
  keyFrameIntervalS: number;
  passthrough: boolean;
}

export const DEFAULT_ENCODING: Readonly<EncodingRequest> = {
  audioBitrateKbps: 128,
  audioFrequency: 44100,
  profile: 'main',
  width: 1280,
  height: 720,
  depth: 24,
  framerate: 30,
  videoBitrateKbps: 3000,
  keyFrameIntervalS: 0,
  passthrough: false,
};

/** [width, height, fps, kbps] per preset value. */
const PRESETS: Record<number, [number, number, number, number]> = {
  [EncodingOptionsPreset.H264_720P_30]: [1280, 720, 30, 3000],
  [EncodingOptionsPreset.H264_720P_60]: [1280, 720, 60, 4500],
  [EncodingOptionsPreset.H264_1080P_30]: [1920, 1080, 30, 4500],
  [EncodingOptionsPreset.H264_1080P_60]: [1920, 1080, 60, 6000],
  [EncodingOptionsPreset.PORTRAIT_H264_720P_30]: [720, 1280, 30, 3000],
  [EncodingOptionsPreset.PORTRAIT_H264_720P_60]: [720, 1280, 60, 4500],
  [EncodingOptionsPreset.PORTRAIT_H264_1080P_30]: [1080, 1920, 30, 4500],
  [EncodingOptionsPreset.PORTRAIT_H264_1080P_60]: [1080, 1920, 60, 6000],
};

export type EncodingOneof =
  | { case: 'preset'; value: EncodingOptionsPreset }
  | { case: 'advanced'; value: EncodingOptions }
  | { case: undefined; value?: undefined };

/** `allowPassthrough`: only v2 (media) requests may name PASSTHROUGH; elsewhere it is `preset` invalid. */
export function planEncoding(options: EncodingOneof, allowPassthrough: boolean): EncodingRequest {
  const enc: EncodingRequest = { ...DEFAULT_ENCODING };
  if (options.case === 'preset') {
    if (options.value === EncodingOptionsPreset.PASSTHROUGH) {
      if (!allowPassthrough) throw errors.invalidField('preset');
      return { ...enc, passthrough: true };
    }
    const p = PRESETS[options.value];
    if (!p) throw errors.invalidField('preset');
    [enc.width, enc.height, enc.framerate, enc.videoBitrateKbps] = p;
    return enc;
  }
  if (options.case === 'advanced') return applyAdvanced(enc, options.value);
  return enc;
}

function applyAdvanced(enc: EncodingRequest, a: EncodingOptions): EncodingRequest {
  // Zero keeps the default: the proto comments' 1920x1080/4500 defaults are not what Go does.
  if (a.width !== 0) {
    if (a.width < 16 || a.width % 2 !== 0) throw errors.invalidField('width');
    enc.width = a.width;
  }
  if (a.height !== 0) {
    if (a.height < 16 || a.height % 2 !== 0) throw errors.invalidField('height');
    enc.height = a.height;
  }
  if (a.depth !== 0) {
    if (![8, 16, 24].includes(a.depth)) throw errors.invalidField('depth');
    enc.depth = a.depth;
  }
  if (a.framerate > 0) enc.framerate = a.framerate;
  if (a.audioBitrate > 0) enc.audioBitrateKbps = a.audioBitrate;
  if (a.audioFrequency > 0) enc.audioFrequency = a.audioFrequency;
  if (a.videoBitrate > 0) enc.videoBitrateKbps = a.videoBitrate;
  if (a.keyFrameInterval > 0) enc.keyFrameIntervalS = a.keyFrameInterval;
  switch (a.audioCodec) {
    case ProtoAudioCodec.OPUS: enc.audioCodec = 'opus'; break;
    case ProtoAudioCodec.AAC: enc.audioCodec = 'aac'; break;
    case ProtoAudioCodec.AC_MP3: enc.audioCodec = 'mp3'; break;
    default: break;
  }
  switch (a.videoCodec) {
    case ProtoVideoCodec.H264_BASELINE: enc.profile = 'baseline'; break;
    case ProtoVideoCodec.H264_HIGH: enc.profile = 'high'; break;
    // MAIN, DEFAULT and the quirk: VP8 is ignored, only H.264 is ever encoded.
    default: enc.profile = 'main'; break;
  }
  return enc;
}

/**
 * Key-frame rules (§2.4). With segments, the segmenter forces key frames at boundaries (interval 0),
 * and a stream's interval caps the segment duration; a stream alone defaults to 4 s.
 */
export function resolveKeyFrames(
  keyFrameIntervalS: number,
  segmentDurationS: number | undefined,
  hasStream: boolean,
): { keyFrameIntervalS: number; segmentDurationS?: number } {
  if (segmentDurationS !== undefined) {
    const capped = hasStream && keyFrameIntervalS > 0 ? Math.min(Math.trunc(keyFrameIntervalS), segmentDurationS) : segmentDurationS;
    return { keyFrameIntervalS: 0, segmentDurationS: capped };
  }
  if (hasStream && keyFrameIntervalS === 0) return { keyFrameIntervalS: 4 };
  return { keyFrameIntervalS };
}
