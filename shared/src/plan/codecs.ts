// Codec and container inference for encoded outputs (egress-behaviour §1.11, pkg/types of the Go egress).
// The MIME-like names are the Go egress's, because they appear in its error texts.
import { errors } from '../errors.ts';
import type { AudioCodec, FileType } from './pipeline-config.ts';

type Mime = string;
const AAC = 'audio/aac', OPUS = 'audio/opus', MP3 = 'audio/mpeg', RAW = 'audio/x-raw', H264 = 'video/h264', VP8 = 'video/vp8', VP9 = 'video/vp9';

/** An encoded output as the inference sees it; `file` with fileType undefined is DEFAULT_FILETYPE. */
export type EncodedOutputKind = { type: 'file'; fileType?: FileType } | { type: 'segments' } | { type: 'rtmp' } | { type: 'srt' } | { type: 'websocket' };

const FILE_MIME: Record<FileType, Mime> = { mp4: 'video/mp4', ogg: 'audio/ogg', mp3: 'audio/mpeg', webm: 'video/webm' };

function outputType(o: EncodedOutputKind): Mime {
  switch (o.type) {
    case 'file': return o.fileType ? FILE_MIME[o.fileType] : '';
    case 'segments': return 'application/x-mpegurl';
    case 'rtmp': return 'rtmp';
    case 'srt': return 'srt';
    case 'websocket': return 'websocket';
  }
}

const COMPAT: Record<Mime, Mime[]> = {
  'audio/x-raw': [RAW],
  'audio/ogg': [OPUS],
  'video/mp4': [AAC, OPUS, H264],
  'video/mp2t': [AAC, OPUS, H264],
  'video/webm': [OPUS, VP8, VP9],
  rtmp: [AAC, H264],
  srt: [AAC, H264],
  websocket: [RAW],
  'application/x-mpegurl': [AAC, H264],
  // QUIRK: non-MP3 codecs are "compatible" with an MP3 file (they would fail when linking).
  'audio/mpeg': [MP3, OPUS, AAC, RAW],
  '': [AAC, OPUS, MP3, H264, VP8, VP9],
};

const DEFAULT_AUDIO: Record<Mime, Mime> = {
  'audio/x-raw': RAW, 'audio/ogg': OPUS, 'audio/mpeg': MP3, 'video/mp4': AAC, 'video/mp2t': AAC, 'application/x-mpegurl': AAC,
  'video/webm': OPUS, rtmp: AAC, srt: AAC, websocket: RAW,
};

const ENCODABLE_AUDIO: Mime[] = [AAC, OPUS, RAW, MP3];
const TO_CODEC: Record<Mime, AudioCodec> = { [AAC]: 'aac', [OPUS]: 'opus', [MP3]: 'mp3', [RAW]: 'raw' };
const TO_MIME: Record<AudioCodec, Mime> = { aac: AAC, opus: OPUS, mp3: MP3, raw: RAW };

export interface CodecChoice {
  audioCodec?: AudioCodec;
  /** The file output's type, DEFAULT resolved. */
  fileType?: FileType;
}

/**
 * Outputs in Go's order (file, segments, stream, websocket). Stream outputs force AAC, websocket raw
 * PCM, whatever advanced.audio_codec said.
 */
export function inferCodecs(outputs: EncodedOutputKind[], audio: boolean, video: boolean, requested?: AudioCodec): CodecChoice {
  const types = outputs.map(outputType);
  if (outputs.some((o) => o.type !== 'file' && o.type !== 'segments')) requested = undefined;
  let candidates = audio ? (requested ? [TO_MIME[requested]] : [...ENCODABLE_AUDIO]) : [];
  if (audio) {
    for (const t of types) {
      candidates = candidates.filter((c) => COMPAT[t]!.includes(c));
      if (candidates.length === 0) throw requested ? errors.incompatibleCodec(t, TO_MIME[requested]) : errors.noCompatibleCodec();
    }
  }
  if (video) {
    // Only H.264 is encodable, so it is always the "requested" video codec; the Go egress's
    // messages for this branch name it (MP3 file + video → `format audio/mpeg incompatible with codec video/h264`).
    for (const t of types) if (!COMPAT[t]!.includes(H264)) throw errors.incompatibleCodec(t, H264);
  }

  const file = outputs.find((o): o is { type: 'file'; fileType?: FileType } => o.type === 'file');
  let fileType = file?.fileType;
  if (file && !fileType) {
    if (video) fileType = 'mp4';
    else if (audio) fileType = (['ogg', 'mp4', 'mp3'] as const).find((ft) => candidates.some((c) => COMPAT[FILE_MIME[ft]]!.includes(c)));
    if (!fileType) throw errors.noCompatibleFileType();
  }
  if (fileType) types[outputs.indexOf(file!)] = FILE_MIME[fileType];

  let audioCodec: AudioCodec | undefined;
  if (audio) {
    const def = types.map((t) => DEFAULT_AUDIO[t]).find((d) => d !== undefined && candidates.includes(d));
    audioCodec = TO_CODEC[def ?? candidates[0]!];
  }
  return { ...(audioCodec ? { audioCodec } : {}), ...(fileType ? { fileType } : {}) };
}

export const FILE_EXTENSION: Record<FileType, string> = { mp4: '.mp4', ogg: '.ogg', mp3: '.mp3', webm: '.webm' };
