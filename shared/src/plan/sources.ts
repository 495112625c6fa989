// The first half of planning: each request kind, v1 or v2, reduced to one shape (source, which media,
// encoding options, raw outputs). Everything after that (codecs, naming, storage) is kind-agnostic.
import {
  AudioChannel as ProtoAudioChannel,
  AudioMixing as ProtoAudioMixing,
  EncodedFileType,
  ParticipantInfo_Kind,
  type AudioConfig,
  type EncodedFileOutput,
  type ImageOutput,
  type MediaSource,
  type Output,
  type SegmentedFileOutput,
  type StorageConfig as ProtoStorageConfig,
  type StreamOutput,
  type StartEgressRequest as V2Request,
  type ExportReplayRequest,
} from '@livekit/protocol';
import type { Config } from '../config/types.ts';
import { errors } from '../errors.ts';
import type { StartEgressRequest } from '../proto/rpc.ts';
import type { EncodingOneof } from './encoding.ts';
import type { AudioChannel, AudioMixing, AudioRoute, ParticipantKindName, SourceConfig } from './pipeline-config.ts';
import type { RequestUpload } from './storage.ts';

/** An output as requested, before naming and inference. `upload` is the output's own target, if any. */
export type RawOutput =
  | { type: 'file'; fileType: EncodedFileType; filepath: string; disableManifest: boolean; upload?: RequestUpload }
  | { type: 'stream'; output: StreamOutput }
  | { type: 'segments'; output: SegmentedFileOutput; upload?: RequestUpload }
  | { type: 'images'; output: ImageOutput; upload?: RequestUpload };

export interface RequestShape {
  roomName: string;
  /** Room-based: needs a token and ws_url. */
  room: boolean;
  source: SourceConfig;
  audio: boolean;
  video: boolean;
  encoding: EncodingOneof;
  v2: boolean;
  live: boolean;
  outputs: RawOutput[];
  /** v2: the request-level default storage. */
  storage?: RequestUpload;
}

const MIXING: Record<number, AudioMixing> = {
  [ProtoAudioMixing.DEFAULT_MIXING]: 'default',
  [ProtoAudioMixing.DUAL_CHANNEL_AGENT]: 'dual_channel_agent',
  [ProtoAudioMixing.DUAL_CHANNEL_ALTERNATE]: 'dual_channel_alternate',
};
const CHANNEL: Record<number, AudioChannel> = {
  [ProtoAudioChannel.BOTH]: 'both',
  [ProtoAudioChannel.LEFT]: 'left',
  [ProtoAudioChannel.RIGHT]: 'right',
};

const isHttp = (u: string): boolean => {
  try {
    const p = new URL(u).protocol;
    return p === 'http:' || p === 'https:';
  } catch {
    return false;
  }
};

function templateSource(
  t: { layout: string; audioOnly: boolean; videoOnly: boolean; customBaseUrl: string },
  mixing: AudioMixing,
  config: Config,
): { source: SourceConfig; audio: boolean; video: boolean } {
  if (t.audioOnly && t.videoOnly) throw errors.invalidField('audio_only and video_only');
  // Audio only with no layout and no custom page: no Chrome, the SDK mixes every audio track.
  if (t.audioOnly && !t.layout && !t.customBaseUrl) {
    return { source: { type: 'sdk', subscription: { kind: 'room_audio', mixing } }, audio: true, video: false };
  }
  const baseUrl = t.customBaseUrl || config.templateBase;
  if (!isHttp(baseUrl)) throw errors.invalidField('template base url');
  const url = new URL(baseUrl);
  if (t.layout) url.searchParams.set('layout', t.layout);
  return {
    source: { type: 'web', url: url.toString(), template: { baseUrl, layout: t.layout }, awaitStartSignal: true },
    audio: !t.videoOnly,
    video: !t.audioOnly,
  };
}

