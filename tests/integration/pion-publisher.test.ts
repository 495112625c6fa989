// Track egress of tracks published by a pion-based client (server-sdk-go, tests/rig/pion): media read
// from files, sent as is, with no encoder behind it to answer a PLI; key frames come when the file
// has them (every second here). Also: a track that never yields a decodable frame fails its egress,
// naming the track and codec, instead of sitting in STARTING.
import '../rig/quiet-rtc.ts';
import t from 'tap';
import { existsSync } from 'node:fs';
import { DirectFileOutput, EgressStatus, type EgressInfo } from '@livekit/protocol';
import { audioLevel, probe, videoChanges } from '../rig/probe.ts';
import { startPionPublisher } from '../rig/pion-publisher.ts';
import { egressSuite } from '../support/suite.ts';
import { waitFor } from '../support/wait.ts';

const RECORD_MS = 8_000;
/** The egress's bound on a subscribed track that yields no decodable frame (NO_FRAME_TIMEOUT_MS), plus slack. */
const NO_FRAME_FAIL_MS = 10_000 + 15_000;

const suite = await egressSuite(t, { what: 'track file cases', filteredBy: ['stream_only', 'segments_only', 'room_only', 'web_only', 'track_composite_only'] });
if (suite) {
  const { deployment: d, client, getInfo } = suite;
  const pub = (room: string, identity: string, o: { audio: boolean; video: false | 'vp8' | 'h264'; withholdKeyFrames?: boolean }) =>
    startPionPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity, seconds: 10, ...o });

  const cases = [
    { name: 'pion VP8 (IVF) → WebM', audio: false, video: 'vp8' as const, codec: 'vp8', ext: '.webm' },
    { name: 'pion H.264 (Annex B) → MP4', audio: false, video: 'h264' as const, codec: 'h264', ext: '.mp4' },
    { name: 'pion Opus (OGG) → OGG', audio: true, video: false as const, codec: 'opus', ext: '.ogg' },
  ];

  const recordings = cases.map((c, i) =>
    t.test(c.name, async (t) => {
      const room = `pion-${i}-${Date.now()}`;
      const p = await pub(room, `pion-${i}`, c);
      t.teardown(() => p.stop());
      const trackId = (c.audio ? p.audioTrackSid : p.videoTrackSid)!;
      t.match(trackId, /^TR_/, 'the publisher reports its track sid');

      const started = await client.startTrackEgress(room, new DirectFileOutput({ filepath: `pion/{track_type}-{track_id}` }), trackId);
      t.equal(started.status, EgressStatus.EGRESS_STARTING, 'StartEgress answers STARTING');
      // Key frames come every second: the first decodable frame is at most ~1 s after subscription.
      await waitFor('ACTIVE', async () => ((await getInfo(started.egressId))?.status === EgressStatus.EGRESS_ACTIVE ? true : undefined), 15_000).catch(async (err: Error) => {
        const info = await getInfo(started.egressId);
        throw new Error(`${err.message} (status ${info ? EgressStatus[info.status] : '?'}, error: ${info?.error}); publisher: ${p.stderr().slice(-1000)}`);
      });
      const activeAt = Date.now();

      await new Promise((r) => setTimeout(r, RECORD_MS));
      const stopAt = Date.now();
      await client.stopEgress(started.egressId);
      const final: EgressInfo = await waitFor('COMPLETE', async () => {
        const info = await getInfo(started.egressId);
        return info && info.status >= EgressStatus.EGRESS_COMPLETE ? info : undefined;
      }, 30_000);
      t.equal(final.status, EgressStatus.EGRESS_COMPLETE, `ends COMPLETE (error: ${final.error})`);

      const file = final.fileResults[0]!;
      t.equal(file.filename, `pion/${c.audio ? 'audio' : 'video'}-${trackId}${c.ext}`, 'placeholders resolved');
      t.ok(existsSync(file.location), `file exists at ${file.location}`);

      const info = await probe(file.location);
      const stream = info.streams.find((s) => s.codecType === (c.audio ? 'audio' : 'video'));
      t.equal(stream?.codecName, c.codec, `codec ${c.codec}`);
      const expected = (stopAt - activeAt) / 1000;
      t.ok(Math.abs(info.duration - expected) <= expected * 0.1, `duration ${info.duration.toFixed(2)} s within 10% of ${expected.toFixed(2)} s`);
      if (c.audio) {
        const level = await audioLevel(file.location);
        t.ok(level.meanDb > -50, `audio is not silent (mean ${level.meanDb} dB)`);
      } else {
        t.equal(stream?.width, 640, 'width 640');
        t.equal(stream?.height, 360, 'height 360');
        const v = await videoChanges(file.location);
        t.ok(v.distinctFrames > v.frames / 2, `video changes (${v.distinctFrames}/${v.frames} distinct frames)`);
      }
    }),
  );

  const neverDecodes = t.test('a VP8 track with no key frame ever → FAILED, naming the track and codec', async (t) => {
    const room = `pion-nokey-${Date.now()}`;
    const p = await pub(room, 'pion-nokey', { audio: false, video: 'vp8', withholdKeyFrames: true });
    t.teardown(() => p.stop());
    const trackId = p.videoTrackSid!;
    const started = await client.startTrackEgress(room, new DirectFileOutput({ filepath: 'pion/nokey-{track_id}' }), trackId);
    const final: EgressInfo = await waitFor('the end', async () => {
      const info = await getInfo(started.egressId);
      return info && info.status >= EgressStatus.EGRESS_COMPLETE ? info : undefined;
    }, NO_FRAME_FAIL_MS);
    t.equal(EgressStatus[final.status], 'EGRESS_FAILED', 'ends FAILED by itself (not ABORTED at a stop, not STARTING for ever)');
    t.match(final.error, trackId, `the error names the track (${final.error})`);
    t.match(final.error, /vp8/i, 'and its codec');
    t.match(final.error, /no decodable frame/);
  });

  await Promise.all([...recordings, neverDecodes]);
}
