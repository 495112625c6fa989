// Request planning without I/O: file naming (egress-behaviour §4.1–4.3), the STARTING info and credential
// redaction (§3.7), and planPipeline: every validation text, codecs, encoding, naming, storage and path safety.
import path from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import {
  AudioChannel,
  AudioCodec,
  AudioConfig,
  AudioMixing,
  AudioRoute,
  EncodedFileOutput,
  EncodedFileType,
  EncodingOptions,
  EncodingOptionsPreset,
  FileOutput,
  GCPUpload,
  ImageCodec,
  ImageFileSuffix,
  ImageOutput,
  Output,
  ParticipantInfo_Kind,
  ParticipantVideo,
  SegmentedFileOutput,
  SegmentedFileSuffix,
  StorageConfig as ProtoStorageConfig,
  StreamInfo_Status,
  StreamOutput,
  StreamProtocol,
  VideoCodec,
  DirectFileOutput,
  EgressInfo,
  EgressSourceType,
  EgressStatus,
  ExportReplayRequest,
  MediaSource,
  ParticipantEgressRequest,
  RoomCompositeEgressRequest,
  S3Upload,
  StartEgressRequest as V2StartEgressRequest,
  TemplateSource,
  TrackCompositeEgressRequest,
  TrackEgressRequest,
  WebEgressRequest,
  WebSource,
} from '@livekit/protocol';
import type { Config } from '../../shared/src/config/types.ts';
import { EgressError } from '../../shared/src/errors.ts';
import { SERVED, unservedReason } from '../../shared/src/plan/capabilities.ts';
import { redactStreamUrl, UNSAFE_URL_CHARS, validateStreamUrl } from '../../shared/src/plan/outputs/stream.ts';
import { resolveSdkPlaceholders } from '../../shared/src/plan/outputs/sdk-placeholders.ts';
import { checkOutputPath } from '../../shared/src/plan/path-safety.ts';
import type { FileOutputPlan, ImageOutputPlan, PipelineConfig, SegmentsOutputPlan, StreamOutputPlan } from '../../shared/src/plan/pipeline-config.ts';
import { planPipeline } from '../../shared/src/plan/plan.ts';
import {
  applyPlaceholders,
  cleanPath,
  fileOutputPath,
  formatTime,
  formatUtc,
  type NamingContext,
} from '../../shared/src/plan/naming.ts';
import { redactQuery, redactRequest } from '../../shared/src/plan/redact.ts';
import { requestKind, startingInfo, type RequestKind } from '../../shared/src/plan/request.ts';
import { StartEgressRequest } from '../../shared/src/proto/rpc.ts';

// A zone that is not UTC, so formatting with UTC getters instead of process-local time fails these tests.
// Node applies a runtime TZ change to later Date calls.
process.env.TZ = 'America/New_York';
// 2022-10-04 01:13:06.789 in New York (EDT, UTC-4).
const NOW = new Date(Date.UTC(2022, 9, 4, 5, 13, 6, 789));

const ROOM_ID = '10719607-f7b0-4d82-afe1-06b77e91fe12';
const ctx: NamingContext = { roomName: 'testroom', roomId: ROOM_ID, now: NOW };
const trackCtx: NamingContext = {
  ...ctx,
  publisherIdentity: 'david',
  trackId: 'TR_SKasdXCVgHsei',
  trackType: 'audio',
  trackSource: 'microphone',
};

t.test('time formats are process-local', async (t) => {
  t.equal(NOW.getHours(), 1, 'the test zone really is in effect');
  t.equal(formatTime(NOW), '2022-10-04T011306');
  t.equal(formatUtc(NOW), '20221004011306789');
  t.equal(applyPlaceholders('{utc}', ctx), '20221004011306789');
  t.equal(applyPlaceholders('a-{time}-{time}', ctx), 'a-2022-10-04T011306-2022-10-04T011306', 'every occurrence');
  t.equal(formatUtc(new Date(2022, 0, 2, 3, 4, 5, 7)), '20220102030405007', 'zero padding, 3-digit ms');
});

t.test('fileOutputPath: README examples and extension rules', async (t) => {
  const cases: [string, string, string, NamingContext, string][] = [
    // requested, extension, identifier, context, expected
    ['', '.mp4', 'testroom', ctx, 'testroom-2022-10-04T011306.mp4'],
    ['livekit-recordings/', '.mp4', 'testroom', ctx, 'livekit-recordings/testroom-2022-10-04T011306.mp4'],
    ['{room_name}/{time}', '.mp4', 'testroom', ctx, 'testroom/2022-10-04T011306.mp4'],
    ['{room_id}-{publisher_identity}.mp4', '.mp4', 'testroom', trackCtx, `${ROOM_ID}-david.mp4`],
    ['{track_type}-{track_source}-{track_id}', '.ogg', 'TR_SKasdXCVgHsei', trackCtx, 'audio-microphone-TR_SKasdXCVgHsei.ogg'],
    ['', '.ogg', 'TR_SKasdXCVgHsei', trackCtx, 'TR_SKasdXCVgHsei-2022-10-04T011306.ogg'],
    ['x.mp4', '.ogg', 'id', ctx, 'x.ogg'],
    ['x.bar', '.ogg', 'id', ctx, 'x.bar.ogg'],
    ['x.ogg', '.ogg', 'id', ctx, 'x.ogg'],
    ['x', '.ogg', 'id', ctx, 'x.ogg'],
    ['dir.mp4/file', '.ogg', 'id', ctx, 'dir.mp4/file.ogg'],
    ['../../{room_name}.mp4', '.mp4', 'id', ctx, 'testroom.mp4'],
    ['/abs/dir/', '.mp4', 'testroom', ctx, '/abs/dir/testroom-2022-10-04T011306.mp4'],
    ['', '.mp4', 'testroom', { ...ctx, retryCount: 2 }, 'testroom-2022-10-04T011306-2.mp4'],
    ['rec-{retry}', '.mp4', 'testroom', { ...ctx, retryCount: 2 }, 'rec-2.mp4'],
  ];
  for (const [requested, ext, id, c, want] of cases) t.equal(fileOutputPath(requested, ext, id, c), want, JSON.stringify([requested, ext]));
});

t.test('applyPlaceholders', async (t) => {
  t.equal(applyPlaceholders('{room_name}-{room_id}', ctx), `testroom-${ROOM_ID}`);
  // Room placeholders only with a room name; unknown values stay literal.
  t.equal(applyPlaceholders('{room_name}-{room_id}', { roomId: ROOM_ID, now: NOW }), '{room_name}-{room_id}');
  t.equal(applyPlaceholders('{track_id}-{publisher_identity}', ctx), '{track_id}-{publisher_identity}');
  t.equal(applyPlaceholders('r{retry}', ctx), 'r{retry}', '{retry} stays without a retry');
  t.equal(applyPlaceholders('r{retry}', { ...ctx, retryCount: 3 }), 'r3');
  t.equal(applyPlaceholders('{track_type}/{track_source}', { ...trackCtx, trackType: 'video', trackSource: 'screen_share' }), 'video/screen_share');
});

t.test('cleanPath', async (t) => {
  const cases: [string, string][] = [
    ['', ''],
    ['.', ''],
    ['..', ''],
    ['./', ''],
    ['../', ''],
    ['../a', 'a'],
    ['../../a/b', 'a/b'],
    ['a/../../b', 'b'],
    ['../..', ''],
    ['a/b/', 'a/b/'],
    ['a//b/./c', 'a/b/c'],
    ['a/b/../c/', 'a/c/'],
    ['/abs/path', '/abs/path'],
    ['/abs/path/', '/abs/path/'],
    ['/abs/../x', '/x'],
    ['./rel/file.mp4', 'rel/file.mp4'],
  ];
  for (const [input, want] of cases) t.equal(cleanPath(input), want, JSON.stringify(input));
});

const trackRequest = (over: Partial<TrackEgressRequest> = {}) =>
  new TrackEgressRequest({
    roomName: 'room',
    trackId: 'TR_1',
    output: { case: 'file', value: new DirectFileOutput({ filepath: 'out/{track_id}', disableManifest: true }) },
    ...over,
  });

const startTrack = (over: Partial<StartEgressRequest> = {}, track = trackRequest()) =>
  new StartEgressRequest({ egressId: 'EG_abcdefghijkl', roomId: 'RM_1', request: { case: 'track', value: track }, ...over });

t.test('requestKind', async (t) => {
  const v2 = (source: V2StartEgressRequest['source']) => ({ case: 'egress' as const, value: new V2StartEgressRequest({ source }) });
  const cases: [StartEgressRequest['request'], RequestKind | undefined][] = [
    [{ case: 'roomComposite', value: new RoomCompositeEgressRequest() }, 'room_composite'],
    [{ case: 'web', value: new WebEgressRequest() }, 'web'],
    [{ case: 'participant', value: new ParticipantEgressRequest() }, 'participant'],
    [{ case: 'trackComposite', value: new TrackCompositeEgressRequest() }, 'track_composite'],
    [{ case: 'track', value: new TrackEgressRequest() }, 'track'],
    [{ case: 'replay', value: new ExportReplayRequest() }, 'replay'],
    [v2({ case: 'template', value: new TemplateSource() }), 'template'],
    [v2({ case: 'web', value: new WebSource() }), 'web'],
    [v2({ case: 'media', value: new MediaSource() }), 'media'],
    [v2({ case: undefined }), undefined],
    [{ case: undefined }, undefined],
  ];
  for (const [request, want] of cases) t.equal(requestKind(new StartEgressRequest({ request })), want, String(request.case));
});