function webSource(w: { url: string; audioOnly: boolean; videoOnly: boolean; awaitStartSignal: boolean }) {
  if (!isHttp(w.url)) throw errors.invalidField('web url');
  if (w.audioOnly && w.videoOnly) throw errors.invalidField('audio_only and video_only');
  return { source: { type: 'web', url: w.url, awaitStartSignal: w.awaitStartSignal } as SourceConfig, audio: !w.videoOnly, video: !w.audioOnly };
}

const KIND_NAME: Record<number, ParticipantKindName> = {
  [ParticipantInfo_Kind.STANDARD]: 'standard',
  [ParticipantInfo_Kind.INGRESS]: 'ingress',
  [ParticipantInfo_Kind.EGRESS]: 'egress',
  [ParticipantInfo_Kind.SIP]: 'sip',
  [ParticipantInfo_Kind.AGENT]: 'agent',
};

function routesOf(audio: AudioConfig): AudioRoute[] {
  return audio.routes.map((r) => {
    const channel = CHANNEL[r.channel] ?? 'both';
    switch (r.match.case) {
      case 'trackId': return { match: { trackId: r.match.value }, channel };
      case 'participantIdentity': return { match: { identity: r.match.value }, channel };
      case 'participantKind': {
        const kind = KIND_NAME[r.match.value];
        if (!kind) throw errors.invalidField('audio route');
        return { match: { participantKind: kind }, channel };
      }
      default: throw errors.invalidField('audio route');
    }
  });
}

function mediaSource(m: MediaSource) {
  const video =
    m.video.case === 'videoTrackId' && m.video.value
      ? { trackId: m.video.value }
      : m.video.case === 'participantVideo'
        ? { identity: m.video.value.identity, preferScreenShare: m.video.value.preferScreenShare }
        : undefined;
  if (video && 'identity' in video && !video.identity) throw errors.invalidField('identity');
  const audio = m.audio && (m.audio.captureAll || m.audio.routes.length > 0) ? { captureAll: m.audio.captureAll, routes: routesOf(m.audio) } : undefined;
  if (!video && !audio) throw errors.invalidField('audio or video');
  return {
    source: { type: 'sdk', subscription: { kind: 'media', ...(video ? { video } : {}), ...(audio ? { audio } : {}) } } as SourceConfig,
    audio: !!audio,
    video: !!video,
  };
}

type V1Outputs = {
  output?: { case: 'file'; value: EncodedFileOutput } | { case: 'stream'; value: StreamOutput } | { case: 'segments'; value: SegmentedFileOutput } | { case: undefined; value?: undefined };
  fileOutputs: EncodedFileOutput[];
  streamOutputs: StreamOutput[];
  segmentOutputs: SegmentedFileOutput[];
  imageOutputs: ImageOutput[];
};

const fileRaw = (f: { fileType: EncodedFileType; filepath: string; disableManifest: boolean }, upload?: RequestUpload): RawOutput => ({
  type: 'file',
  fileType: f.fileType,
  filepath: f.filepath,
  disableManifest: f.disableManifest,
  ...(upload ? { upload } : {}),
});

/**
 * F15: the deprecated single output (file/stream/segments oneof) stands in for its kind's list when
 * that list is empty, as the Go egress does (config.updateEncodedOutputs): livekit-server-sdk sets
 * both, the deprecated field and a one-item list holding the same output.
 */
function v1Outputs(r: V1Outputs): RawOutput[] {
  const out: RawOutput[] = [];
  const o = r.output;
  if (!r.fileOutputs.length && o?.case === 'file') out.push(fileRaw(o.value, o.value.output.value));
  if (!r.streamOutputs.length && o?.case === 'stream') out.push({ type: 'stream', output: o.value });
  if (!r.segmentOutputs.length && o?.case === 'segments') out.push({ type: 'segments', output: o.value, ...(o.value.output.value ? { upload: o.value.output.value } : {}) });
  for (const f of r.fileOutputs) out.push(fileRaw(f, f.output.value));
  for (const s of r.streamOutputs) out.push({ type: 'stream', output: s });
  for (const s of r.segmentOutputs) out.push({ type: 'segments', output: s, ...(s.output.value ? { upload: s.output.value } : {}) });
  for (const i of r.imageOutputs) out.push({ type: 'images', output: i, ...(i.output.value ? { upload: i.output.value } : {}) });
  return out;
}

