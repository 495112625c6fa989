// Zero-transcode track egress (issue 12, egress-behaviour §10.5): the published bitstream goes into
// the file as it is. Checked against the publisher's own frames: the pion publisher sends encoded
// files, and every frame of the recording must be one of theirs (a re-encode would change every
// one). Also mute and unmute, an unpublish mid-way, and a SIGKILLed handler's recovered file.
import '../rig/quiet-rtc.ts';
import t from 'tap';
import { DirectFileOutput, EgressStatus, type EgressInfo } from '@livekit/protocol';
import { RoomServiceClient } from 'livekit-server-sdk';
import { execa } from 'execa';
import { freePort } from '../rig/ports.ts';
import { MEDIA_CACHE_DIR, startPionPublisher } from '../rig/pion-publisher.ts';
import { markerFiles } from '../rig/marker-media.ts';
import { audioLevel, decodeErrors, probe, videoChanges } from '../rig/probe.ts';
import { startPublisher, type Publisher } from '../rig/publisher.ts';
import { jobDetail } from '../support/debug-api.ts';
import { checkDuration, fileOf, runEgress, waitForStatus } from '../support/egress-run.ts';
import { egressSuite } from '../support/suite.ts';

const RECORD_MS = 8_000;
const debugPort = await freePort();
const suite = await egressSuite(t, { what: 'track remux cases', filteredBy: ['stream_only', 'segments_only', 'room_only', 'web_only', 'track_composite_only'], node: { debug_handler_port: debugPort, remux_tracks: true } });

/** One line per frame: decoded pictures for video (bit-exact decoders), the packets themselves for audio. */
async function frameHashes(file: string, kind: 'audio' | 'video'): Promise<string[]> {
  const args = kind === 'video' ? ['-map', '0:v:0'] : ['-map', '0:a:0', '-c', 'copy'];
  const { stdout } = await execa('ffmpeg', ['-v', 'error', '-i', file, ...args, '-f', 'framemd5', '-']);
  return stdout.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(',').at(-1)!.trim());
}

/**
 * Known defect, named in issue 12's note: now and then one frame of a remuxed video track gets a
 * timestamp a few ms before its predecessor's (seen after an unmute, a loss, or in a file cut short by
 * a kill), which ffmpeg's muxer reports. The frames themselves decode; every other error fails the case.
 */
const decodeErrorsBesidesTimestamps = async (file: string) =>
  (await decodeErrors(file)).split('\n').filter((l) => l && !/non monotonically increasing dts|^increasing dts/.test(l)).join('\n');