t.test('startingInfo', async (t) => {
  const now = 1_750_000_000_123_456_789n;
  const req = startTrack({ retryCount: 2 });
  const info = startingInfo(req, now);
  t.ok(info instanceof EgressInfo);
  t.equal(info.egressId, 'EG_abcdefghijkl');
  t.equal(info.roomId, 'RM_1');
  t.equal(info.roomName, 'room', 'from the track request');
  t.equal(info.status, EgressStatus.EGRESS_STARTING);
  t.equal(info.sourceType, EgressSourceType.SDK);
  t.equal(info.startedAt, now);
  t.equal(info.updatedAt, now);
  t.equal(info.retryCount, 2);
  t.equal(info.request.case, 'track');
  t.ok(info.request.case === 'track' && info.request.value.equals(req.request.value as TrackEgressRequest), 'the track request is copied');
  t.not(info.request.value, req.request.value, 'a copy, not the same object');
  // It must survive the wire, as livekit-server stores it.
  t.ok(EgressInfo.fromBinary(info.toBinary()).equals(info));

  t.equal(startingInfo(startTrack({ roomName: 'explicit' }), now).roomName, 'explicit', 'rpc room_name wins');
  const web = startingInfo(new StartEgressRequest({ egressId: 'EG_w', request: { case: 'web', value: new WebEgressRequest({ url: 'https://x' }) } }), now);
  t.equal(web.sourceType, EgressSourceType.WEB);
  t.equal(web.roomName, '');
  const rc = startingInfo(
    new StartEgressRequest({ egressId: 'EG_rc', request: { case: 'roomComposite', value: new RoomCompositeEgressRequest({ roomName: 'rcroom' }) } }),
    now,
  );
  t.equal(rc.sourceType, EgressSourceType.WEB);
  t.equal(rc.roomName, 'rcroom');
  t.equal(rc.request.case, 'roomComposite');
});

t.test('redaction', async (t) => {
  const s3 = new S3Upload({ accessKey: 'AKIAREALKEY', secret: 'realsecret', sessionToken: '', bucket: 'bucket', region: 'us-east-1' });
  const req = startTrack(
    { token: 'jwt.token.here' },
    trackRequest({ output: { case: 'file', value: new DirectFileOutput({ filepath: 'f.ogg', output: { case: 's3', value: s3 } }) } }),
  );
  const before = req.clone();

  const uploadOf = (r: StartEgressRequest | EgressInfo) => {
    if (r.request.case !== 'track' || r.request.value.output.case !== 'file') throw new Error('not a track file request');
    const upload = r.request.value.output.value.output;
    if (upload.case !== 's3') throw new Error('not s3');
    return upload.value;
  };

  const redacted = redactRequest(req);
  t.equal(uploadOf(redacted).accessKey, '{access_key}');
  t.equal(uploadOf(redacted).secret, '{secret}');
  t.equal(uploadOf(redacted).sessionToken, '', 'empty stays empty');
  t.equal(uploadOf(redacted).bucket, 'bucket', 'non-secrets kept');
  t.equal(uploadOf(redacted).region, 'us-east-1');
  t.equal(redacted.token, '');

  const info = startingInfo(req, 1n);
  t.equal(uploadOf(info).accessKey, '{access_key}', 'the stored info is redacted');
  t.equal(uploadOf(info).secret, '{secret}');

  t.ok(req.equals(before), 'the original request is not mutated');
  t.equal(uploadOf(req).accessKey, 'AKIAREALKEY');
  t.equal(uploadOf(req).secret, 'realsecret');
  t.equal(req.token, 'jwt.token.here');

  const wsUrl = 'wss://example.com/ingest?token=abc123&room=r1&flag';
  const ws = startTrack({}, trackRequest({ output: { case: 'websocketUrl', value: wsUrl } }));
  const wsRedacted = redactRequest(ws);
  t.same(wsRedacted.request.case === 'track' && wsRedacted.request.value.output, {
    case: 'websocketUrl',
    value: 'wss://example.com/ingest?token={...}&room={...}&flag',
  });
  t.same(ws.request.case === 'track' && ws.request.value.output, { case: 'websocketUrl', value: wsUrl }, 'original URL untouched');
  const wsInfo = startingInfo(ws, 1n);
  t.equal(wsInfo.request.case === 'track' && wsInfo.request.value.output.value, 'wss://example.com/ingest?token={...}&room={...}&flag');

  t.equal(redactQuery('wss://example.com/ws'), 'wss://example.com/ws', 'no query: unchanged');
  t.equal(redactQuery('srt://h:1?streamid=abc&pkt_size=1316'), 'srt://h:1?streamid={...}&pkt_size={...}');
});

// ---------------------------------------------------------------------------------------------------
// planPipeline
// ---------------------------------------------------------------------------------------------------

const CONFIG: Config = {
  apiKey: 'key', apiSecret: 'secret', wsUrl: 'wss://lk.example.com',
  redis: { address: 'redis:6379', username: '', password: '', db: 0, useTls: false, sentinelMasterName: '', sentinelAddresses: [], clusterAddresses: [] },
  clusterId: '', logging: { level: 'info', json: false }, healthPort: 0, templatePort: 7980, templateBase: 'http://localhost:7980/',
  prometheusPort: 0, debugHandlerPort: 0, httpBindAddress: '0.0.0.0', enableChromeSandbox: false, insecure: false,
  chromePath: '/usr/bin/chromium', chromeFlags: {}, webStartTimeoutMs: 60_000,
  localOutputDir: '/out', tmpDir: '/tmp/egress', disallowLocalStorage: false, ioCreateTimeoutMs: 1, ioUpdateTimeoutMs: 1, ioUpdateRetryWindowMs: 1, subscribeTimeoutMs: 1,
  cpuCost: {
    capacity: 2, maxCpuUtilization: 0.8, maxMemory: 0, memoryCost: 0, roomCompositeCpuCost: 4, audioRoomCompositeCpuCost: 1,
    sdkAudioRoomCompositeCpuCost: 1, webCpuCost: 4, audioWebCpuCost: 1, participantCpuCost: 2, trackCompositeCpuCost: 1, trackCpuCost: 0.5,
    maxPulseClients: 60, cpuKillGraceSec: 30,
  },
  sessionLimits: { fileOutputMaxDurationMs: 0, fileOutputMaxSize: 0, streamOutputMaxDurationMs: 0, segmentOutputMaxDurationMs: 0, imageOutputMaxDurationMs: 0 },
  debug: { enableProfiling: false }, drainTimeoutMs: 0, tmpMaxAgeMs: 0, pulseSinkReapGraceSec: 30, handlerPoolIdle: 1, handlerPoolBrowser: true, remuxTracks: false, testOverrides: {},
};
const cfg = (over: Partial<Config> = {}): Config => ({ ...CONFIG, ...over });

const EG = 'EG_abcdefghijkl';
const rpc = (request: StartEgressRequest['request'], over: Partial<StartEgressRequest> = {}) =>
  new StartEgressRequest({ egressId: EG, roomId: ROOM_ID, request, ...over });
const rc = (over: Partial<RoomCompositeEgressRequest> = {}, rpcOver: Partial<StartEgressRequest> = {}) =>
  rpc({ case: 'roomComposite', value: new RoomCompositeEgressRequest({ roomName: 'testroom', ...over }) }, rpcOver);
const v2 = (over: Partial<V2StartEgressRequest> = {}, rpcOver: Partial<StartEgressRequest> = {}) =>
  rpc({ case: 'egress', value: new V2StartEgressRequest({ roomName: 'testroom', ...over }) }, rpcOver);
const media = (m: Partial<MediaSource>) => ({ case: 'media' as const, value: new MediaSource(m) });
const fileOut = (f: Partial<FileOutput> = {}, storage?: ProtoStorageConfig) => new Output({ config: { case: 'file', value: new FileOutput(f) }, ...(storage ? { storage } : {}) });
const streamOut = (urls: string[], protocol = StreamProtocol.DEFAULT_PROTOCOL) => new Output({ config: { case: 'stream', value: new StreamOutput({ urls, protocol }) } });
const segOut = (s: Partial<SegmentedFileOutput> = {}) => new Output({ config: { case: 'segments', value: new SegmentedFileOutput(s) } });
const imgOut = (i: Partial<ImageOutput> = {}) => new Output({ config: { case: 'images', value: new ImageOutput(i) } });
const encFile = (f: Partial<EncodedFileOutput> = {}) => new EncodedFileOutput(f);
const audioTrack = (trackId: string, channel = AudioChannel.BOTH) => new AudioRoute({ match: { case: 'trackId', value: trackId }, channel });

const plan = (req: StartEgressRequest, config = CONFIG) => planPipeline(req, config, NOW);
function planErr(req: StartEgressRequest, config = CONFIG): EgressError {
  try {
    plan(req, config);
  } catch (err) {
    if (err instanceof EgressError) return err;
    throw err;
  }
  throw new Error('expected planPipeline to throw');
}
const fileOf = (p: PipelineConfig) => p.outputs.find((o) => o.type === 'file') as FileOutputPlan;

t.test('planPipeline: track egress', async (t) => {
  const p = plan(startTrack());
  t.same(p.source, { type: 'sdk', subscription: { kind: 'track', trackId: 'TR_1' } });
  t.equal(p.passthrough, true);
  t.equal(p.audio, undefined);
  t.equal(p.video, undefined);
  t.equal(p.identifier, 'TR_1');
  t.equal(p.kind, 'track');
  t.equal(p.roomName, 'room');
  t.equal(p.token, '', 'minted by the handler from api key/secret');
  t.equal(p.wsUrl, 'wss://lk.example.com');
  t.equal(p.manifest, false, 'disable_manifest and no backup');
  t.same(p.outputs, [{ type: 'file', filepath: 'out/{track_id}', disableManifest: true, storage: { prefix: '', generatePresignedUrl: false, localDir: '/out' } }]);
  t.notOk('fileType' in p.outputs[0]!, 'the container comes with the codec');
  t.equal(JSON.stringify(JSON.parse(JSON.stringify(p))), JSON.stringify(p), 'plain JSON');

  const ws = plan(startTrack({}, trackRequest({ output: { case: 'websocketUrl', value: 'wss://x/ws?k=1' } })));
  t.same(ws.outputs, [{ type: 'websocket', url: 'wss://x/ws?k=1' }]);
  t.equal(planErr(startTrack({}, trackRequest({ output: { case: 'websocketUrl', value: 'http://x/ws' } }))).message, 'invalid url http://x/ws: invalid scheme');

  const s3 = new S3Upload({ bucket: 'b', accessKey: 'a', secret: 's' });
  const withS3 = plan(startTrack({}, trackRequest({ output: { case: 'file', value: new DirectFileOutput({ output: { case: 's3', value: s3 } }) } })));
  t.equal(fileOf(withS3).storage.s3?.bucket, 'b');
  const local = startTrack({}, trackRequest({ output: { case: 'file', value: new DirectFileOutput({ filepath: 'x' }) } }));
  t.equal(planErr(local, cfg({ disallowLocalStorage: true })).message, 'request has missing or invalid field: output');
  t.doesNotThrow(() => plan(local, cfg({ disallowLocalStorage: true, storage: { prefix: '', generatePresignedUrl: false, s3: {} as never } })), 'config storage is fine');
  t.equal(plan(startTrack({ token: 'tok', wsUrl: 'wss://req' })).token, 'tok');
  t.equal(plan(startTrack({ token: 'tok', wsUrl: 'wss://req' })).wsUrl, 'wss://req', 'request ws_url wins');
});

