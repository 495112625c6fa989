// request + node config → PipelineConfig: every validation the Go egress does at StartEgress (and the
// path checks it lacks), so a bad request is refused before anything starts. Pure: no I/O, no clock
// but `now`, so every rule is table-tested (tests/unit/plan.test.ts).
import { EncodedFileType, EncodingOptionsPreset, type TrackEgressRequest } from '@livekit/protocol';
import type { Config } from '../config/types.ts';
import { errors } from '../errors.ts';
import type { StartEgressRequest } from '../proto/rpc.ts';
import { inferCodecs, type EncodedOutputKind } from './codecs.ts';
import { planEncoding, resolveKeyFrames, type EncodingRequest } from './encoding.ts';
import type { NamingContext } from './naming.ts';
import { planFile } from './outputs/file.ts';
import { planImages } from './outputs/images.ts';
import { planSegments } from './outputs/segments.ts';
import { planStream } from './outputs/stream.ts';
import { passthroughTrackId } from './passthrough.ts';
import type { AudioEncoding, FileType, OutputPlan, PipelineConfig, SourceConfig, StorageTarget, VideoEncoding } from './pipeline-config.ts';
import { requestKind } from './request.ts';
import { requestShape, type RawOutput, type RequestShape } from './sources.ts';
import { resolveStorage, type RequestUpload } from './storage.ts';

const FILE_TYPE: Record<number, FileType | undefined> = {
  [EncodedFileType.DEFAULT_FILETYPE]: undefined,
  [EncodedFileType.MP4]: 'mp4',
  [EncodedFileType.OGG]: 'ogg',
  [EncodedFileType.MP3]: 'mp3',
};

export function planPipeline(req: StartEgressRequest, config: Config, now: Date): PipelineConfig {
  if (!req.egressId) throw errors.invalidField('egressID');
  const kind = requestKind(req);
  if (!kind) throw errors.invalidField(req.request.case === 'egress' ? 'source' : 'request');
  if (req.request.case === 'track') return planTrack(req, req.request.value, config, now);
  // PASSTHROUGH's own rules come first: its single-track media source need not pass the encoded checks.
  const r = req.request;
  const v2 = r.case === 'egress' || r.case === 'replay' ? r.value : undefined;
  const trackId = v2?.encoding.case === 'preset' && v2.encoding.value === EncodingOptionsPreset.PASSTHROUGH ? passthroughTrackId(v2) : undefined;
  const shape = requestShape(req, config);
  if (trackId) return planPassthrough(req, shape, trackId, config, now);
  return planEncoded(req, shape, planEncoding(shape.encoding, shape.v2), config, now);
}

/** Output multiplicity (§1.8): at most one file, one stream (or websocket), one segments. */
function countOutputs(outputs: RawOutput[]): void {
  if (outputs.length === 0) throw errors.invalidField('output');
  const n = (t: RawOutput['type']) => outputs.filter((o) => o.type === t).length;
  if (n('file') > 1) throw errors.invalidField('multiple file outputs');
  if (n('stream') > 1) throw errors.invalidField('multiple stream outputs');
  if (n('segments') > 1) throw errors.invalidField('multiple segmented file outputs');
}

