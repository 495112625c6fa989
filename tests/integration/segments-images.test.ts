// HLS segments and thumbnails (issue 8), fed by the SDK kinds, through livekit-server-sdk on the real
// livekit-server: one encode fanned out to a file, segments and images; playlists checked strictly and
// played by ffprobe; JPEGs decoded; segments uploaded to the S3 emulator in order, the playlist never
// naming one that is not stored yet.
import '../rig/quiet-rtc.ts';
import t, { type Test } from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  AudioConfig,
  AudioRoute,
  EgressStatus,
  EncodedFileOutput,
  EncodingOptions,
  EncodingOptionsPreset,
  ImageFileSuffix,
  ImageOutput,
  MediaSource,
  Output,
  S3Upload,
  SegmentedFileOutput,
  SegmentedFileSuffix,
  StartEgressRequest,
  StorageConfig,
} from '@livekit/protocol';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { checkPlaylist } from '../rig/hls-check.ts';
import { audioLevel, probe, videoChanges } from '../rig/probe.ts';
import { startPublisher, type Publisher, type PublisherOptions } from '../rig/publisher.ts';
import { S3RVER_ACCESS_KEY, S3RVER_SECRET, startS3 } from '../rig/storage/s3.ts';
import { freePort } from '../rig/ports.ts';
import { jobDetail } from '../support/debug-api.ts';
import { checkDuration, fileOf, runEgress, waitForStatus, type EgressRun } from '../support/egress-run.ts';
import { startEgressNode } from '../support/egress-node.ts';
import { egressSuite } from '../support/suite.ts';

process.env.AWS_EC2_METADATA_DISABLED = 'true';
const RECORD_MS = 12_000;
const SEGMENT_S = 2;