t.test('planPipeline: every synchronous error text (§13.2)', async (t) => {
  const routeKind = new AudioRoute({ match: { case: 'participantKind', value: ParticipantInfo_Kind.AGENT } });
  const pt = (m: Partial<MediaSource>, outputs = [fileOut()]) => v2({ source: media(m), encoding: { case: 'preset', value: EncodingOptionsPreset.PASSTHROUGH }, outputs });
  const cases: [string, StartEgressRequest, string, string?, Config?][] = [
    ['no egress id', startTrack({ egressId: '' }), 'request has missing or invalid field: egressID'],
    ['no request', new StartEgressRequest({ egressId: EG }), 'request has missing or invalid field: request'],
    ['v2 without source', v2({ outputs: [fileOut()] }), 'request has missing or invalid field: source'],
    ['track without track_id', startTrack({}, trackRequest({ trackId: '' })), 'request has missing or invalid field: track_id'],
    ['track without room', startTrack({}, trackRequest({ roomName: '' })), 'request has missing or invalid field: room_name'],
    ['track without output', startTrack({}, trackRequest({ output: { case: undefined } })), 'request has missing or invalid field: output'],
    ['template base url', rc({ customBaseUrl: 'ftp://x/', fileOutputs: [encFile()] }), 'request has missing or invalid field: template base url'],
    ['web url', rpc({ case: 'web', value: new WebEgressRequest({ url: 'file:///etc/passwd', fileOutputs: [encFile()] }) }), 'request has missing or invalid field: web url'],
    ['audio_only and video_only', rc({ audioOnly: true, videoOnly: true, layout: 'grid', fileOutputs: [encFile()] }), 'request has missing or invalid field: audio_only and video_only'],
    ['identity', rpc({ case: 'participant', value: new ParticipantEgressRequest({ roomName: 'r', fileOutputs: [encFile()] }) }), 'request has missing or invalid field: identity'],
    ['no track ids', rpc({ case: 'trackComposite', value: new TrackCompositeEgressRequest({ roomName: 'r', fileOutputs: [encFile()] }) }), 'request has missing or invalid field: audio_track_id or video_track_id'],
    ['media without audio or video', v2({ source: media({}), outputs: [fileOut()] }), 'request has missing or invalid field: audio or video'],
    ['token or api key', rc({ fileOutputs: [encFile()] }), 'request has missing or invalid field: token or api key/secret', undefined, cfg({ apiSecret: '' })],
    ['ws_url', rc({ fileOutputs: [encFile()] }), 'request has missing or invalid field: ws_url', undefined, cfg({ wsUrl: '' })],
    ['width', rc({ fileOutputs: [encFile()], options: { case: 'advanced', value: new EncodingOptions({ width: 15 }) } }), 'request has missing or invalid field: width'],
    ['odd width', rc({ fileOutputs: [encFile()], options: { case: 'advanced', value: new EncodingOptions({ width: 641 }) } }), 'request has missing or invalid field: width'],
    ['height', rc({ fileOutputs: [encFile()], options: { case: 'advanced', value: new EncodingOptions({ height: 7 }) } }), 'request has missing or invalid field: height'],
    ['depth', rc({ fileOutputs: [encFile()], options: { case: 'advanced', value: new EncodingOptions({ depth: 12 }) } }), 'request has missing or invalid field: depth'],
    ['passthrough on v1', rc({ fileOutputs: [encFile()], options: { case: 'preset', value: EncodingOptionsPreset.PASSTHROUGH } }), 'request has missing or invalid field: preset'],
    ['unknown preset', rc({ fileOutputs: [encFile()], options: { case: 'preset', value: 42 as EncodingOptionsPreset } }), 'request has missing or invalid field: preset'],
    ['no outputs', rc(), 'request has missing or invalid field: output'],
    ['v2 no outputs', v2({ source: media({ video: { case: 'videoTrackId', value: 'TR_v' } }) }), 'request has missing or invalid field: output'],
    ['output config', v2({ source: media({ video: { case: 'videoTrackId', value: 'TR_v' } }), outputs: [new Output()] }), 'request has missing or invalid field: output config'],
    ['multiple files', rc({ fileOutputs: [encFile(), encFile()] }), 'request has missing or invalid field: multiple file outputs'],
    ['multiple streams', rc({ streamOutputs: [new StreamOutput({ urls: ['rtmp://a/b/c'] }), new StreamOutput({ urls: ['rtmp://a/b/d'] })] }), 'request has missing or invalid field: multiple stream outputs'],
    ['multiple segments', rc({ segmentOutputs: [new SegmentedFileOutput(), new SegmentedFileOutput()] }), 'request has missing or invalid field: multiple segmented file outputs'],
    ['stream url', rc({ streamOutputs: [new StreamOutput({ protocol: StreamProtocol.RTMP })] }), 'request has missing or invalid field: stream url'],
    ['stream protocol v1 websocket', rc({ streamOutputs: [new StreamOutput({ urls: ['wss://x/y'] })] }), 'request has missing or invalid field: stream protocol'],
    ['audio_only images', rc({ audioOnly: true, imageOutputs: [new ImageOutput()] }), 'request has missing or invalid field: audio_only images'],
    ['segments filename_suffix', rc({ segmentOutputs: [new SegmentedFileOutput({ filenameSuffix: 7 as SegmentedFileSuffix })] }), 'request has missing or invalid field: filename_suffix'],
    ['images filename_suffix', rc({ imageOutputs: [new ImageOutput({ filenameSuffix: 9 as ImageFileSuffix })] }), 'request has missing or invalid field: filename_suffix'],
    ['file output type', rc({ fileOutputs: [encFile({ fileType: 9 as EncodedFileType })] }), 'request has missing or invalid field: output type'],
    ['live dir', rc({ segmentOutputs: [new SegmentedFileOutput({ playlistName: 'a/p', livePlaylistName: 'b/l' })] }), 'request has missing or invalid field: live_playlist_name must be in same directory as playlist_name'],
    ['live identical', rc({ segmentOutputs: [new SegmentedFileOutput({ playlistName: 'p.m3u8', livePlaylistName: 'p' })] }), 'request has missing or invalid field: live_playlist_name cannot be identical to playlist_name'],
    ['no codec', rc({ fileOutputs: [encFile({ fileType: EncodedFileType.OGG })], segmentOutputs: [new SegmentedFileOutput()], audioOnly: true }), 'no supported codec is compatible with all outputs'],
    ['image codec', rc({ imageOutputs: [new ImageOutput({ imageCodec: 5 as ImageCodec })] }), 'no supported codec is compatible with all outputs'],
    ['mp3 + video', rc({ fileOutputs: [encFile({ fileType: EncodedFileType.MP3 })] }), 'format audio/mpeg incompatible with codec video/h264'],
    ['ogg + video', rc({ fileOutputs: [encFile({ fileType: EncodedFileType.OGG })] }), 'format audio/ogg incompatible with codec video/h264'],
    ['hls + mp3', rc({ segmentOutputs: [new SegmentedFileOutput()], options: { case: 'advanced', value: new EncodingOptions({ audioCodec: AudioCodec.AC_MP3 }) } }), 'format application/x-mpegurl incompatible with codec audio/mpeg'],
    ['ogg + aac', rc({ audioOnly: true, fileOutputs: [encFile({ fileType: EncodedFileType.OGG })], options: { case: 'advanced', value: new EncodingOptions({ audioCodec: AudioCodec.AAC }) } }), 'format audio/ogg incompatible with codec audio/aac'],
    ['no file type', rc({ audioOnly: true, fileOutputs: [encFile()], options: { case: 'advanced', value: new EncodingOptions({ audioCodec: AudioCodec.AC_MP3 }) }, segmentOutputs: [] }), '', undefined],
    ['invalid scheme', rc({ streamOutputs: [new StreamOutput({ protocol: StreamProtocol.SRT, urls: ['rtmp://a/b/c'] })] }), 'invalid url rtmp://a/b/c: invalid scheme'],
    ['invalid protocol', rc({ streamOutputs: [new StreamOutput({ urls: ['http://a/b/c'] })] }), 'invalid url http://a/b/c: invalid protocol'],
    ['rtmp format', rc({ streamOutputs: [new StreamOutput({ urls: ['rtmp://host/key'] })] }), 'invalid url rtmp://host/key: rtmp urls must be of format rtmp(s)://{host}(/{path})/{app}/{stream_key}( live=1)'],
    ['replay stream', rpc({ case: 'replay', value: new ExportReplayRequest({ source: media({ video: { case: 'videoTrackId', value: 'TR_v' } }), outputs: [streamOut(['rtmp://a/b/c'])] }) }, { roomName: 'r' }), 'stream output for non-live pipeline is not yet supported'],
    ['retry file', rc({ fileOutputs: [encFile({ filepath: 'rec.mp4' })] }, { retryCount: 1 }), 'output configuration does not support retry', 'failed_precondition'],
    ['retry segments prefix', rc({ segmentOutputs: [new SegmentedFileOutput({ filenamePrefix: 'seg' })] }, { retryCount: 1 }), 'output configuration does not support retry', 'failed_precondition'],
    ['retry segments playlist', rc({ segmentOutputs: [new SegmentedFileOutput({ playlistName: 'pl' })] }, { retryCount: 1 }), 'output configuration does not support retry', 'failed_precondition'],
    ['assume role', rc({ fileOutputs: [encFile({ output: { case: 's3', value: new S3Upload({ bucket: 'b', assumeRoleArn: 'arn:aws:iam::1:role/x' }) } })] }), 'S3 upload using AssumeRole is disabled for this account', 'permission_denied'],
    ['disallow local', rc({ fileOutputs: [encFile()] }), 'request has missing or invalid field: output', undefined, cfg({ disallowLocalStorage: true })],
    // PASSTHROUGH (§1.8)
    ['passthrough source', v2({ source: { case: 'template', value: new TemplateSource({ layout: 'grid' }) }, encoding: { case: 'preset', value: EncodingOptionsPreset.PASSTHROUGH }, outputs: [fileOut()] }), 'request has missing or invalid field: passthrough source'],
    ['passthrough video_track_id', pt({ video: { case: 'videoTrackId', value: '' }, audio: new AudioConfig({ routes: [audioTrack('TR_a')] }) }), 'request has missing or invalid field: passthrough video_track_id'],
    ['passthrough participant_video', pt({ video: { case: 'participantVideo', value: new ParticipantVideo({ identity: 'p' }) } }), 'request has missing or invalid field: passthrough participant_video'],
    ['passthrough capture_all', pt({ audio: new AudioConfig({ captureAll: true }) }), 'request has missing or invalid field: passthrough capture_all'],
    ['passthrough audio routes', pt({ audio: new AudioConfig({ routes: [audioTrack('a'), audioTrack('b')] }) }), 'request has missing or invalid field: passthrough audio routes'],
    ['passthrough route match', pt({ audio: new AudioConfig({ routes: [routeKind] }) }), 'request has missing or invalid field: passthrough audio route match'],
    ['passthrough route track_id', pt({ audio: new AudioConfig({ routes: [audioTrack('')] }) }), 'request has missing or invalid field: passthrough audio route track_id'],
    ['passthrough two tracks', pt({ video: { case: 'videoTrackId', value: 'TR_v' }, audio: new AudioConfig({ routes: [audioTrack('TR_a')] }) }), 'request has missing or invalid field: passthrough track_id'],
    ['passthrough no track', pt({ audio: new AudioConfig({}) }), 'request has missing or invalid field: passthrough track_id'],
    ['passthrough outputs', pt({ video: { case: 'videoTrackId', value: 'TR_v' } }, [fileOut(), fileOut()]), 'request has missing or invalid field: passthrough outputs'],
    ['passthrough output', pt({ video: { case: 'videoTrackId', value: 'TR_v' } }, [segOut()]), 'request has missing or invalid field: passthrough output'],
    ['passthrough file_type', pt({ video: { case: 'videoTrackId', value: 'TR_v' } }, [fileOut({ fileType: EncodedFileType.MP4 })]), 'request has missing or invalid field: passthrough file_type'],
  ];
  for (const [what, req, message, code = 'invalid_argument', config] of cases) {
    if (message === '') continue;
    const err = planErr(req, config);
    t.equal(err.message, message, what);
    t.equal(err.code, code, `${what}: code`);
  }
});