function planEncoded(req: StartEgressRequest, shape: RequestShape, enc: EncodingRequest, config: Config, now: Date): PipelineConfig {
  countOutputs(shape.outputs);
  let { audio, video } = shape;
  const streams = shape.outputs.flatMap((o) => (o.type === 'stream' ? [o.output] : []));
  if (!shape.live && streams.length) throw errors.nonLiveStream();
  for (const s of streams) if (s.urls.length === 0) throw errors.invalidField('stream url');
  const streamPlan = streams[0] && planStream(streams[0].protocol, streams[0].urls);
  // v1 requests have no websocket output (that is track egress's websocket_url).
  if (streamPlan?.type === 'websocket' && !shape.v2) throw errors.invalidField('stream protocol');
  // Websocket carries audio only: video is silently dropped.
  if (streamPlan?.type === 'websocket') video = false;
  const has = (t: RawOutput['type']) => shape.outputs.some((o) => o.type === t);
  if (has('images') && !has('file') && !has('stream') && !has('segments')) audio = false;
  if (has('images') && !video) throw errors.invalidField('audio_only images');
  if (!audio && !video) throw errors.invalidField('audio or video');

  const file = shape.outputs.find((o) => o.type === 'file');
  const encoded: EncodedOutputKind[] = [];
  if (file?.type === 'file') {
    const ft = FILE_TYPE[file.fileType];
    if (file.fileType !== EncodedFileType.DEFAULT_FILETYPE && !ft) throw errors.invalidField('output type');
    encoded.push({ type: 'file', ...(ft ? { fileType: ft } : {}) });
  }
  if (has('segments')) encoded.push({ type: 'segments' });
  if (streamPlan) encoded.push({ type: streamPlan.type === 'stream' ? streamPlan.protocol : 'websocket' });
  const codecs = inferCodecs(encoded, audio, video, enc.audioCodec);

  const roomName = shape.roomName;
  const identifier = roomName || 'web';
  const ctx = namingContext(req, roomName, now);
  const segRaw = shape.outputs.find((o) => o.type === 'segments');
  const keys = resolveKeyFrames(enc.keyFrameIntervalS, segRaw?.type === 'segments' ? segRaw.output.segmentDuration || 4 : undefined, streamPlan?.type === 'stream');
  const imageSize = shape.source.type === 'web' ? { width: enc.width, height: enc.height } : { width: 0, height: 0 };

  const outputs: OutputPlan[] = [];
  for (const o of shape.outputs) {
    if (o.type === 'stream') continue;
    const storage = storageFor(o.upload ?? shape.storage, config);
    if (o.type === 'file') outputs.push(planFile(o.filepath, codecs.fileType, identifier, ctx, storage, o.disableManifest));
    if (o.type === 'segments') {
      const seg = planSegments(o.output, identifier, ctx, storage);
      outputs.push(keys.segmentDurationS !== undefined ? { ...seg, segmentDurationS: keys.segmentDurationS } : seg);
    }
    if (o.type === 'images') outputs.push(planImages(o.output, identifier, ctx, storage, imageSize));
  }
  if (streamPlan) outputs.push(streamPlan);

  const audioEnc: AudioEncoding | undefined = audio && codecs.audioCodec
    ? {
        codec: codecs.audioCodec,
        bitrateKbps: enc.audioBitrateKbps,
        frequency: codecs.audioCodec === 'aac' || codecs.audioCodec === 'mp3' ? enc.audioFrequency : 48000,
        channels: 2,
      }
    : undefined;
  const videoEnc: VideoEncoding | undefined = video
    ? {
        codec: 'h264',
        profile: enc.profile,
        width: enc.width,
        height: enc.height,
        depth: enc.depth,
        framerate: enc.framerate,
        bitrateKbps: enc.videoBitrateKbps,
        keyFrameIntervalS: keys.keyFrameIntervalS,
      }
    : undefined;
  return finish(req, config, shape.room, {
    roomName,
    source: shape.source,
    ...(audioEnc ? { audio: audioEnc } : {}),
    ...(videoEnc ? { video: videoEnc } : {}),
    passthrough: false,
    outputs,
    identifier,
  });
}

/** v2 media + PASSTHROUGH: like track egress, one file whose container follows the track's codec. */
function planPassthrough(req: StartEgressRequest, shape: RequestShape, trackId: string, config: Config, now: Date): PipelineConfig {
  const file = shape.outputs[0]!;
  if (file.type !== 'file') throw errors.invalidField('passthrough output');
  const ctx = namingContext(req, shape.roomName, now);
  const storage = storageFor(file.upload ?? shape.storage, config);
  return finish(req, config, true, {
    roomName: shape.roomName,
    source: { type: 'sdk', subscription: { kind: 'track', trackId } },
    passthrough: true,
    outputs: [planFile(file.filepath, undefined, trackId, ctx, storage, file.disableManifest)],
    identifier: trackId,
  });
}