const storageOf = (s: ProtoStorageConfig | undefined): RequestUpload | undefined => s?.provider.value;

function v2Outputs(outputs: Output[]): RawOutput[] {
  return outputs.map((o): RawOutput => {
    const upload = storageOf(o.storage);
    const up = upload ? { upload } : {};
    switch (o.config.case) {
      case 'file': return fileRaw(o.config.value, upload);
      case 'stream': return { type: 'stream', output: o.config.value };
      case 'segments': return { type: 'segments', output: o.config.value, ...up };
      case 'images': return { type: 'images', output: o.config.value, ...up };
      default: throw errors.invalidField('output config');
    }
  });
}

function v2Shape(r: V2Request | ExportReplayRequest, roomName: string, live: boolean, config: Config): RequestShape {
  const common = { encoding: r.encoding as EncodingOneof, v2: true, live, outputs: v2Outputs(r.outputs), ...(storageOf(r.storage) ? { storage: storageOf(r.storage) } : {}) };
  switch (r.source.case) {
    case 'template': return { roomName, room: true, ...templateSource(r.source.value, 'default', config), ...common };
    case 'web': return { roomName: '', room: false, ...webSource(r.source.value), ...common };
    case 'media': return { roomName, room: true, ...mediaSource(r.source.value), ...common };
    default: throw errors.invalidField('source');
  }
}

const requireRoom = (roomName: string): string => {
  if (!roomName) throw errors.invalidField('room_name');
  return roomName;
};

/** Every kind except track egress (planned on its own: no encoding, one direct output). */
export function requestShape(req: StartEgressRequest, config: Config): RequestShape {
  const r = req.request;
  const v1 = { v2: false, live: true };
  switch (r.case) {
    case 'roomComposite': {
      const v = r.value;
      return { roomName: requireRoom(req.roomName || v.roomName), room: true, ...templateSource(v, MIXING[v.audioMixing] ?? 'default', config), encoding: v.options as EncodingOneof, outputs: v1Outputs(v), ...v1 };
    }
    case 'web':
      return { roomName: '', room: false, ...webSource(r.value), encoding: r.value.options as EncodingOneof, outputs: v1Outputs(r.value), ...v1 };
    case 'participant': {
      const v = r.value;
      const roomName = requireRoom(req.roomName || v.roomName);
      if (!v.identity) throw errors.invalidField('identity');
      return {
        roomName,
        room: true,
        source: { type: 'sdk', subscription: { kind: 'participant', identity: v.identity, screenShare: v.screenShare } },
        // Always both: a participant without video gets black frames.
        audio: true,
        video: true,
        encoding: v.options as EncodingOneof,
        outputs: v1Outputs(v),
        ...v1,
      };
    }
    case 'trackComposite': {
      const v = r.value;
      const roomName = requireRoom(req.roomName || v.roomName);
      if (!v.audioTrackId && !v.videoTrackId) throw errors.invalidField('audio_track_id or video_track_id');
      return {
        roomName,
        room: true,
        source: {
          type: 'sdk',
          subscription: { kind: 'track_composite', ...(v.audioTrackId ? { audioTrackId: v.audioTrackId } : {}), ...(v.videoTrackId ? { videoTrackId: v.videoTrackId } : {}) },
        },
        audio: !!v.audioTrackId,
        video: !!v.videoTrackId,
        encoding: v.options as EncodingOneof,
        outputs: v1Outputs(v),
        ...v1,
      };
    }
    case 'egress': return v2Shape(r.value, req.roomName || r.value.roomName, true, config);
    case 'replay': return v2Shape(r.value, req.roomName, false, config);
    default: throw errors.invalidField('request');
  }
}