t.test('planPipeline: sources and media per kind', async (t) => {
  const web = plan(rpc({ case: 'web', value: new WebEgressRequest({ url: 'https://example.com/page', fileOutputs: [encFile()] }) }), cfg({ wsUrl: '', apiKey: '' }));
  t.same(web.source, { type: 'web', url: 'https://example.com/page', awaitStartSignal: false });
  t.equal(web.identifier, 'web');
  t.equal(web.roomName, '');
  t.equal(web.token, '');
  t.equal(fileOf(web).filepath, 'web-2022-10-04T011306.mp4');

  const tmpl = plan(rc({ layout: 'grid', fileOutputs: [encFile()] }));
  t.same(tmpl.source, { type: 'web', url: 'http://localhost:7980/?layout=grid', template: { baseUrl: 'http://localhost:7980/', layout: 'grid' }, awaitStartSignal: true });
  t.ok(tmpl.audio && tmpl.video);

  const audioRc = plan(rc({ audioOnly: true, audioMixing: AudioMixing.DUAL_CHANNEL_AGENT, fileOutputs: [encFile()] }));
  t.same(audioRc.source, { type: 'sdk', subscription: { kind: 'room_audio', mixing: 'dual_channel_agent' } }, 'audio only, no layout: SDK');
  t.equal(audioRc.video, undefined);
  const v2audio = plan(v2({ source: { case: 'template', value: new TemplateSource({ audioOnly: true }) }, outputs: [fileOut()] }));
  t.same(v2audio.source, { type: 'sdk', subscription: { kind: 'room_audio', mixing: 'default' } });
  t.equal(v2audio.kind, 'template');
  t.equal(plan(rc({ audioOnly: true, layout: 'speaker', fileOutputs: [encFile()] })).source.type, 'web', 'a layout keeps Chrome');
  t.equal(plan(rc({ videoOnly: true, fileOutputs: [encFile()] })).audio, undefined);

  const part = plan(rpc({ case: 'participant', value: new ParticipantEgressRequest({ roomName: 'testroom', identity: 'david', screenShare: true, fileOutputs: [encFile()] }) }));
  t.same(part.source, { type: 'sdk', subscription: { kind: 'participant', identity: 'david', screenShare: true } });
  t.ok(part.audio && part.video, 'both, always');
  t.equal(fileOf(part).filepath, 'testroom-2022-10-04T011306.mp4', 'room name, not identity');

  const tc = plan(rpc({ case: 'trackComposite', value: new TrackCompositeEgressRequest({ roomName: 'testroom', audioTrackId: 'TR_a', fileOutputs: [encFile()] }) }));
  t.same(tc.source, { type: 'sdk', subscription: { kind: 'track_composite', audioTrackId: 'TR_a' } });
  t.equal(tc.video, undefined);
  t.equal(fileOf(tc).fileType, 'ogg', 'audio only, default file → OGG');
  t.equal(tc.audio?.codec, 'opus');

  const m = plan(
    v2({
      source: media({
        video: { case: 'participantVideo', value: new ParticipantVideo({ identity: 'p', preferScreenShare: true }) },
        audio: new AudioConfig({
          routes: [
            audioTrack('TR_a', AudioChannel.LEFT),
            new AudioRoute({ match: { case: 'participantIdentity', value: 'bob' }, channel: AudioChannel.RIGHT }),
            new AudioRoute({ match: { case: 'participantKind', value: ParticipantInfo_Kind.AGENT } }),
          ],
        }),
      }),
      outputs: [fileOut()],
    }),
  );
  t.same(m.source, {
    type: 'sdk',
    subscription: {
      kind: 'media',
      video: { identity: 'p', preferScreenShare: true },
      audio: {
        captureAll: false,
        routes: [
          { match: { trackId: 'TR_a' }, channel: 'left' },
          { match: { identity: 'bob' }, channel: 'right' },
          { match: { participantKind: 'agent' }, channel: 'both' },
        ],
      },
    },
  });

  const ptPlan = plan(v2({ source: media({ audio: new AudioConfig({ routes: [audioTrack('TR_a')] }) }), encoding: { case: 'preset', value: EncodingOptionsPreset.PASSTHROUGH }, outputs: [fileOut({ filepath: '{track_id}/x' })] }));
  t.same(ptPlan.source, { type: 'sdk', subscription: { kind: 'track', trackId: 'TR_a' } });
  t.equal(ptPlan.passthrough, true);
  t.equal(ptPlan.identifier, 'TR_a');
  t.equal(fileOf(ptPlan).fileType, undefined);
  t.equal(fileOf(ptPlan).filepath, '{track_id}/x');
  t.equal(ptPlan.audio, undefined);
});

t.test('planPipeline: output multiplicity (F15) and kinds', async (t) => {
  // The deprecated single output stands in for its kind's empty list (the SDK sends both: no duplicate).
  t.same(plan(rc({ output: { case: 'file', value: encFile({ filepath: 'a' }) }, fileOutputs: [encFile({ filepath: 'b' })] })).outputs.map((o) => o.type), ['file']);
  const p = plan(rc({ output: { case: 'file', value: encFile({ filepath: 'a' }) }, segmentOutputs: [new SegmentedFileOutput()], imageOutputs: [new ImageOutput(), new ImageOutput({ filenamePrefix: 'b/' })] }));
  t.same(p.outputs.map((o) => o.type), ['file', 'segments', 'images', 'images']);
  const s = plan(rc({ output: { case: 'stream', value: new StreamOutput({ urls: ['mux://abc', 'rtmp://h/app/key live=1'] }) } }));
  t.same(s.outputs, [{ type: 'stream', protocol: 'rtmp', urls: ['rtmps://global-live.mux.com:443/app/abc', 'rtmp://h/app/key live=1'] }]);
  t.same(plan(rc({ streamOutputs: [new StreamOutput({ urls: ['srt://h:9000?streamid=x'] })] })).outputs, [{ type: 'stream', protocol: 'srt', urls: ['srt://h:9000?streamid=x'] }]);
  t.same(plan(rc({ streamOutputs: [new StreamOutput({ urls: ['twitch://key'] })] })).outputs, [{ type: 'stream', protocol: 'rtmp', urls: ['twitch://key'] }]);

  // v2 websocket: by scheme or protocol; audio only, video silently dropped.
  const mediaAv = media({ video: { case: 'videoTrackId', value: 'TR_v' }, audio: new AudioConfig({ captureAll: true }) });
  for (const out of [streamOut(['wss://x/a']), streamOut(['ws://x/a'], StreamProtocol.WEBSOCKET)]) {
    const w = plan(v2({ source: mediaAv, outputs: [out] }));
    t.same(w.outputs, [{ type: 'websocket', url: (out.config.value as StreamOutput).urls[0] }]);
    t.equal(w.video, undefined, 'video disabled');
    t.same(w.audio, { codec: 'raw', bitrateKbps: 128, frequency: 48000, channels: 2 });
  }
  t.equal(planErr(v2({ source: mediaAv, outputs: [streamOut(['rtmp://a/b/c'], StreamProtocol.WEBSOCKET)] })).message, 'invalid url rtmp://a/b/c: invalid scheme');

  // Images only: audio disabled; size from the encoding for web sources, 0 (the track's) for SDK.
  const img = plan(rc({ imageOutputs: [new ImageOutput()] }));
  t.equal(img.audio, undefined);
  t.match(img.outputs[0], { type: 'images', width: 1280, height: 720, captureIntervalS: 10 });
  const sdkImg = plan(v2({ source: mediaAv, outputs: [imgOut()] }));
  t.match(sdkImg.outputs[0], { width: 0, height: 0 });
  t.match(plan(v2({ source: mediaAv, outputs: [imgOut({ width: 320, height: 240, captureInterval: 2 })] })).outputs[0], { width: 320, height: 240, captureIntervalS: 2 });
});

