// `egress start`: request files (protobuf JSON) and requests built from flags.
import t, { type Test } from 'tap';
import { DirectFileOutput, EncodedFileOutput, EncodingOptionsPreset, StreamOutput, TrackEgressRequest } from '@livekit/protocol';
import { UsageError, EXIT_USAGE } from '../../supervisor/src/cli/errors.ts';
import {
  describeProtoJsonError,
  encodedOutputs,
  loadStartRequest,
  locateJsonError,
  parsePreset,
  parseRequestJson,
  requestFromFlags,
  START_KINDS,
  trackOutput,
  type StartKind,
} from '../../supervisor/src/cli/requests.ts';

/** The UsageError `fn` throws (exit code 2, one line). */
function usageError(t: Test, fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    t.type(err, UsageError);
    t.equal((err as UsageError).exitCode, EXIT_USAGE, 'usage errors exit 2');
    const message = (err as Error).message;
    t.notMatch(message, /\n/, 'one line');
    return message;
  }
  t.fail('expected a UsageError');
  return '';
}

t.test('request files: valid JSON for each kind', async (t) => {
  const files: Record<StartKind, string> = {
    track: '{ "roomName": "r1", "trackId": "TR_1", "file": { "filepath": "out/{track_id}" } }',
    'room-composite': JSON.stringify({
      room_name: 'r1',
      layout: 'grid',
      audio_only: true,
      preset: 'H264_1080P_30',
      file_outputs: [{ file_type: 'MP4', filepath: 'a.mp4' }],
      stream_outputs: [{ urls: ['rtmp://127.0.0.1/live/a', 'rtmp://127.0.0.1/live/b'] }],
    }),
    web: '{ "url": "https://example.com/page", "videoOnly": true, "awaitStartSignal": true, "segmentOutputs": [{ "filenamePrefix": "seg/x" }] }',
    participant: '{ "roomName": "r1", "identity": "alice", "screenShare": true, "fileOutputs": [{ "filepath": "p.mp4" }] }',
    'track-composite': '{ "roomName": "r1", "audioTrackId": "TR_a", "videoTrackId": "TR_v", "advanced": { "width": 640, "height": 360 }, "file": { "filepath": "tc.mp4" } }',
  };
  for (const kind of START_KINDS) {
    const parsed = parseRequestJson(kind, files[kind], `${kind}.json`);
    t.equal(parsed.kind, kind, `${kind} parses`);
  }

  const track = parseRequestJson('track', files.track, 'track.json');
  t.equal(track.kind, 'track');
  if (track.kind === 'track') {
    t.equal(track.request.roomName, 'r1');
    t.equal(track.request.trackId, 'TR_1');
    const out = trackOutput(track.request, 'track.json');
    t.ok(out instanceof DirectFileOutput && out.filepath === 'out/{track_id}', 'file output');
  }

  const rc = parseRequestJson('room-composite', files['room-composite'], 'rc.json');
  if (rc.kind === 'room-composite') {
    t.equal(rc.request.layout, 'grid');
    t.equal(rc.request.audioOnly, true);
    t.same(rc.request.options, { case: 'preset', value: EncodingOptionsPreset.H264_1080P_30 });
    const outs = encodedOutputs(rc.request, 'rc.json');
    t.equal(outs.file?.filepath, 'a.mp4');
    t.same(outs.stream?.urls, ['rtmp://127.0.0.1/live/a', 'rtmp://127.0.0.1/live/b']);
    t.equal(outs.segments, undefined);
  }

  const web = parseRequestJson('web', files.web, 'web.json');
  if (web.kind === 'web') {
    t.equal(web.request.url, 'https://example.com/page');
    t.equal(web.request.awaitStartSignal, true);
    t.equal(encodedOutputs(web.request, 'web.json').segments?.filenamePrefix, 'seg/x');
  }

  const p = parseRequestJson('participant', files.participant, 'p.json');
  if (p.kind === 'participant') {
    t.equal(p.request.identity, 'alice');
    t.equal(p.request.screenShare, true);
  }

  const tc = parseRequestJson('track-composite', files['track-composite'], 'tc.json');
  if (tc.kind === 'track-composite') {
    t.equal(tc.request.audioTrackId, 'TR_a');
    t.equal(tc.request.options.case, 'advanced');
    t.equal(encodedOutputs(tc.request, 'tc.json').file?.filepath, 'tc.mp4', 'the deprecated single output counts as the file output');
  }

  // a byte order mark is tolerated
  t.equal(parseRequestJson('track', `\uFEFF${files.track}`, 'bom.json').kind, 'track');
});

