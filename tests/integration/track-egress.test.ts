// Issue 2's walking skeleton, end to end: livekit-server-sdk → livekit-server → psrpc/Redis → our
// supervisor → handler (rtc-node → gst-launch) → file, status and webhooks back through livekit-server.
import '../rig/quiet-rtc.ts';
import t from 'tap';
import { existsSync } from 'node:fs';
import { DirectFileOutput, EgressStatus, type EgressInfo } from '@livekit/protocol';
import { audioLevel, probe, videoChanges } from '../rig/probe.ts';
import { startPublisher } from '../rig/publisher.ts';
import { egressSuite } from '../support/suite.ts';
import { waitFor } from '../support/wait.ts';

const RECORD_MS = 8_000;

const suite = await egressSuite(t, { what: 'track file cases', filteredBy: ['stream_only', 'segments_only', 'room_only', 'web_only', 'track_composite_only'], needsWebhooks: true });
if (suite) {
  const { deployment: d, webhooks, node, client, getInfo } = suite;

  const cases = [
    { name: 'audio (Opus) → OGG', audio: true, video: false as const, codec: 'opus', ext: '.ogg' },
    { name: 'VP8 → WebM', audio: false, video: 'vp8' as const, codec: 'vp8', ext: '.webm' },
    { name: 'H.264 → MP4', audio: false, video: 'h264' as const, codec: 'h264', ext: '.mp4' },
  ];

  // The three cases run at once, each in its own room, as a real node would serve them.
  await Promise.all(
    cases.map((c, i) =>
      t.test(c.name, async (t) => {
        const room = `track-${i}-${Date.now()}`;
        const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: `pub-${i}`, audio: c.audio, video: c.video });
        t.teardown(() => pub.stop());
        const trackId = (c.audio ? pub.audioTrackSid : pub.videoTrackSid)!;

        const started = await client.startTrackEgress(room, new DirectFileOutput({ filepath: `${c.codec}/{track_type}-{track_id}` }), trackId);
        t.equal(started.status, EgressStatus.EGRESS_STARTING, 'StartEgress answers STARTING');
        t.match(started.egressId, /^EG_/);
        t.equal(started.roomName, room);
        t.equal(started.request.case, 'track', 'the stored request is the track request');

        await webhooks?.waitFor((e) => e.event === 'egress_started' && e.egressInfo?.egressId === started.egressId, 15_000);
        await waitFor('ACTIVE', async () => ((await getInfo(started.egressId))?.status === EgressStatus.EGRESS_ACTIVE ? true : undefined), 20_000);
        const activeAt = Date.now();
        await webhooks?.waitFor((e) => e.event === 'egress_updated' && e.egressInfo?.status === EgressStatus.EGRESS_ACTIVE && e.egressInfo.egressId === started.egressId, 10_000);

        await new Promise((r) => setTimeout(r, RECORD_MS));
        const stopAt = Date.now();
        const stopped = await client.stopEgress(started.egressId);
        t.equal(stopped.status, EgressStatus.EGRESS_ENDING, 'StopEgress answers ENDING');

        const final: EgressInfo = await waitFor('COMPLETE', async () => {
          const info = await getInfo(started.egressId);
          return info && info.status >= EgressStatus.EGRESS_COMPLETE ? info : undefined;
        }, 30_000);
        t.equal(final.status, EgressStatus.EGRESS_COMPLETE, `ends COMPLETE (error: ${final.error})`);
        t.ok(final.endedAt > 0n, 'ended_at set');
        if (webhooks) {
          const ended = await webhooks.waitFor((e) => e.event === 'egress_ended' && e.egressInfo?.egressId === started.egressId, 10_000);
          t.equal(ended.egressInfo?.status, EgressStatus.EGRESS_COMPLETE, 'webhooks: egress_started, egress_updated (ACTIVE), egress_ended (COMPLETE)');
        }

        const listed = await client.listEgress({ roomName: room });
        t.equal(listed.length, 1, 'listEgress by room finds it');
        t.equal(listed[0]?.status, EgressStatus.EGRESS_COMPLETE);

        const file = final.fileResults[0]!;
        t.equal(file.filename, `${c.codec}/${c.audio ? 'audio' : 'video'}-${trackId}${c.ext}`, 'placeholders resolved');
        t.ok(existsSync(file.location), `file exists at ${file.location}`);
        t.notOk(existsSync(`${node.tmpDir}/${started.egressId}`), 'its scratch directory is gone');
        t.ok(file.size > 0n && file.duration > 0n && file.startedAt > 0n && file.endedAt > file.startedAt, 'file result times and size');

        const info = await probe(file.location);
        const stream = info.streams.find((s) => s.codecType === (c.audio ? 'audio' : 'video'));
        t.equal(stream?.codecName, c.codec, `codec ${c.codec}`);
        const expected = (stopAt - activeAt) / 1000;
        t.ok(Math.abs(info.duration - expected) <= expected * 0.1, `duration ${info.duration.toFixed(2)} s within 10% of ${expected.toFixed(2)} s`);
        t.ok(Math.abs(Number(file.duration) / 1e9 - info.duration) < 1, 'reported duration matches the file');
        if (c.audio) {
          const level = await audioLevel(file.location);
          t.ok(level.meanDb > -50, `audio is not silent (mean ${level.meanDb} dB)`);
        } else {
          t.equal(stream?.width, 640);
          t.equal(stream?.height, 360);
          const v = await videoChanges(file.location);
          t.ok(v.distinctFrames > v.frames / 2, `video changes (${v.distinctFrames}/${v.frames} distinct frames)`);
        }
      }),
    ),
  );
}