t.test('planPipeline: codec inference consequences (§1.11)', async (t) => {
  const audioOnly = plan(rc({ audioOnly: true, fileOutputs: [encFile()] }));
  t.equal(fileOf(audioOnly).fileType, 'ogg');
  t.equal(audioOnly.audio?.codec, 'opus');
  t.equal(audioOnly.audio?.frequency, 48000, 'Opus always at 48 kHz');
  t.equal(fileOf(audioOnly).filepath, 'testroom-2022-10-04T011306.ogg');

  const hls = plan(rc({ audioOnly: true, fileOutputs: [encFile()], segmentOutputs: [new SegmentedFileOutput()] }));
  t.equal(fileOf(hls).fileType, 'mp4');
  t.equal(hls.audio?.codec, 'aac');
  t.equal(hls.audio?.frequency, 44100);

  const av = plan(rc({ fileOutputs: [encFile({ filepath: 'x.ogg' })] }));
  t.equal(fileOf(av).fileType, 'mp4');
  t.equal(fileOf(av).filepath, 'x.mp4', 'known wrong extension replaced');
  t.equal(av.audio?.codec, 'aac');
  t.same(av.video, { codec: 'h264', profile: 'main', width: 1280, height: 720, depth: 24, framerate: 30, bitrateKbps: 3000, keyFrameIntervalS: 0 });

  const mp3 = plan(rc({ audioOnly: true, fileOutputs: [encFile({ fileType: EncodedFileType.MP3 })] }));
  t.equal(mp3.audio?.codec, 'mp3');
  t.equal(fileOf(mp3).filepath, 'testroom-2022-10-04T011306.mp3');
  const opusMp4 = plan(rc({ fileOutputs: [encFile()], options: { case: 'advanced', value: new EncodingOptions({ audioCodec: AudioCodec.OPUS }) } }));
  t.equal(opusMp4.audio?.codec, 'opus', 'an explicit codec the file allows');
  // Streams force AAC, whatever advanced.audio_codec says.
  const rtmp = plan(rc({ streamOutputs: [new StreamOutput({ urls: ['rtmp://a/b/c'] })], options: { case: 'advanced', value: new EncodingOptions({ audioCodec: AudioCodec.OPUS }) } }));
  t.equal(rtmp.audio?.codec, 'aac');
  const mp3Pref = plan(rc({ audioOnly: true, fileOutputs: [encFile()], options: { case: 'advanced', value: new EncodingOptions({ audioCodec: AudioCodec.AC_MP3, audioFrequency: 22050 }) } }));
  t.equal(fileOf(mp3Pref).fileType, 'mp3', 'MP3 codec, DEFAULT file: first of OGG, MP4, MP3 that takes it');
  t.equal(mp3Pref.audio?.frequency, 22050);
});

t.test('planPipeline: presets 0–8 and advanced options (§2)', async (t) => {
  const presets: [EncodingOptionsPreset, number, number, number, number][] = [
    [EncodingOptionsPreset.H264_720P_30, 1280, 720, 30, 3000],
    [EncodingOptionsPreset.H264_720P_60, 1280, 720, 60, 4500],
    [EncodingOptionsPreset.H264_1080P_30, 1920, 1080, 30, 4500],
    [EncodingOptionsPreset.H264_1080P_60, 1920, 1080, 60, 6000],
    [EncodingOptionsPreset.PORTRAIT_H264_720P_30, 720, 1280, 30, 3000],
    [EncodingOptionsPreset.PORTRAIT_H264_720P_60, 720, 1280, 60, 4500],
    [EncodingOptionsPreset.PORTRAIT_H264_1080P_30, 1080, 1920, 30, 4500],
    [EncodingOptionsPreset.PORTRAIT_H264_1080P_60, 1080, 1920, 60, 6000],
  ];
  for (const [preset, width, height, framerate, bitrateKbps] of presets) {
    const p = plan(rc({ fileOutputs: [encFile()], options: { case: 'preset', value: preset } }));
    t.match(p.video, { width, height, framerate, bitrateKbps, profile: 'main', depth: 24 }, EncodingOptionsPreset[preset]);
    t.match(p.audio, { bitrateKbps: 128, frequency: 44100 }, 'audio defaults kept');
  }
  t.equal(plan(v2({ source: media({ video: { case: 'videoTrackId', value: 'T' } }), encoding: { case: 'preset', value: EncodingOptionsPreset.PASSTHROUGH }, outputs: [fileOut()] })).passthrough, true, '8: passthrough');

  const adv = (o: Partial<EncodingOptions>) => plan(rc({ fileOutputs: [encFile()], options: { case: 'advanced', value: new EncodingOptions(o) } }));
  t.match(adv({}).video, { width: 1280, height: 720, depth: 24, framerate: 30, bitrateKbps: 3000 }, 'zero keeps the default');
  t.match(adv({ width: 16, height: 1080, depth: 16, framerate: 25, videoBitrate: 2000, audioBitrate: 96, audioFrequency: 48000, keyFrameInterval: 2 }).video, {
    width: 16, height: 1080, depth: 16, framerate: 25, bitrateKbps: 2000, keyFrameIntervalS: 2,
  });
  t.match(adv({ audioBitrate: 96, audioFrequency: 48000 }).audio, { bitrateKbps: 96, frequency: 48000 });
  t.equal(adv({ videoCodec: VideoCodec.H264_BASELINE }).video?.profile, 'baseline');
  t.equal(adv({ videoCodec: VideoCodec.H264_HIGH }).video?.profile, 'high');
  t.equal(adv({ videoCodec: VideoCodec.VP8 }).video?.codec, 'h264', 'VP8 is ignored');
  for (const depth of [8, 16, 24]) t.equal(adv({ depth }).video?.depth, depth);
});

t.test('planPipeline: key-frame rules (§2.4)', async (t) => {
  const adv = (keyFrameInterval: number) => ({ case: 'advanced' as const, value: new EncodingOptions({ keyFrameInterval }) });
  const stream = new StreamOutput({ urls: ['rtmp://a/b/c'] });
  const seg = (segmentDuration = 0) => new SegmentedFileOutput({ segmentDuration });
  const segOf = (p: PipelineConfig) => p.outputs.find((o) => o.type === 'segments') as SegmentsOutputPlan;
  t.equal(plan(rc({ streamOutputs: [stream] })).video?.keyFrameIntervalS, 4, 'stream alone: 4 s');
  t.equal(plan(rc({ streamOutputs: [stream], options: adv(2) })).video?.keyFrameIntervalS, 2);
  t.equal(plan(rc({ fileOutputs: [encFile()] })).video?.keyFrameIntervalS, 0, 'file only: the encoder default');
  t.equal(plan(rc({ fileOutputs: [encFile()], options: adv(3) })).video?.keyFrameIntervalS, 3);
  const s = plan(rc({ segmentOutputs: [seg(6)], streamOutputs: [stream], options: adv(2.7) }));
  t.equal(s.video?.keyFrameIntervalS, 0, 'segments: the segmenter forces key frames');
  t.equal(segOf(s).segmentDurationS, 2, 'a stream caps the segment duration at int(interval)');
  const s2 = plan(rc({ segmentOutputs: [seg(6)], options: adv(2) }));
  t.equal(segOf(s2).segmentDurationS, 6, 'no stream: no cap');
  t.equal(s2.video?.keyFrameIntervalS, 0);
  t.equal(segOf(plan(rc({ segmentOutputs: [seg()] }))).segmentDurationS, 4, 'default 4 s');
});