if (suite) {
  const { deployment: d, client } = suite;
  const rooms = new RoomServiceClient(d.httpUrl, d.apiKey, d.apiSecret);
  const ended = (id: string, ms = 30_000) => waitForStatus(client, id, (s) => s >= EgressStatus.EGRESS_COMPLETE, `${id} to end`, ms);
  const active = (id: string) => waitForStatus(client, id, (s) => s >= EgressStatus.EGRESS_ACTIVE, `${id} ACTIVE`, 20_000);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  const bitExact = [
    { name: 'VP8 → WebM', kind: 'video' as const, video: 'vp8' as const, audio: false, codec: 'vp8', source: 'ivf' as const },
    { name: 'H.264 → MP4', kind: 'video' as const, video: 'h264' as const, audio: false, codec: 'h264', source: 'h264' as const },
    { name: 'Opus → OGG', kind: 'audio' as const, video: false as const, audio: true, codec: 'opus', source: 'ogg' as const },
  ].map((c, i) =>
    t.test(`${c.name}: every recorded frame is one the publisher sent, not re-encoded`, async (t) => {
      const room = `remux-exact-${i}-${Date.now()}`;
      const pub = await startPionPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: `pion-${i}`, seconds: 10, audio: c.audio, video: c.video });
      t.teardown(() => pub.stop());
      const trackId = (c.audio ? pub.audioTrackSid : pub.videoTrackSid)!;
      const run = await runEgress(client, () => client.startTrackEgress(room, new DirectFileOutput({ filepath: `remux/{track_id}` }), trackId), { recordMs: RECORD_MS });
      const file = fileOf(t, run).location;
      const info = await probe(file);
      t.same(info.streams.map((s) => s.codecName), [c.codec], `one ${c.codec} stream`);
      checkDuration(t, info.duration, run);
      const wall = (run.stopAt - run.activeAt) / 1000;
      if (c.kind === 'video') {
        t.equal(info.streams[0]?.width, 640, 'the publisher\'s width');
        t.equal(info.streams[0]?.height, 360, 'and height');
      }
      const sent = new Set(await frameHashes((await markerFiles(MEDIA_CACHE_DIR, { seconds: 10, keyIntervalS: 1 }))[c.source], c.kind));
      const recorded = await frameHashes(file, c.kind);
      const foreign = recorded.filter((h) => !sent.has(h));
      t.ok(recorded.length > wall * (c.kind === 'video' ? 25 : 45), `${recorded.length} frames recorded`);
      t.equal(foreign.length, 0, `every one is a frame the publisher sent (${foreign.length} of ${recorded.length} are not)`);
      t.equal(await decodeErrorsBesidesTimestamps(file), '', 'it decodes with no error');
    }),
  );

  /** A user muting from their client: the server marks the track muted, the sender stops sending. */
  const mute = async (room: string, identity: string, p: Publisher, kind: 'audio' | 'video', muted: boolean) => {
    p.pause(kind, muted);
    await rooms.mutePublishedTrack(room, identity, (kind === 'audio' ? p.audioTrackSid : p.videoTrackSid)!, muted);
  };

  const muting = (['audio', 'video'] as const).map((kind) =>
    t.test(`${kind} muted for 3 s and unmuted: the file has a gap, then the track again, and ends COMPLETE`, async (t) => {
      const room = `remux-mute-${kind}-${Date.now()}`;
      const identity = `muter-${kind}`;
      const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity, audio: kind === 'audio', video: kind === 'video' ? 'vp8' : false });
      t.teardown(() => pub.stop());
      const trackId = (kind === 'audio' ? pub.audioTrackSid : pub.videoTrackSid)!;
      const run = await runEgress(client, () => client.startTrackEgress(room, new DirectFileOutput({ filepath: `remux/mute-{track_id}` }), trackId), {
        recordMs: 10_000,
        during: async (started) => {
          await sleep(3000);
          await mute(room, identity, pub, kind, true);
          await sleep(3000);
          await mute(room, identity, pub, kind, false);
          await sleep(3500);
          t.equal((await client.listEgress({ egressId: started.egressId }))[0]?.status, EgressStatus.EGRESS_ACTIVE, 'ACTIVE throughout');
        },
      });
      const file = fileOf(t, run).location;
      const info = await probe(file);
      // The gap keeps its place on the time line: what follows the unmute is not pulled earlier.
      checkDuration(t, info.duration, run);
      t.equal(await decodeErrorsBesidesTimestamps(file), '', 'it decodes with no error');
      const tail = `${file}.tail.${kind === 'audio' ? 'wav' : 'mkv'}`;
      await execa('ffmpeg', ['-v', 'error', '-y', '-sseof', '-2.5', '-i', file, ...(kind === 'audio' ? [] : ['-c', 'copy']), tail]).catch(() =>
        execa('ffmpeg', ['-v', 'error', '-y', '-ss', String(info.duration - 2.5), '-i', file, tail]),
      );
      if (kind === 'audio') t.ok((await audioLevel(tail)).meanDb > -50, 'the sound is back after the unmute');
      else t.ok((await videoChanges(file)).distinctFrames > 150, 'the picture moves before and after the mute');
    }),
  );

  const unpublish = t.test('the track unpublished mid-recording: the egress ends by itself, COMPLETE, with what was recorded', async (t) => {
    const room = `remux-unpub-${Date.now()}`;
    const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: 'leaver', audio: false, video: 'h264' });
    t.teardown(() => pub.stop());
    const started = await client.startTrackEgress(room, new DirectFileOutput({ filepath: 'remux/unpub-{track_id}' }), pub.videoTrackSid!);
    await active(started.egressId);
    const activeAt = Date.now();
    await sleep(5000);
    await pub.unpublish('video');
    const goneAt = Date.now();
    const final: EgressInfo = await ended(started.egressId, 20_000);
    t.equal(final.status, EgressStatus.EGRESS_COMPLETE, `COMPLETE (${final.error})`);
    const info = await probe(final.fileResults[0]!.location);
    t.same(info.streams.map((s) => s.codecName), ['h264']);
    const wall = (goneAt - activeAt) / 1000;
    t.ok(Math.abs(info.duration - wall) <= 0.6, `duration ${info.duration.toFixed(2)} s, recorded until the unpublish (${wall.toFixed(2)} s)`);
  });

  const killed = [
    { kind: 'video' as const, video: 'vp8' as const, codec: 'vp8' },
    { kind: 'video' as const, video: 'h264' as const, codec: 'h264' },
    { kind: 'audio' as const, video: false as const, codec: 'opus' },
  ].map((c, i) =>
    t.test(`${c.codec}: the handler SIGKILLed mid-recording, the recovered file plays`, async (t) => {
      const room = `remux-kill-${i}-${Date.now()}`;
      const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: `victim-${i}`, audio: c.kind === 'audio', video: c.video });
      t.teardown(() => pub.stop());
      const trackId = (c.kind === 'audio' ? pub.audioTrackSid : pub.videoTrackSid)!;
      const started = await client.startTrackEgress(room, new DirectFileOutput({ filepath: `remux/kill-{track_id}` }), trackId);
      await active(started.egressId);
      const activeAt = Date.now();
      await sleep(6000);
      const handler = (await jobDetail(debugPort, started.egressId)).processes.find((p) => p.name === 'handler');
      t.ok(handler, 'the job lists its handler');
      process.kill(handler!.pid, 'SIGKILL');
      const recorded = (Date.now() - activeAt) / 1000;
      const final = await ended(started.egressId, 60_000);
      t.equal(final.status, EgressStatus.EGRESS_FAILED, `FAILED (${final.error})`);
      const file = final.fileResults[0];
      t.ok(file?.location, 'the EgressInfo lists the recovered file');
      const info = await probe(file!.location);
      t.same(info.streams.map((s) => s.codecName), [c.codec], `it plays: ${c.codec}`);
      t.ok(info.duration >= recorded - 2.5, `it loses at most the last 2.5 s (${info.duration.toFixed(2)} s of ${recorded.toFixed(2)} s)`);
      t.equal(await decodeErrorsBesidesTimestamps(file!.location), '', 'it decodes with no error');
    }),
  );

  await Promise.all([...bitExact, ...muting, unpublish, ...killed]);
}