function planTrack(req: StartEgressRequest, track: TrackEgressRequest, config: Config, now: Date): PipelineConfig {
  const roomName = req.roomName || track.roomName;
  if (!roomName) throw errors.invalidField('room_name');
  if (!track.trackId) throw errors.invalidField('track_id');
  const output = track.output;
  let out: OutputPlan;
  if (output.case === 'file') {
    const storage = storageFor(output.value.output.value, config);
    out = planFile(output.value.filepath, undefined, track.trackId, namingContext(req, roomName, now), storage, output.value.disableManifest);
  } else if (output.case === 'websocketUrl') {
    if (!/^wss?:\/\//i.test(output.value)) throw errors.invalidUrl(output.value, 'invalid scheme');
    out = { type: 'websocket', url: output.value };
  } else {
    throw errors.invalidField('output');
  }
  return finish(req, config, true, {
    roomName,
    source: { type: 'sdk', subscription: { kind: 'track', trackId: track.trackId } },
    passthrough: true,
    outputs: [out],
    identifier: track.trackId,
  });
}

function namingContext(req: StartEgressRequest, roomName: string, now: Date): NamingContext {
  return { roomName, roomId: req.roomId, retryCount: req.retryCount, now };
}

/** output.storage → request.storage (v2) or the output's upload (v1) → config.storage → local disk. */
function storageFor(upload: RequestUpload | undefined, config: Config): StorageTarget {
  return resolveStorage(upload, config);
}

const hasBackup = (config: Config) => !!config.backup && !!(config.backup.s3 || config.backup.azure || config.backup.gcp || config.backup.alioss || config.backup.localDir);

/** The session limit per output type (§8): websocket counts as a stream. */
function maxDuration(outputs: OutputPlan[], config: Config): number {
  const l = config.sessionLimits;
  const byType: Record<OutputPlan['type'], number> = {
    file: l.fileOutputMaxDurationMs,
    stream: l.streamOutputMaxDurationMs,
    websocket: l.streamOutputMaxDurationMs,
    segments: l.segmentOutputMaxDurationMs,
    images: l.imageOutputMaxDurationMs,
  };
  const limits = [...new Set(outputs.map((o) => o.type))].map((t) => byType[t]).filter((ms) => ms > 0);
  return limits.length ? Math.min(...limits) : 0;
}

interface PlanBody {
  roomName: string;
  source: SourceConfig;
  audio?: AudioEncoding;
  video?: VideoEncoding;
  passthrough: boolean;
  outputs: OutputPlan[];
  identifier: string;
}

/** The parts every kind shares: connection info, manifest, limits. */
function finish(req: StartEgressRequest, config: Config, room: boolean, body: PlanBody): PipelineConfig {
  let token = '';
  let wsUrl = '';
  if (room) {
    token = req.token;
    if (!token && (!config.apiKey || !config.apiSecret)) throw errors.invalidField('token or api key/secret');
    wsUrl = req.wsUrl || config.wsUrl;
    if (!wsUrl) throw errors.invalidField('ws_url');
  }
  const manifest = hasBackup(config) || body.outputs.some((o) => (o.type === 'file' || o.type === 'segments' || o.type === 'images') && !o.disableManifest);
  return {
    egressId: req.egressId,
    kind: requestKind(req)!,
    roomName: body.roomName,
    roomId: req.roomId,
    retryCount: req.retryCount,
    token,
    wsUrl,
    source: body.source,
    ...(body.audio ? { audio: body.audio } : {}),
    ...(body.video ? { video: body.video } : {}),
    passthrough: body.passthrough,
    outputs: body.outputs,
    identifier: body.identifier,
    manifest,
    maxDurationMs: maxDuration(body.outputs, config),
  };
}