t.test('planPipeline: file naming, both passes, retry', async (t) => {
  const name = (filepath: string, over: Partial<StartEgressRequest> = {}) => fileOf(plan(rc({ fileOutputs: [encFile({ filepath })] }, over))).filepath;
  t.equal(name(''), 'testroom-2022-10-04T011306.mp4');
  t.equal(name('livekit-recordings/'), 'livekit-recordings/testroom-2022-10-04T011306.mp4');
  t.equal(name('{room_name}/{time}'), 'testroom/2022-10-04T011306.mp4');
  t.equal(name('{room_id}-{utc}'), `${ROOM_ID}-20221004011306789.mp4`);
  t.equal(name('x.bar'), 'x.bar.mp4');
  t.equal(name('/out/my-recording.mp4'), '/out/my-recording.mp4', 'absolute inside local_output_dir');
  t.equal(name('rec-{retry}', { retryCount: 2 }), 'rec-2.mp4');
  t.equal(name('', { retryCount: 2 }), 'testroom-2022-10-04T011306-2.mp4', 'default name carries the retry');
  t.equal(name('dir/', { retryCount: 2 }), 'dir/testroom-2022-10-04T011306-2.mp4');
  t.equal(name('{publisher_identity}-{track_id}'), '{publisher_identity}-{track_id}.mp4', 'SDK placeholders wait for pass 2');

  // Pass 2, by the handler.
  const tp = plan(startTrack({}, trackRequest({ output: { case: 'file', value: new DirectFileOutput({ filepath: '{publisher_identity}/{track_type}-{track_source}-{track_id}' }) } })));
  const resolved = resolveSdkPlaceholders(fileOf(tp), { ...trackCtx, fileType: 'ogg', identifier: tp.identifier, now: NOW });
  t.equal(resolved.filepath, 'david/audio-microphone-TR_SKasdXCVgHsei.ogg');
  t.equal(resolved.fileType, 'ogg');
  const def = resolveSdkPlaceholders(fileOf(plan(startTrack({}, trackRequest({ output: { case: 'file', value: new DirectFileOutput({}) } })))), { ...trackCtx, trackId: 'TR_1', fileType: 'webm', identifier: 'TR_1', now: NOW });
  t.equal(def.filepath, 'TR_1-2022-10-04T011306.webm', 'default track name');
  const enc = plan(rpc({ case: 'participant', value: new ParticipantEgressRequest({ roomName: 'testroom', identity: 'david', fileOutputs: [encFile({ filepath: 'p/{publisher_identity}' })] }) }));
  t.equal(resolveSdkPlaceholders(fileOf(enc), { publisherIdentity: 'david' }).filepath, 'p/david.mp4');
});

t.test('planPipeline: segment naming table (TestSegmentNaming, §4.4)', async (t) => {
  const table: [string, string, string, string, string, string, string][] = [
    ['', 'playlist', '', '', 'playlist.m3u8', '', 'playlist'],
    ['', 'conf_test/playlist', 'conf_test/live_playlist', 'conf_test/', 'playlist.m3u8', 'live_playlist.m3u8', 'playlist'],
    ['filename', '', 'live_playlist2.m3u8', '', 'filename.m3u8', 'live_playlist2.m3u8', 'filename'],
    ['filename', 'playlist', '', '', 'playlist.m3u8', '', 'filename'],
    ['filename', 'conf_test/', '', 'conf_test/', 'filename.m3u8', '', 'filename'],
    ['filename', 'conf_test/playlist', '', 'conf_test/', 'playlist.m3u8', '', 'filename'],
    ['conf_test/', 'playlist', '', 'conf_test/', 'playlist.m3u8', '', 'playlist'],
    ['conf_test/filename', 'playlist', '', 'conf_test/', 'playlist.m3u8', '', 'filename'],
    ['conf_test/filename', 'conf_test/playlist', '', 'conf_test/', 'playlist.m3u8', '', 'filename'],
    ['conf_test_2/filename', 'conf_test/playlist', '', 'conf_test/', 'playlist.m3u8', '', 'conf_test_2/filename'],
  ];
  for (const [filenamePrefix, playlistName, livePlaylistName, dir, pl, live, prefix] of table) {
    const p = plan(rc({ segmentOutputs: [new SegmentedFileOutput({ filenamePrefix, playlistName, livePlaylistName })] }));
    const s = p.outputs[0] as SegmentsOutputPlan;
    t.same([s.storageDir, s.playlistName, s.livePlaylistName ?? '', s.segmentPrefix], [dir, pl, live, prefix], JSON.stringify([filenamePrefix, playlistName, livePlaylistName]));
  }
  const d = plan(rc({ segmentOutputs: [new SegmentedFileOutput({ filenameSuffix: SegmentedFileSuffix.TIMESTAMP })] }, { retryCount: 1 })).outputs[0] as SegmentsOutputPlan;
  t.match(d, { storageDir: '', playlistName: 'testroom-2022-10-04T011306-1.m3u8', segmentPrefix: 'testroom-2022-10-04T011306-1', suffix: 'timestamp', segmentDurationS: 4 });
  t.doesNotThrow(() => plan(rc({ segmentOutputs: [new SegmentedFileOutput({ filenamePrefix: 's{retry}' })] }, { retryCount: 1 })));
  t.equal((plan(rc({ segmentOutputs: [new SegmentedFileOutput({ playlistName: 'a.b.c' })] })).outputs[0] as SegmentsOutputPlan).playlistName, 'a.b.m3u8', 'any extension goes');
});

t.test('planPipeline: image naming (§4.5)', async (t) => {
  const img = (o: Partial<ImageOutput>, over: Partial<StartEgressRequest> = {}) => plan(rc({ imageOutputs: [new ImageOutput(o)] }, over)).outputs[0] as ImageOutputPlan;
  t.match(img({}), { storageDir: '', prefix: 'testroom-2022-10-04T011306', filenamePrefix: '', suffix: 'index' });
  t.match(img({ filenamePrefix: 'shots/{room_name}', filenameSuffix: ImageFileSuffix.IMAGE_SUFFIX_TIMESTAMP }), { storageDir: 'shots/', prefix: 'testroom', filenamePrefix: 'shots/testroom', suffix: 'timestamp' });
  t.match(img({ filenamePrefix: 'shots/', filenameSuffix: ImageFileSuffix.IMAGE_SUFFIX_NONE_OVERWRITE }), { storageDir: 'shots/', prefix: 'testroom-2022-10-04T011306', filenamePrefix: 'shots/', suffix: 'none_overwrite' });
  t.match(img({ filenamePrefix: 'shots/' }, { retryCount: 3 }), { prefix: 'testroom-2022-10-04T011306-3' });
  t.match(img({ imageCodec: ImageCodec.IC_JPEG }), { type: 'images' });
});

t.test('planPipeline: storage resolution order (§5.4)', async (t) => {
  const s3 = (bucket: string) => new S3Upload({ bucket, accessKey: 'k', secret: 's' });
  const sc = (bucket: string) => new ProtoStorageConfig({ provider: { case: 's3', value: s3(bucket) } });
  const server = cfg({ storage: { prefix: 'pfx', generatePresignedUrl: true, azure: { accountName: 'a', accountKey: 'k', containerName: 'c' } } });
  const src = media({ video: { case: 'videoTrackId', value: 'TR_v' } });
  const st = (p: PipelineConfig) => (p.outputs[0] as FileOutputPlan).storage;
  t.equal(st(plan(v2({ source: src, outputs: [fileOut({}, sc('output'))], storage: sc('request') }), server)).s3?.bucket, 'output', 'output.storage first');
  t.equal(st(plan(v2({ source: src, outputs: [fileOut()], storage: sc('request') }), server)).s3?.bucket, 'request', 'then request.storage');
  t.match(st(plan(v2({ source: src, outputs: [fileOut()], storage: sc('request') }), server)), { prefix: 'pfx', generatePresignedUrl: true }, 'server prefix applies');
  t.equal(st(plan(v2({ source: src, outputs: [fileOut()] }), server)).azure?.containerName, 'c', 'then config.storage');
  t.same(st(plan(v2({ source: src, outputs: [fileOut()] }))), { prefix: '', generatePresignedUrl: false, localDir: '/out' }, 'then local disk');
  t.equal(st(plan(rc({ fileOutputs: [encFile({ output: { case: 's3', value: s3('v1') } })] }), server)).s3?.bucket, 'v1', 'v1: the output upload');
  const segs = plan(rc({ segmentOutputs: [new SegmentedFileOutput({ output: { case: 'gcp', value: new GCPUpload({ bucket: 'g' }) } })] }), server).outputs[0] as SegmentsOutputPlan;
  t.equal(segs.storage.gcp?.bucket, 'g');
  const withRole = cfg({ s3AssumeRole: { accessKey: 'rk', secret: 'rs', arn: 'arn:r', externalId: 'x' } });
  t.match(st(plan(rc({ fileOutputs: [encFile({ output: { case: 's3', value: new S3Upload({ bucket: 'b', assumeRoleArn: 'arn:aws:iam::1:role/x' }) } })] }), withRole)).s3, { accessKey: 'rk', assumeRoleArn: 'arn:aws:iam::1:role/x' });
});

t.test('planPipeline: manifest, session limits, connection info', async (t) => {
  t.equal(plan(rc({ fileOutputs: [encFile()] })).manifest, true, 'a file keeps its manifest');
  t.equal(plan(rc({ fileOutputs: [encFile({ disableManifest: true })] })).manifest, false);
  t.equal(plan(rc({ streamOutputs: [new StreamOutput({ urls: ['rtmp://a/b/c'] })] })).manifest, false, 'streams never write one');
  t.equal(plan(rc({ fileOutputs: [encFile({ disableManifest: true })] }), cfg({ backup: { prefix: '', generatePresignedUrl: false, localDir: '/bk' } })).manifest, true, 'backup storage');

  const limits = cfg({ sessionLimits: { fileOutputMaxDurationMs: 5000, fileOutputMaxSize: 0, streamOutputMaxDurationMs: 3000, segmentOutputMaxDurationMs: 0, imageOutputMaxDurationMs: 9000 } });
  t.equal(plan(rc({ fileOutputs: [encFile()] }), limits).maxDurationMs, 5000);
  t.equal(plan(rc({ fileOutputs: [encFile()], streamOutputs: [new StreamOutput({ urls: ['rtmp://a/b/c'] })] }), limits).maxDurationMs, 3000, 'the smallest');
  t.equal(plan(rc({ segmentOutputs: [new SegmentedFileOutput()] }), limits).maxDurationMs, 0, 'none for segments');
  t.equal(plan(rc({ segmentOutputs: [new SegmentedFileOutput()], imageOutputs: [new ImageOutput()] }), limits).maxDurationMs, 9000, 'zero limits ignored');
  t.equal(plan(startTrack({}, trackRequest({ output: { case: 'websocketUrl', value: 'ws://x' } })), limits).maxDurationMs, 3000, 'websocket is a stream');

  const p = plan(rc({ fileOutputs: [encFile()] }, { token: 'tok', wsUrl: 'wss://req' }), cfg({ apiKey: '', wsUrl: '' }));
  t.same([p.token, p.wsUrl, p.egressId, p.roomId, p.kind, p.retryCount], ['tok', 'wss://req', EG, ROOM_ID, 'room_composite', 0]);
  t.equal(plan(rc({ fileOutputs: [encFile()] })).wsUrl, 'wss://lk.example.com', 'config ws_url');
});