t.test('request files: malformed JSON names the line', async (t) => {
  const text = '{\n  "roomName": "r1",\n  "trackId": "TR_1",,\n  "file": {}\n}';
  const message = usageError(t, () => parseRequestJson('track', text, 'request.json'));
  t.match(message, /^request\.json: invalid JSON at line 3: /, message);
  t.match(message, /column 21\)$/, "the second comma is at column 21");

  const cases: [string, number, RegExp][] = [
    ['{\n "a": 1,\n }', 3, /trailing comma/],
    ['{"a": }', 1, /unexpected "}", expected a value/],
    ['{\n"a": 1', 2, /end of input/],
    ['', 1, /end of input/],
    ['{"a": tru}', 1, /expected "true"/],
    ['[1,\n2,\n]', 3, /trailing comma/],
    ['{"a": "x\ny"}', 1, /line break inside a string/],
    ['{} x', 1, /after the end of the JSON value/],
    ["{'a': 1}", 1, /double quotes/],
    ['{"a": 01}', 1, /invalid number/],
    ['{"a" 1}', 1, /expected ":"/],
    ['{"a": "\\q"}', 1, /bad escape/],
  ];
  for (const [bad, line, why] of cases) {
    t.throws(() => JSON.parse(bad), `${JSON.stringify(bad)} is invalid for JSON.parse too`);
    const at = locateJsonError(bad);
    t.equal(at?.line, line, `${JSON.stringify(bad)}: line ${line}`);
    t.match(at?.message, why, `${JSON.stringify(bad)}: ${at?.message}`);
  }
  for (const good of ['{}', '[]', '{"a": [1, -2.5e3, true, false, null, "x\\u00e9\\n"]}', ' 3 ', '"s"']) {
    t.equal(locateJsonError(good), undefined, `${good} is valid`);
  }
});

t.test('request files: unknown fields and bad values', async (t) => {
  let message = usageError(t, () => parseRequestJson('track', '{\n  "roomName": "r",\n  "trackid": "TR_1"\n}', 'request.json'));
  t.equal(message, 'request.json: unknown field "trackid" in TrackEgressRequest at line 3');

  message = usageError(t, () => parseRequestJson('track', '{"roomName": "r", "file": {"filepath": "x", "bogus": 1}}', 'r.json'));
  t.equal(message, 'r.json: unknown field "bogus" in DirectFileOutput at line 1');

  message = usageError(t, () => parseRequestJson('track', '{"roomName": 5}', 'r.json'));
  t.equal(message, 'r.json: invalid value 5 for field TrackEgressRequest.room_name');

  message = usageError(t, () => parseRequestJson('room-composite', '{"preset": "H264_4K"}', 'r.json'));
  t.equal(message, 'r.json: invalid EncodingOptionsPreset value "H264_4K"');

  message = usageError(t, () => parseRequestJson('track', '{"file": {"filepath": "a"}, "websocketUrl": "ws://x"}', 'r.json'));
  t.match(message, /^r\.json: TrackEgressRequest: multiple keys for oneof "output"/);

  message = usageError(t, () => parseRequestJson('track', '[1, 2]', 'r.json'));
  t.equal(message, 'r.json: expected a JSON object (a TrackEgressRequest), got an array');

  message = usageError(t, () => parseRequestJson('room-composite', '{"fileOutputs": {}}', 'r.json'));
  t.equal(message, 'r.json: invalid value object for field RoomCompositeEgressRequest.file_outputs');

  t.equal(describeProtoJsonError('cannot decode message livekit.X from JSON: array'), 'X must be a JSON object, got array');
});

t.test('request files: what the EgressClient calls cannot carry', async (t) => {
  const two = parseRequestJson('room-composite', '{"roomName": "r", "fileOutputs": [{"filepath": "a"}, {"filepath": "b"}]}', 'two.json');
  if (two.kind === 'room-composite') {
    t.equal(usageError(t, () => encodedOutputs(two.request, 'two.json')), 'two.json: 2 file outputs: at most one of each output type is supported');
  }
  const noOutput = parseRequestJson('track', '{"roomName": "r", "trackId": "TR_1"}', 'none.json');
  if (noOutput.kind === 'track') {
    t.match(usageError(t, () => trackOutput(noOutput.request, 'none.json')), /^none\.json: TrackEgressRequest has no output/);
  }
  t.equal(trackOutput(new TrackEgressRequest({ output: { case: 'websocketUrl', value: 'ws://127.0.0.1:1/x' } }), 'x'), 'ws://127.0.0.1:1/x');
});

t.test('loadStartRequest: --request file or flags, never both', async (t) => {
  const files: Record<string, string> = { 'req.json': '{"roomName": "r", "trackId": "TR_1", "file": {"filepath": "x"}}' };
  const readFile = (path: string) => {
    if (!(path in files)) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
    return files[path]!;
  };
  const fromFile = loadStartRequest('track', { request: 'req.json' }, readFile);
  t.equal(fromFile.kind === 'track' && fromFile.request.trackId, 'TR_1');

  t.equal(usageError(t, () => loadStartRequest('track', { request: 'missing.json' }, readFile)), 'missing.json: cannot read the request file: no such file');
  t.equal(
    usageError(t, () => loadStartRequest('track', { request: 'req.json', room: 'r', stream: ['rtmp://x'] }, readFile)),
    '--request cannot be combined with --room, --stream: put those fields in req.json',
  );
  // empty repeatable lists and false booleans are "not given"
  t.equal(loadStartRequest('track', { request: 'req.json', stream: [], audioOnly: false }, readFile).kind, 'track');

  const fromFlags = loadStartRequest('track', { room: 'r', track: 'TR_2', file: 'f' }, readFile);
  t.equal(fromFlags.kind === 'track' && fromFlags.request.trackId, 'TR_2');
});

