// Request planning without I/O: file naming (egress-behaviour §4.1–4.3), validation, the STARTING info and
// credential redaction (§3.7).
import t from 'tap';
import {
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
import { EgressError } from '../../shared/src/errors.ts';
import {
  applyPlaceholders,
  cleanPath,
  fileOutputPath,
  formatTime,
  formatUtc,
  type NamingContext,
} from '../../shared/src/plan/naming.ts';
import { redactQuery, redactRequest } from '../../shared/src/plan/redact.ts';
import { planRequest, requestKind, startingInfo, type RequestKind } from '../../shared/src/plan/request.ts';
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

/** The EgressError thrown by planRequest; fails the test if none. */
function planError(req: StartEgressRequest): EgressError {
  try {
    planRequest(req);
  } catch (err) {
    if (err instanceof EgressError) return err;
    throw err;
  }
  throw new Error('expected planRequest to throw');
}

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

t.test('planRequest validation', async (t) => {
  t.same(planRequest(startTrack()), { kind: 'track', roomName: 'room', trackId: 'TR_1', filepath: 'out/{track_id}', disableManifest: true });

  const invalid: [string, StartEgressRequest, string][] = [
    ['missing egress id', startTrack({ egressId: '' }), 'request has missing or invalid field: egressID'],
    ['no request', new StartEgressRequest({ egressId: 'EG_x' }), 'request has missing or invalid field: request'],
    ['track without track_id', startTrack({}, trackRequest({ trackId: '' })), 'request has missing or invalid field: track_id'],
    ['track without room_name', startTrack({}, trackRequest({ roomName: '' })), 'request has missing or invalid field: room_name'],
    ['track without output', startTrack({}, trackRequest({ output: { case: undefined } })), 'request has missing or invalid field: output'],
  ];
  for (const [what, req, message] of invalid) {
    const err = planError(req);
    t.equal(err.code, 'invalid_argument', what);
    t.equal(err.message, message, what);
  }

  const unsupported: [string, StartEgressRequest['request']][] = [
    ['room composite', { case: 'roomComposite', value: new RoomCompositeEgressRequest({ roomName: 'room' }) }],
    ['web', { case: 'web', value: new WebEgressRequest({ url: 'https://example.com' }) }],
    ['participant', { case: 'participant', value: new ParticipantEgressRequest({ roomName: 'room', identity: 'p' }) }],
    ['track composite', { case: 'trackComposite', value: new TrackCompositeEgressRequest({ roomName: 'room' }) }],
    ['replay', { case: 'replay', value: new ExportReplayRequest() }],
    ['v2 template', { case: 'egress', value: new V2StartEgressRequest({ source: { case: 'template', value: new TemplateSource() } }) }],
    ['track to websocket', { case: 'track', value: trackRequest({ output: { case: 'websocketUrl', value: 'wss://x/ws' } }) }],
  ];
  for (const [what, request] of unsupported) {
    const err = planError(new StartEgressRequest({ egressId: 'EG_x', request }));
    t.equal(err.code, 'unimplemented', what);
    t.not(err.message, '', what);
  }
});

t.test('a track file output carries its own storage; disallow_local_storage refuses local disk', async (t) => {
  const s3 = new S3Upload({ bucket: 'b' });
  const withS3 = new StartEgressRequest({ egressId: 'EG_x', request: { case: 'track', value: trackRequest({ output: { case: 'file', value: new DirectFileOutput({ output: { case: 's3', value: s3 } }) } }) } });
  t.equal((planRequest(withS3) as { upload?: unknown }).upload, s3);
  const local = new StartEgressRequest({ egressId: 'EG_x', request: { case: 'track', value: trackRequest({ output: { case: 'file', value: new DirectFileOutput({ filepath: 'x' }) } }) } });
  t.throws(() => planRequest(local, { disallowLocalStorage: true }), { message: 'request has missing or invalid field: output' });
  t.doesNotThrow(() => planRequest(withS3, { disallowLocalStorage: true }), 'its own storage is fine');
  t.doesNotThrow(() => planRequest(local, { disallowLocalStorage: true, storage: { prefix: '', generatePresignedUrl: false, s3: {} as never } }), 'config storage is fine');
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