t.test('planPipeline: path safety', async (t) => {
  const local = (filepath: string) => planErr(rc({ fileOutputs: [encFile({ filepath })] })).message;
  const outside = 'request has missing or invalid field: filepath (must stay inside local_output_dir /out)';
  for (const p of ['/etc/passwd', '/out/../etc/x', '/outside/x', '../x', 'a/../../x', '%2e%2e/x', '%2E%2E%2Fx', '..\\x', 'a\\..\\..\\x', '%252e%252e/x', '/out2/x']) t.equal(local(p), outside, p);
  t.equal(local('a\0b'), 'request has missing or invalid field: filepath (must not contain NUL)');
  t.equal(local('a%00b'), 'request has missing or invalid field: filepath (must not contain NUL)');
  t.equal(planErr(rc({ fileOutputs: [encFile({ filepath: '{room_name}/../../x' })] })).code, 'invalid_argument');
  for (const ok of ['/out/my-recording.mp4', '/out/', 'a/../b', 'sub/dir/x', '']) t.doesNotThrow(() => plan(rc({ fileOutputs: [encFile({ filepath: ok })] })), ok);

  const cloud = cfg({ storage: { prefix: '', generatePresignedUrl: false, s3: {} as never } });
  const dotdot = 'request has missing or invalid field: filepath (must not contain ..)';
  for (const p of ['a/../b', '../x', '%2e%2e/x', 'a\\..\\b']) t.equal(planErr(rc({ fileOutputs: [encFile({ filepath: p })] }), cloud).message, dotdot, `cloud ${p}`);
  t.doesNotThrow(() => plan(rc({ fileOutputs: [encFile({ filepath: '/abs/key..name' })] }), cloud), 'dots inside a name are fine');

  t.equal(planErr(rc({ segmentOutputs: [new SegmentedFileOutput({ filenamePrefix: '/etc/x' })] })).message, 'request has missing or invalid field: filename_prefix (must stay inside local_output_dir /out)');
  t.equal(planErr(rc({ segmentOutputs: [new SegmentedFileOutput({ playlistName: '../p' })] })).message, 'request has missing or invalid field: playlist_name (must stay inside local_output_dir /out)');
  t.equal(planErr(rc({ segmentOutputs: [new SegmentedFileOutput({ playlistName: 'p', livePlaylistName: '%2e%2e/l' })] })).message, 'request has missing or invalid field: live_playlist_name (must stay inside local_output_dir /out)');
  t.equal(planErr(rc({ imageOutputs: [new ImageOutput({ filenamePrefix: '/tmp/x' })] })).message, 'request has missing or invalid field: filename_prefix (must stay inside local_output_dir /out)');
  t.equal(planErr(startTrack({}, trackRequest({ output: { case: 'file', value: new DirectFileOutput({ filepath: '/var/x' }) } }))).message, outside);

  // Pass 2: an identity that walks out is refused by the handler's call.
  const tp = fileOf(plan(startTrack({}, trackRequest({ output: { case: 'file', value: new DirectFileOutput({ filepath: '{publisher_identity}/x' }) } }))));
  for (const identity of ['../../etc', '..', '%2e%2e/%2e%2e', '..\\..\\etc']) {
    t.throws(() => resolveSdkPlaceholders(tp, { publisherIdentity: identity, fileType: 'ogg', identifier: 'TR_1', now: NOW }), { message: outside }, identity);
  }
  const seg = plan(rpc({ case: 'participant', value: new ParticipantEgressRequest({ roomName: 'r', identity: 'p', segmentOutputs: [new SegmentedFileOutput({ filenamePrefix: '{publisher_identity}/s' })] }) })).outputs[0]!;
  t.throws(() => resolveSdkPlaceholders(seg, { publisherIdentity: '../../..' }), { code: 'invalid_argument' });
  t.match(resolveSdkPlaceholders(seg, { publisherIdentity: 'alice' }), { storageDir: 'alice/', playlistName: 's.m3u8', segmentPrefix: 's' });
  const img = plan(rpc({ case: 'participant', value: new ParticipantEgressRequest({ roomName: 'r', identity: 'p', imageOutputs: [new ImageOutput({ filenamePrefix: 'i/{publisher_identity}' })] }) })).outputs[0]!;
  t.throws(() => resolveSdkPlaceholders(img, { publisherIdentity: '../../../x' }), { code: 'invalid_argument' });

  t.doesNotThrow(() => checkOutputPath('a/b', { prefix: '', generatePresignedUrl: false, localDir: 'rel' }, 'filepath'), 'relative root');
  t.throws(() => checkOutputPath('/a/b', { prefix: '', generatePresignedUrl: false, localDir: 'rel' }, 'filepath'));

  // Property: whatever the request path, a planned local path never leaves local_output_dir.
  const segment = fc.constantFrom('..', '.', 'a', '%2e%2e', '%2E.', '\\..', 'b..', '{room_name}', '{time}', '', '/');
  fc.assert(
    fc.property(fc.array(segment, { maxLength: 8 }), fc.boolean(), (parts, abs) => {
      const filepath = (abs ? '/out/' : '') + parts.join('/');
      let p: PipelineConfig;
      try {
        p = plan(rc({ fileOutputs: [encFile({ filepath })] }));
      } catch (err) {
        return err instanceof EgressError && err.code === 'invalid_argument';
      }
      const resolved = path.posix.resolve('/out', fileOf(p).filepath.replace(/\\/g, '/'));
      const decoded = path.posix.resolve('/out', decodeURIComponent(fileOf(p).filepath).replace(/\\/g, '/'));
      return [resolved, decoded].every((r) => r.startsWith('/out/'));
    }),
  );
});

t.test('capabilities: what this node serves', async (t) => {
  t.equal(unservedReason(plan(startTrack())), undefined);
  t.equal(unservedReason(plan(startTrack({}, trackRequest({ output: { case: 'websocketUrl', value: 'wss://x' } })))), undefined);
  t.equal(unservedReason(plan(rpc({ case: 'participant', value: new ParticipantEgressRequest({ roomName: 'r', identity: 'p', fileOutputs: [encFile()] }) }))), undefined);
  t.equal(unservedReason(plan(rc({ audioOnly: true, fileOutputs: [encFile()] }))), undefined, 'SDK room audio');
  t.equal(unservedReason(plan(rc({ fileOutputs: [encFile()] }))), undefined, 'room composite (web)');
  t.equal(unservedReason(plan(rc({ fileOutputs: [encFile()] })), { ...SERVED, web: false }), 'web sources are not served by this node');
  t.equal(unservedReason(plan(rc({ audioOnly: true, segmentOutputs: [new SegmentedFileOutput()] }))), undefined, 'SDK room audio to HLS');
  t.equal(unservedReason(plan(rc({ audioOnly: true, streamOutputs: [new StreamOutput({ urls: ['rtmp://a/b/c'] })] }))), undefined, 'SDK room audio to RTMP');
  t.equal(unservedReason(plan(v2({ source: media({ video: { case: 'videoTrackId', value: 'T' } }), outputs: [imgOut()] }))), undefined, 'v2 media to thumbnails');
  const fileAndStream = plan(rc({ audioOnly: true, fileOutputs: [encFile()], streamOutputs: [new StreamOutput({ urls: ['rtmp://a/b/c'] })] }));
  t.equal(unservedReason(fileAndStream), undefined, 'file + stream');
  // SERVED's type has every served output as `true`: a node that serves no streams needs the cast.
  const noStreams = { ...SERVED, outputs: { ...SERVED.outputs, stream: false } } as unknown as typeof SERVED;
  t.equal(unservedReason(fileAndStream, noStreams), 'stream outputs are not served by this node', 'one unserved output is enough');
});

t.test('stream URL redaction (§11.6)', async (t) => {
  t.equal(redactStreamUrl('rtmp://h/app/streamkey'), 'rtmp://h/app/{str...key}');
  t.equal(redactStreamUrl('rtmps://h/p/app/stream'), 'rtmps://h/p/app/{st...am}');
  t.equal(redactStreamUrl('rtmp://h/app/abc live=1'), 'rtmp://h/app/{a...c} live=1');
  t.equal(redactStreamUrl('rtmp://h/app/ab'), 'rtmp://h/app/{}');
  t.equal(redactStreamUrl('srt://h:1?streamid=x'), 'srt://h:1?streamid=x', 'SRT unredacted');
});

t.test('stream URL redaction: mux:// and twitch:// shorthands, key lengths', async (t) => {
  const cases: [string, string][] = [
    ['mux://abcdefghijk', 'mux://{abc...ijk}'],
    ['twitch://live_123456_abcdef', 'twitch://{liv...def}'],
    ['twitch://strmkey', 'twitch://{st...ey}'],
    ['mux://abcdef', 'mux://{ab...ef}'],
    ['mux://abcde', 'mux://{a...e}'],
    ['mux://abc', 'mux://{a...c}'],
    ['mux://ab', 'mux://{}'],
    ['twitch://', 'twitch://{}'],
    ['MUX://abcdefghi', 'MUX://{abc...ghi}'],
    // Key lengths on an RTMP URL: 9+ shows 3 each side, 6+ 2, 3+ 1, less nothing.
    ['rtmp://h/app/123456789', 'rtmp://h/app/{123...789}'],
    ['rtmp://h/app/12345678', 'rtmp://h/app/{12...78}'],
    ['rtmp://h/app/123456', 'rtmp://h/app/{12...56}'],
    ['rtmp://h/app/12345', 'rtmp://h/app/{1...5}'],
    ['rtmp://h/app/123', 'rtmp://h/app/{1...3}'],
    ['rtmp://h/app/', 'rtmp://h/app/{}'],
    // The planned form of mux:// (expanded) is redacted like any RTMPS URL.
    ['rtmps://global-live.mux.com:443/app/abcdefghijk', 'rtmps://global-live.mux.com:443/app/{abc...ijk}'],
  ];
  for (const [url, want] of cases) t.equal(redactStreamUrl(url), want, url);
  t.equal(redactStreamUrl('wss://h/ws?token=x'), 'wss://h/ws?token=x', 'websocket URLs are not stream-key URLs');
});