const debugPort = await freePort();
const suite = await egressSuite(t, { what: 'segment and image cases', filteredBy: ['stream_only', 'web_only', 'track_only'], node: { debug_handler_port: debugPort } });
if (suite) {
  const { deployment: d, node, client } = suite;
  const s3 = await startS3({ buckets: ['hls'] });
  t.teardown(() => s3.stop());
  let roomSeq = 0;
  const newRoom = (name: string) => `${name}-${++roomSeq}-${Date.now()}`;
  const publish = async (t: Test, room: string, identity: string, opts: Partial<PublisherOptions> = {}): Promise<Publisher> => {
    const p = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity, ...opts });
    t.teardown(() => p.stop());
    return p;
  };
  const local = (storagePath: string) => path.join(node.outputDir, storagePath);

  /** The segments output of a finished run: counts, sizes, both playlists strictly valid, played by ffprobe. */
  async function checkSegments(t: Test, run: EgressRun, want: { audio: boolean; video: boolean; live?: boolean }) {
    t.equal(run.final.segmentResults.length, 1, 'one segments result');
    const seg = run.final.segmentResults[0]!;
    const wall = (run.stopAt - run.activeAt) / 1000;
    const count = Number(seg.segmentCount);
    t.ok(Math.abs(count - Math.ceil(wall / SEGMENT_S)) <= 1, `${count} segments for ${wall.toFixed(1)} s of ${SEGMENT_S} s segments`);
    t.ok(seg.size > 0n && seg.duration > 0n, 'size and duration reported');
    t.notMatch(seg.playlistName, /\{/, 'playlist name templated');
    const playlist = checkPlaylist(readFileSync(seg.playlistLocation, 'utf8'), { ended: true });
    t.equal(playlist.type, 'EVENT');
    t.equal(playlist.segments.length, count, 'the playlist lists every stored segment');
    t.equal(playlist.targetDuration, SEGMENT_S, 'target duration');
    const first = playlist.segments[0]?.programDateTime;
    t.ok(first && Math.abs(+first - run.activeAt) < 5_000, `program-date-time starts at the recording's start (${first?.toISOString()})`);
    let bytes = 0;
    for (const s of playlist.segments) {
      const file = path.join(path.dirname(seg.playlistLocation), s.uri);
      t.ok(existsSync(file), `${s.uri} stored`);
      bytes += existsSync(file) ? readFileSync(file).length : 0;
    }
    t.equal(BigInt(bytes), seg.size, 'size is the sum of the stored segments');
    if (want.live) {
      const live = checkPlaylist(readFileSync(seg.livePlaylistLocation, 'utf8'), { ended: true });
      t.equal(live.type, undefined, 'the live playlist has no type');
      t.equal(live.segments.length, Math.min(5, count), 'the live playlist holds the last 5');
      t.equal(live.mediaSequence, Math.max(0, count - 5), 'its media sequence counts the dropped ones');
    }
    const played = await probe(seg.playlistLocation);
    t.same(played.streams.map((s) => s.codecName).sort(), [...(want.audio ? ['aac'] : []), ...(want.video ? ['h264'] : [])], 'ffprobe plays the playlist');
    checkDuration(t, played.duration, run);
    return { seg, playlist };
  }

  t.test('track composite → HLS segments (2 s) with a live playlist', async (t) => {
    const room = newRoom('hls');
    const pub = await publish(t, room, 'alice', { audio: true, video: 'vp8', width: 1280, height: 720, fps: 30 });
    const run = await runEgress(
      client,
      () =>
        client.startTrackCompositeEgress(
          room,
          { segments: new SegmentedFileOutput({ filenamePrefix: 'hls/{room_name}/seg', playlistName: 'index.m3u8', livePlaylistName: 'live.m3u8', segmentDuration: SEGMENT_S }) },
          { audioTrackId: pub.audioTrackSid, videoTrackId: pub.videoTrackSid, encodingOptions: EncodingOptionsPreset.H264_720P_30 },
        ),
      { recordMs: RECORD_MS },
    );
    t.equal(run.final.status, EgressStatus.EGRESS_COMPLETE, `COMPLETE (${run.final.error})`);
    const { seg, playlist } = await checkSegments(t, run, { audio: true, video: true, live: true });
    t.equal(seg.playlistName, `hls/${room}/index.m3u8`);
    t.equal(seg.livePlaylistName, `hls/${room}/live.m3u8`);
    t.equal(playlist.segments[0]?.uri, 'seg_00000.ts', 'INDEX names, relative to the playlist');
    t.equal(run.final.result.case, 'segments', 'the deprecated result holds the only output');
  });

  t.test('one encode, fanned out: MP4 + HLS (TIMESTAMP names) + thumbnails from a participant egress', async (t) => {
    const room = newRoom('fan');
    await publish(t, room, 'bob', { audio: true, video: 'vp8', width: 1280, height: 720, fps: 30 });
    let gstCount = 0;
    const run = await runEgress(
      client,
      () =>
        client.startParticipantEgress(
          room,
          'bob',
          {
            file: new EncodedFileOutput({ filepath: 'fan/{room_name}.mp4' }),
            segments: new SegmentedFileOutput({ filenamePrefix: 'fan/{room_name}-hls/part', segmentDuration: SEGMENT_S, filenameSuffix: SegmentedFileSuffix.TIMESTAMP }),
            images: new ImageOutput({ filenamePrefix: 'fan/{room_name}-thumbs/t', captureInterval: 2, width: 320, height: 180 }),
          },
          { encodingOptions: EncodingOptionsPreset.H264_720P_30 },
        ),
      {
        recordMs: RECORD_MS,
        during: async (info) => {
          await new Promise((r) => setTimeout(r, 3000));
          gstCount = (await jobDetail(debugPort, info.egressId)).processes.filter((p) => p.name === 'gst-launch-1.0').length;
        },
      },
    );
    t.equal(gstCount, 1, 'one gst-launch process encodes for all three outputs');
    const file = fileOf(t, run);
    const mp4 = await probe(file.location);
    t.same(mp4.streams.map((s) => s.codecName).sort(), ['aac', 'h264']);
    checkDuration(t, mp4.duration, run);
    t.ok((await audioLevel(file.location)).meanDb > -50, 'audio is not silent');
    const changes = await videoChanges(file.location);
    t.ok(changes.distinctFrames > changes.frames / 4, 'video changes');

    const { playlist } = await checkSegments(t, run, { audio: true, video: true });
    for (const s of playlist.segments) {
      const m = /_(\d{14})(\d{3})\.ts$/.exec(s.uri);
      t.ok(m, `${s.uri}: TIMESTAMP name`);
      if (!m || !s.programDateTime) continue;
      const d = s.programDateTime;
      const stamp = `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}${String(d.getUTCDate()).padStart(2, '0')}${String(d.getUTCHours()).padStart(2, '0')}${String(d.getUTCMinutes()).padStart(2, '0')}${String(d.getUTCSeconds()).padStart(2, '0')}${String(d.getUTCMilliseconds()).padStart(3, '0')}`;
      t.equal(`${m[1]}${m[2]}`, stamp, `${s.uri}: the name is its program-date-time`);
    }

    t.equal(run.final.imageResults.length, 1, 'one image result');
    const images = run.final.imageResults[0]!;
    const wall = (run.stopAt - run.activeAt) / 1000;
    // One at 0 s and one every 2 s after it; the one due at the very end may or may not be taken.
    const expected = Math.floor(wall / 2) + 1;
    t.ok(Number(images.imageCount) >= expected - 1 && Number(images.imageCount) <= expected + 1, `${images.imageCount} thumbnails, one per 2 s of ${wall.toFixed(1)} s`);
    t.equal(images.filenamePrefix, `fan/${room}-thumbs/t`);
    const dir = local(`fan/${room}-thumbs`);
    const jpegs = readdirSync(dir).filter((f) => f.endsWith('.jpeg')).sort();
    t.equal(jpegs.length, Number(images.imageCount), 'every counted thumbnail is stored');
    t.same(jpegs.slice(0, 2), ['t_00000.jpeg', 't_00001.jpeg'], 'INDEX names');
    const frames = await Promise.all(jpegs.slice(0, 3).map((j) => probe(path.join(dir, j))));
    for (const f of frames) {
      t.equal(f.streams[0]?.codecName, 'mjpeg');
      t.equal(f.streams[0]?.width, 320);
      t.equal(f.streams[0]?.height, 180);
    }
    const distinct = new Set(jpegs.map((j) => readFileSync(path.join(dir, j)).toString('base64')));
    t.ok(distinct.size >= Math.min(3, jpegs.length), `thumbnails differ over time (${distinct.size} distinct of ${jpegs.length})`);

    const manifest = JSON.parse(readFileSync(local(`fan/${run.final.egressId}.json`), 'utf8')) as { files: unknown[]; playlists: { segments: unknown[] }[]; images: unknown[] };
    t.equal(manifest.files.length, 1, 'manifest: the file');
    t.equal(manifest.playlists[0]?.segments.length, playlist.segments.length, 'manifest: every segment');
    t.equal(manifest.images.length, Number(images.imageCount), 'manifest: every thumbnail');
  });

  t.test('thumbnails alone: TIMESTAMP and NONE_OVERWRITE names, at the track’s own size', async (t) => {
    const room = newRoom('img');
    const pub = await publish(t, room, 'carol', { audio: false, video: 'vp8', width: 640, height: 360, fps: 30 });
    const run = await runEgress(
      client,
      () =>
        client.startTrackCompositeEgress(
          room,
          { images: new ImageOutput({ filenamePrefix: 'img/{room_name}/stamp', captureInterval: 3, filenameSuffix: ImageFileSuffix.IMAGE_SUFFIX_TIMESTAMP }) },
          { videoTrackId: pub.videoTrackSid },
        ),
      { recordMs: 8_000 },
    );
    t.equal(run.final.status, EgressStatus.EGRESS_COMPLETE, `COMPLETE (${run.final.error})`);
    const names = readdirSync(local(`img/${room}`)).filter((f) => f.endsWith('.jpeg'));
    t.equal(names.length, Number(run.final.imageResults[0]?.imageCount), 'every counted thumbnail is stored');
    t.ok(names.length >= 2, `${names.length} thumbnails`);
    for (const n of names) t.match(n, /^stamp_\d{17}\.jpeg$/, `${n}: TIMESTAMP name`);
    const first = await probe(path.join(local(`img/${room}`), names.sort()[0]!));
    t.equal(first.streams[0]?.width, 640, 'SDK source, no size asked: the track’s width');
    t.equal(first.streams[0]?.height, 360);

    const room2 = newRoom('img-over');
    const pub2 = await publish(t, room2, 'dave', { audio: false, video: 'vp8', width: 640, height: 360, fps: 30 });
    const run2 = await runEgress(
      client,
      () =>
        client.startTrackCompositeEgress(
          room2,
          { images: new ImageOutput({ filenamePrefix: 'img/{room_name}/latest', captureInterval: 2, width: 160, height: 90, filenameSuffix: ImageFileSuffix.IMAGE_SUFFIX_NONE_OVERWRITE }) },
          { videoTrackId: pub2.videoTrackSid },
        ),
      { recordMs: 7_000 },
    );
    t.equal(run2.final.status, EgressStatus.EGRESS_COMPLETE, `COMPLETE (${run2.final.error})`);
    t.ok(Number(run2.final.imageResults[0]?.imageCount) >= 3, 'several thumbnails taken');
    t.same(readdirSync(local(`img/${room2}`)).filter((f) => f.endsWith('.jpeg')), ['latest.jpeg'], 'one object, overwritten');
    t.equal((await probe(local(`img/${room2}/latest.jpeg`))).streams[0]?.width, 160);
  });

  t.test('audio-only room composite → HLS (AAC in MPEG-TS)', async (t) => {
    const room = newRoom('hls-audio');
    await publish(t, room, 'erin', { audio: true, video: false });
    const run = await runEgress(
      client,
      () => client.startRoomCompositeEgress(room, { segments: new SegmentedFileOutput({ filenamePrefix: 'hls-audio/{room_name}', segmentDuration: SEGMENT_S }) }, { audioOnly: true }),
      { recordMs: 8_000 },
    );
    t.equal(run.final.status, EgressStatus.EGRESS_COMPLETE, `COMPLETE (${run.final.error})`);
    await checkSegments(t, run, { audio: true, video: false });
  });

  t.test('segments to S3: uploaded in order as they close, the playlist never naming one not stored', async (t) => {
    const room = newRoom('hls-s3');
    const pub = await publish(t, room, 'frank', { audio: true, video: 'vp8', width: 640, height: 360, fps: 30 });
    const s3c = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: S3RVER_SECRET } });
    t.teardown(() => s3c.destroy());
    const upload = new S3Upload({ accessKey: S3RVER_ACCESS_KEY, secret: S3RVER_SECRET, endpoint: s3.endpoint, bucket: 'hls', region: 'us-east-1', forcePathStyle: true });
    const prefix = `s3hls/${room}`;
    const checks = { playlists: 0, listed: 0, missing: [] as string[] };
    let recording = true;
    const poll = async () => {
      while (recording) {
        const text = await s3c
          .send(new GetObjectCommand({ Bucket: 'hls', Key: `${prefix}/index.m3u8` }))
          .then((r) => r.Body!.transformToString(), () => undefined);
        if (text) {
          checks.playlists++;
          const listed = checkPlaylist(text, { ended: text.includes('#EXT-X-ENDLIST') }).segments;
          checks.listed = Math.max(checks.listed, listed.length);
          for (const s of listed) {
            const there = await s3c.send(new HeadObjectCommand({ Bucket: 'hls', Key: `${prefix}/${s.uri}` })).then(() => true, () => false);
            if (!there) checks.missing.push(s.uri);
          }
        }
        await new Promise((r) => setTimeout(r, 300));
      }
    };
    let polling: Promise<void> | undefined;
    const run = await runEgress(
      client,
      () =>
        client.startTrackCompositeEgress(
          room,
          { segments: new SegmentedFileOutput({ filenamePrefix: `${prefix}/seg`, playlistName: 'index.m3u8', segmentDuration: SEGMENT_S, output: { case: 's3', value: upload } }) },
          { audioTrackId: pub.audioTrackSid, videoTrackId: pub.videoTrackSid, encodingOptions: EncodingOptionsPreset.H264_720P_30 },
        ),
      {
        recordMs: RECORD_MS,
        during: async () => {
          polling = poll();
        },
      },
    );
    recording = false;
    await polling;
    t.equal(run.final.status, EgressStatus.EGRESS_COMPLETE, `COMPLETE (${run.final.error})`);
    const seg = run.final.segmentResults[0]!;
    t.ok(checks.playlists >= 3, `the playlist was read from S3 while recording (${checks.playlists} times, up to ${checks.listed} segments)`);
    t.ok(checks.listed >= 3, 'it grew while recording');
    t.same(checks.missing, [], 'every segment a playlist named was already stored');
    const segmentPuts = s3.stored.filter((p) => p.startsWith(`/hls/${prefix}/seg_`)).map((p) => path.basename(p));
    t.same(segmentPuts, [...segmentPuts].sort(), 'segments were stored in order');
    t.equal(segmentPuts.length, Number(seg.segmentCount), 'each once');
    const final = await s3c.send(new GetObjectCommand({ Bucket: 'hls', Key: `${prefix}/index.m3u8` })).then((r) => r.Body!.transformToString());
    t.equal(checkPlaylist(final, { ended: true }).segments.length, Number(seg.segmentCount), 'the stored playlist is closed with every segment');
    t.match(seg.playlistLocation, /index\.m3u8/, 'playlist location');
  });

  t.test('a SIGKILLed handler writing MP4 + HLS: the MP4 plays, the playlist is closed, EgressInfo lists both', async (t) => {
    const room = newRoom('kill');
    const pub = await publish(t, room, 'gina', { audio: true, video: 'vp8', width: 640, height: 360, fps: 30 });
    const started = await client.startTrackCompositeEgress(
      room,
      { file: new EncodedFileOutput({ filepath: 'kill/{room_name}.mp4' }), segments: new SegmentedFileOutput({ filenamePrefix: 'kill/{room_name}-hls/seg', segmentDuration: SEGMENT_S }) },
      // The publisher's own size: an encoder that keeps up even with other suites running beside it. What
      // the kill can cost is the encoder's backlog, and a 720p encode on a loaded 2-core machine fell 5 s behind.
      { audioTrackId: pub.audioTrackSid, videoTrackId: pub.videoTrackSid, encodingOptions: new EncodingOptions({ width: 640, height: 360, framerate: 30, videoBitrate: 1000 }) },
    );
    await waitForStatus(client, started.egressId, (s) => s >= EgressStatus.EGRESS_ACTIVE, 'ACTIVE', 40_000);
    const activeAt = Date.now();
    await new Promise((r) => setTimeout(r, 9_000));
    const detail = await jobDetail(debugPort, started.egressId);
    process.kill(detail.processes[0]!.pid, 'SIGKILL');
    const killedAt = Date.now();
    const final = await waitForStatus(client, started.egressId, (s) => s >= EgressStatus.EGRESS_COMPLETE, 'the end', 120_000);
    const recorded = (killedAt - activeAt) / 1000;
    t.equal(final.status, EgressStatus.EGRESS_FAILED, `FAILED (${final.error})`);
    t.match(final.details, /2 output\(s\) recovered/);

    const file = final.fileResults[0];
    t.ok(file?.location, 'the EgressInfo lists the recovered MP4');
    const mp4 = await probe(file!.location);
    t.same(mp4.streams.map((s) => s.codecName).sort(), ['aac', 'h264'], 'it plays: H.264 + AAC');
    t.ok(mp4.duration >= recorded - 2.5, `it loses at most the last 2 s (${mp4.duration.toFixed(2)} s of ${recorded.toFixed(2)} s)`);

    const seg = final.segmentResults[0];
    t.ok(seg?.playlistLocation, 'the EgressInfo lists the segments');
    const playlist = checkPlaylist(readFileSync(seg!.playlistLocation, 'utf8'), { ended: true });
    t.equal(playlist.segments.length, Number(seg!.segmentCount), 'the closed playlist lists every stored segment');
    for (const s of playlist.segments) t.ok(existsSync(path.join(path.dirname(seg!.playlistLocation), s.uri)), `${s.uri} stored`);
    const played = await probe(seg!.playlistLocation);
    t.same(played.streams.map((s) => s.codecName).sort(), ['aac', 'h264'], 'ffprobe plays the playlist');
    t.ok(played.duration >= recorded - 2.5, `the segments lose at most the last 2 s (${played.duration.toFixed(2)} s of ${recorded.toFixed(2)} s)`);
  });

  t.test('v2 StartEgress: media source to segments on S3 and thumbnails on local storage, each output its own storage', async (t) => {
    const room = newRoom('v2');
    const pub = await publish(t, room, 'hana', { audio: true, video: 'vp8', width: 640, height: 360, fps: 30 });
    const s3c = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: S3RVER_SECRET } });
    t.teardown(() => s3c.destroy());
    const upload = new S3Upload({ accessKey: S3RVER_ACCESS_KEY, secret: S3RVER_SECRET, endpoint: s3.endpoint, bucket: 'hls', region: 'us-east-1', forcePathStyle: true });
    const request = new StartEgressRequest({
      roomName: room,
      source: { case: 'media', value: new MediaSource({ video: { case: 'videoTrackId', value: pub.videoTrackSid! }, audio: new AudioConfig({ routes: [new AudioRoute({ match: { case: 'trackId', value: pub.audioTrackSid! } })] }) }) },
      outputs: [
        new Output({ config: { case: 'segments', value: new SegmentedFileOutput({ filenamePrefix: `v2/${room}/seg`, segmentDuration: SEGMENT_S }) }, storage: new StorageConfig({ provider: { case: 's3', value: upload } }) }),
        new Output({ config: { case: 'images', value: new ImageOutput({ filenamePrefix: `v2/${room}-img/t`, captureInterval: 2 }) } }),
      ],
    });
    const run = await runEgress(client, () => client.startEgress(request), { recordMs: 8_000 });
    t.equal(run.final.status, EgressStatus.EGRESS_COMPLETE, `COMPLETE (${run.final.error})`);
    const seg = run.final.segmentResults[0]!;
    const stored = await s3c.send(new GetObjectCommand({ Bucket: 'hls', Key: seg.playlistName })).then((r) => r.Body!.transformToString());
    t.equal(checkPlaylist(stored, { ended: true }).segments.length, Number(seg.segmentCount), 'the playlist is on S3 with every segment');
    t.notOk(existsSync(local(seg.playlistName)), 'and not on local storage');
    const jpegs = readdirSync(local(`v2/${room}-img`)).filter((f) => f.endsWith('.jpeg'));
    t.equal(jpegs.length, Number(run.final.imageResults[0]?.imageCount), 'the thumbnails are on local storage');
    t.ok(jpegs.length >= 3, `${jpegs.length} thumbnails`);
  });

  t.test('segment_output_max_duration: LIMIT_REACHED, with the playlist closed and every segment stored', async (t) => {
    await suite.node.stop();
    const limited = await startEgressNode(d, { session_limits: { segment_output_max_duration: '7s' } });
    t.teardown(() => limited.stop());
    const room = newRoom('limit');
    const pub = await publish(t, room, 'ivan', { audio: true, video: 'vp8', width: 640, height: 360, fps: 30 });
    const started = await client.startTrackCompositeEgress(
      room,
      { segments: new SegmentedFileOutput({ filenamePrefix: 'limit/{room_name}/seg', segmentDuration: SEGMENT_S }) },
      { audioTrackId: pub.audioTrackSid, videoTrackId: pub.videoTrackSid, encodingOptions: EncodingOptionsPreset.H264_720P_30 },
    );
    const final = await waitForStatus(client, started.egressId, (s) => s >= EgressStatus.EGRESS_COMPLETE, 'the limit', 60_000);
    t.equal(final.status, EgressStatus.EGRESS_LIMIT_REACHED, `LIMIT_REACHED (${final.error})`);
    const seg = final.segmentResults[0]!;
    const playlist = checkPlaylist(readFileSync(path.join(limited.outputDir, seg.playlistName), 'utf8'), { ended: true });
    t.equal(playlist.segments.length, Number(seg.segmentCount), 'closed with every stored segment');
    const total = playlist.segments.reduce((sum, s) => sum + s.duration, 0);
    t.ok(total >= 5 && total <= 8, `about the 7 s limit recorded (${total.toFixed(2)} s)`);
  });

  t.test('image_output_max_duration: LIMIT_REACHED, with every thumbnail stored', async (t) => {
    await suite.node.stop();
    const limited = await startEgressNode(d, { session_limits: { image_output_max_duration: '6s' } });
    t.teardown(() => limited.stop());
    const room = newRoom('imglimit');
    await publish(t, room, 'judy', { audio: true, video: 'vp8', width: 640, height: 360, fps: 30 });
    const started = await client.startParticipantEgress(room, 'judy', {
      images: new ImageOutput({ filenamePrefix: 'imglimit/{room_name}/t', captureInterval: 1, width: 320, height: 180 }),
    });
    const final = await waitForStatus(client, started.egressId, (s) => s >= EgressStatus.EGRESS_COMPLETE, 'the limit', 60_000);
    t.equal(final.status, EgressStatus.EGRESS_LIMIT_REACHED, `LIMIT_REACHED (${final.error})`);
    const images = final.imageResults[0]!;
    const count = Number(images.imageCount);
    t.ok(count >= 5 && count <= 8, `about one a second for the 6 s limit (${count})`);
    const jpegs = readdirSync(path.join(limited.outputDir, `imglimit/${room}`)).filter((f) => f.endsWith('.jpeg'));
    t.equal(jpegs.length, count, 'every counted thumbnail is stored');
  });
}