t.test('requests from flags', async (t) => {
  const track = requestFromFlags('track', { room: 'r', track: 'TR_1', file: 'cli/{track_id}' });
  t.equal(track.kind, 'track');
  if (track.kind === 'track') {
    t.equal(track.request.roomName, 'r');
    t.equal(track.request.trackId, 'TR_1');
    t.equal(track.request.output.case, 'file');
    t.equal((track.request.output.value as DirectFileOutput).filepath, 'cli/{track_id}');
  }
  const ws = requestFromFlags('track', { room: 'r', track: 'TR_1', websocket: 'ws://127.0.0.1:9/x' });
  t.same(ws.kind === 'track' && ws.request.output, { case: 'websocketUrl', value: 'ws://127.0.0.1:9/x' });

  const rc = requestFromFlags('room-composite', {
    room: 'r',
    layout: 'speaker',
    audioOnly: true,
    preset: 'h264-720p-60',
    file: 'a.ogg',
    stream: ['rtmp://127.0.0.1/live/1', 'srt://127.0.0.1:9000'],
    segments: 'hls/r',
  });
  if (rc.kind === 'room-composite') {
    t.equal(rc.request.roomName, 'r');
    t.equal(rc.request.layout, 'speaker');
    t.equal(rc.request.audioOnly, true);
    t.equal(rc.request.videoOnly, false);
    t.same(rc.request.options, { case: 'preset', value: EncodingOptionsPreset.H264_720P_60 });
    t.same(rc.request.fileOutputs, [new EncodedFileOutput({ filepath: 'a.ogg' })]);
    t.same(rc.request.streamOutputs, [new StreamOutput({ urls: ['rtmp://127.0.0.1/live/1', 'srt://127.0.0.1:9000'] })], 'one stream output with every --stream URL');
    t.equal(rc.request.segmentOutputs[0]?.filenamePrefix, 'hls/r');
  } else t.fail('room-composite');

  const web = requestFromFlags('web', { urlToRecord: 'https://example.com', videoOnly: true, stream: ['rtmp://127.0.0.1/x'] });
  t.equal(web.kind === 'web' && web.request.url, 'https://example.com');
  t.equal(web.kind === 'web' && web.request.options.case, undefined, 'no --preset, no options');

  const p = requestFromFlags('participant', { room: 'r', identity: 'alice', screenShare: true, file: 'p.mp4' });
  t.equal(p.kind === 'participant' && p.request.identity, 'alice');
  t.equal(p.kind === 'participant' && p.request.screenShare, true);

  const tc = requestFromFlags('track-composite', { room: 'r', audioTrack: 'TR_a', segments: 's' });
  t.equal(tc.kind === 'track-composite' && tc.request.audioTrackId, 'TR_a');
  t.equal(tc.kind === 'track-composite' && tc.request.videoTrackId, '');
});

t.test('requests from flags: missing or bad flags are named', async (t) => {
  const cases: [StartKind, Parameters<typeof requestFromFlags>[1], RegExp][] = [
    ['track', { track: 'TR_1', file: 'f' }, /^start track: missing --room <room>/],
    ['track', { room: 'r', file: 'f' }, /^start track: missing --track <track-id>/],
    ['track', { room: 'r', track: ' ', file: 'f' }, /missing --track/],
    ['track', { room: 'r', track: 'TR_1' }, /^start track: missing an output: --file <path> or --websocket <url>/],
    ['track', { room: 'r', track: 'TR_1', file: 'f', websocket: 'ws://x' }, /--file and --websocket exclude each other/],
    ['room-composite', { file: 'f' }, /^start room-composite: missing --room/],
    ['room-composite', { room: 'r' }, /^start room-composite: missing an output: --file <path>, --stream <url> or --segments <prefix>/],
    ['room-composite', { room: 'r', file: 'f', audioOnly: true, videoOnly: true }, /--audio-only and --video-only exclude each other/],
    ['room-composite', { room: 'r', file: 'f', preset: 'H264_4K' }, /^unknown --preset "H264_4K": one of H264_720P_30, /],
    ['web', { file: 'f' }, /^start web: missing --url-to-record <url>/],
    ['participant', { room: 'r', file: 'f' }, /^start participant: missing --identity <identity>/],
    ['track-composite', { room: 'r', file: 'f' }, /^start track-composite: missing --audio-track <track-id> or --video-track <track-id>/],
  ];
  for (const [kind, flags, expected] of cases) {
    const message = usageError(t, () => requestFromFlags(kind, flags));
    t.match(message, expected, `${kind} ${JSON.stringify(flags)} → ${message}`);
  }
  t.equal(parsePreset('PORTRAIT_H264_1080P_60'), EncodingOptionsPreset.PORTRAIT_H264_1080P_60);
});