t.test('validateStreamUrl: characters gst-launch gives meaning to are refused', async (t) => {
  const reason = 'quotes, backslashes, spaces and control characters are not allowed';
  const bad: [string, string, 'rtmp' | 'srt' | 'websocket'][] = [
    ['double quote', 'rtmp://h/app/key"', 'rtmp'],
    ['quote that would end the property', 'rtmp://h/app/k" ! filesink location="/tmp/x', 'rtmp'],
    ['space', 'rtmp://h/app/my key', 'rtmp'],
    ['backslash', 'rtmp://h/app/ke\\y', 'rtmp'],
    ['control character', 'rtmp://h/app/key\x01', 'rtmp'],
    ['DEL', 'rtmp://h/app/key\x7f', 'rtmp'],
    ['tab', 'rtmp://h/app/key\tlive=1', 'rtmp'],
    ['newline', 'rtmp://h/app/key\n', 'rtmp'],
    ['no-break space', 'rtmp://h/app/key\u00a0x', 'rtmp'],
    ['two spaces before live=1', 'rtmp://h/app/key  live=1', 'rtmp'],
    ['live=1 not at the end', 'rtmp://h/app/key live=1 x', 'rtmp'],
    ['space in a mux key', 'mux://my key', 'rtmp'],
    ['quote in a twitch key', 'twitch://k"ey', 'rtmp'],
    ['SRT quote', 'srt://h:9000?streamid="x"', 'srt'],
    ['SRT space in the query', 'srt://h:9000?streamid=a b', 'srt'],
    ['SRT backslash', 'srt://h:9000?streamid=a\\b', 'srt'],
    ['SRT tab', 'srt://h:9000?streamid=a\tb', 'srt'],
    ['live=1 is an RTMP option only', 'srt://h:9000?streamid=x live=1', 'srt'],
    ['websocket space', 'wss://h/ws?a=b c', 'websocket'],
  ];
  for (const [what, url, kind] of bad) {
    t.throws(() => validateStreamUrl(url, kind), new EgressError('invalid_argument', `invalid url ${url}: ${reason}`), `${what}: ${JSON.stringify(url)}`);
    t.ok(UNSAFE_URL_CHARS.test(kind === 'rtmp' ? url.replace(/ live=1$/, '') : url), `${what}: UNSAFE_URL_CHARS agrees`);
  }
  // Refused before the scheme is looked at: the error names the character problem, not the scheme.
  t.throws(() => validateStreamUrl('http://h/a b', 'rtmp'), { message: `invalid url http://h/a b: ${reason}` });

  const good: [string, string, 'rtmp' | 'srt' | 'websocket', string?][] = [
    ['live=1', 'rtmp://h/app/key live=1', 'rtmp'],
    ['rtmps with a path', 'rtmps://h:443/p/app/key?x=1&y=2', 'rtmp'],
    ['mux with live=1', 'mux://key live=1', 'rtmp', 'rtmps://global-live.mux.com:443/app/key live=1'],
    ['mux expanded', 'mux://abc-123', 'rtmp', 'rtmps://global-live.mux.com:443/app/abc-123'],
    ['twitch kept for the start', 'twitch://live_1_abc', 'rtmp'],
    ['SRT access-control streamid', 'srt://h:9000?streamid=#!::r=live,m=publish', 'srt'],
    ['SRT access-control streamid, escaped', 'srt://h:9000?streamid=%23!::r=live,m=publish&latency=200', 'srt'],
    ['SRT with mode and passphrase', 'srt://127.0.0.1:9000?mode=caller&passphrase=abcdefghij', 'srt'],
    ['websocket', 'wss://h/ws?token=x&room=r', 'websocket'],
  ];
  for (const [what, url, kind, want = url] of good) t.equal(validateStreamUrl(url, kind), want, what);

  // The same refusal through planning, as the request's caller sees it.
  const spaced = 'rtmp://h/app/my key';
  const err = planErr(rc({ streamOutputs: [new StreamOutput({ urls: [spaced] })] }));
  t.equal(err.message, `invalid url ${spaced}: ${reason}`);
  t.equal(err.code, 'invalid_argument');
  const second = planErr(rc({ streamOutputs: [new StreamOutput({ urls: ['rtmp://h/app/ok', 'rtmp://h/app/"x'] })] }));
  t.equal(second.message, `invalid url rtmp://h/app/"x: ${reason}`, 'every URL is checked, not only the first');
});

t.test('startingInfo lists the planned stream URLs, redacted, ACTIVE', async (t) => {
  const now = 1_750_000_000_123_456_789n;
  const req = rc({ streamOutputs: [new StreamOutput({ urls: ['rtmp://live.example.com/app/streamkey123', 'mux://muxkey12345'] })], fileOutputs: [encFile()] });
  const p = plan(req);
  const srt: StreamOutputPlan = { type: 'stream', protocol: 'srt', urls: ['srt://h:9000?streamid=#!::r=live,m=publish', 'srt://h:9001'] };
  const withSrt: PipelineConfig = { ...p, outputs: [...p.outputs, srt] };
  const info = startingInfo(req, now, withSrt);
  t.same(
    info.streamResults.map((s) => ({ url: s.url, status: s.status, startedAt: s.startedAt })),
    [
      { url: 'rtmp://live.example.com/app/{str...123}', status: StreamInfo_Status.ACTIVE, startedAt: 0n },
      { url: 'rtmps://global-live.mux.com:443/app/{mux...345}', status: StreamInfo_Status.ACTIVE, startedAt: 0n },
      { url: 'srt://h:9000?streamid=#!::r=live,m=publish', status: StreamInfo_Status.ACTIVE, startedAt: now },
      { url: 'srt://h:9001', status: StreamInfo_Status.ACTIVE, startedAt: now },
    ],
    'RTMP ones start when they connect; SRT ones now, as the reference does; the file output adds nothing',
  );
  t.ok(info.streamResults.every((s) => s.endedAt === 0n && s.error === '' && s.duration === 0n));
  t.ok(EgressInfo.fromBinary(info.toBinary()).equals(info), 'it survives the wire');
  t.notOk(JSON.stringify(info.toJson()).includes('streamkey123'), 'the stream key is nowhere in the info');
  t.notOk(JSON.stringify(info.toJson()).includes('muxkey12345'), 'nor the mux key');

  t.same(startingInfo(req, now).streamResults, [], 'no plan: no stream results');
  t.same(startingInfo(rc({ fileOutputs: [encFile()] }), now, plan(rc({ fileOutputs: [encFile()] }))).streamResults, [], 'no stream output: none');
  const wsReq = v2({ source: media({ audio: new AudioConfig({ routes: [audioTrack('TR_a')] }) }), outputs: [streamOut(['wss://h/ws?token=x'])] });
  t.same(startingInfo(wsReq, now, plan(wsReq)).streamResults, [], 'a websocket output is not a stream result');
  const srtReq = rc({ streamOutputs: [new StreamOutput({ urls: ['srt://h:9000?streamid=x'] })] });
  t.same(startingInfo(srtReq, now, plan(srtReq)).streamResults.map((s) => [s.url, s.startedAt]), [['srt://h:9000?streamid=x', now]], 'a planned SRT request');
});

t.test('redaction covers every kind: v1 output lists and the deprecated output, stream keys, v2 storage', async (t) => {
  const s3 = () => new S3Upload({ accessKey: 'AKIAREALKEY', secret: 'realsecret', bucket: 'b' });
  const participant = new StartEgressRequest({
    egressId: 'EG_x',
    request: {
      case: 'participant',
      value: new ParticipantEgressRequest({
        roomName: 'r',
        identity: 'a',
        fileOutputs: [new EncodedFileOutput({ filepath: 'f', output: { case: 's3', value: s3() } })],
        segmentOutputs: [new SegmentedFileOutput({ output: { case: 'gcp', value: new GCPUpload({ credentials: '{"private_key":"k"}', bucket: 'g' }) } })],
        streamOutputs: [new StreamOutput({ urls: ['rtmp://live.example.com/app/streamkey123'] })],
      }),
    },
  });
  const p = redactRequest(participant).request.value as ParticipantEgressRequest;
  const fileS3 = p.fileOutputs[0]!.output.value as S3Upload;
  t.equal(fileS3.accessKey, '{access_key}');
  t.equal(fileS3.secret, '{secret}');
  t.equal((p.segmentOutputs[0]!.output.value as GCPUpload).credentials, '{credentials}');
  t.same(p.streamOutputs[0]!.urls, ['rtmp://live.example.com/app/{str...123}']);

  const deprecated = redactRequest(rc({ output: { case: 'file', value: new EncodedFileOutput({ output: { case: 's3', value: s3() } }) } })).request.value as RoomCompositeEgressRequest;
  t.equal(deprecated.output.case === 'file' && (deprecated.output.value.output.value as S3Upload).secret, '{secret}', 'the deprecated single output');

  const request = v2({
    storage: new ProtoStorageConfig({ provider: { case: 's3', value: s3() } }),
    outputs: [new Output({ config: { case: 'file', value: new FileOutput({ filepath: 'x' }) }, storage: new ProtoStorageConfig({ provider: { case: 's3', value: s3() } }) })],
  });
  const v = redactRequest(request).request.value as V2StartEgressRequest;
  t.equal((v.storage?.provider.value as S3Upload).secret, '{secret}', 'request storage');
  t.equal((v.outputs[0]!.storage?.provider.value as S3Upload).secret, '{secret}', 'output storage');
  t.equal(((request.request.value as V2StartEgressRequest).storage?.provider.value as S3Upload).secret, 'realsecret', 'the original is untouched');
});
