// Zero-transcode track egress under 2% packet loss (issue 12): the node drops that share of the UDP
// datagrams it receives from livekit-server (test_overrides.rtp_loss_percent; this kernel has no
// netem). NACKs bring the video packets back, a PLI restarts the picture where they do not, and the
// depayloaders drop whatever would reference a lost frame: the file decodes with no error.
import '../rig/quiet-rtc.ts';
import t from 'tap';
import { DirectFileOutput, EgressStatus } from '@livekit/protocol';
import { execa } from 'execa';
import { probe, videoChanges } from '../rig/probe.ts';
import { startPublisher } from '../rig/publisher.ts';
import { waitForStatus } from '../support/egress-run.ts';
import { egressSuite } from '../support/suite.ts';

const RECORD_MS = 10_000;
const suite = await egressSuite(t, {
  what: 'track remux cases',
  filteredBy: ['stream_only', 'segments_only', 'room_only', 'web_only', 'track_composite_only'],
  node: { remux_tracks: true, test_overrides: { cpu_load: 0, rtp_loss_percent: 2 } },
});

if (suite) {
  const { deployment: d, client, node } = suite;
  const cases = [
    { codec: 'vp8', video: 'vp8' as const, audio: false },
    // Known defect, named in issue 12's note: now and then the H.264 file stays empty after a loss at its
    // start (no frame reaches mp4mux; seen at 360p, not yet understood). Reported, not counted.
    { codec: 'h264', video: 'h264' as const, audio: false, todo: 'an H.264 file now and then stays empty after a loss at its start' },
    { codec: 'opus', video: false as const, audio: true },
  ];
  await Promise.all(
    cases.map((c, i) =>
      t.test(`${c.codec} with 2% of the packets lost: the file plays with no decode error`, { todo: c.todo ?? false }, async (t) => {
        const room = `remux-loss-${i}-${Date.now()}`;
        // The camera-like picture: larger frames, several packets each, so that loss hits inside frames.
        const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: `lossy-${i}`, audio: c.audio, video: c.video, width: 1280, height: 720, picture: 'camera' });
        t.teardown(() => pub.stop());
        const trackId = (c.audio ? pub.audioTrackSid : pub.videoTrackSid)!;
        const started = await client.startTrackEgress(room, new DirectFileOutput({ filepath: 'loss/{track_id}' }), trackId);
        await waitForStatus(client, started.egressId, (s) => s >= EgressStatus.EGRESS_ACTIVE, 'ACTIVE', 20_000);
        const activeAt = Date.now();
        await new Promise((r) => setTimeout(r, RECORD_MS));
        const wall = (Date.now() - activeAt) / 1000;
        await client.stopEgress(started.egressId);
        const final = await waitForStatus(client, started.egressId, (s) => s >= EgressStatus.EGRESS_COMPLETE, 'the end', 30_000);
        t.equal(final.status, EgressStatus.EGRESS_COMPLETE, `COMPLETE (${final.error})`);
        const file = final.fileResults[0]!.location;
        const info = await probe(file);
        t.same(info.streams.map((s) => s.codecName), [c.codec]);
        t.ok(Math.abs(info.duration - wall) <= wall * 0.05, `duration ${info.duration.toFixed(2)} s within 5% of ${wall.toFixed(2)} s`);
        const { stderr } = await execa('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-']);
        // Known defect, named in issue 12's note: now and then a VP8 frame after a dropped stretch gets a
        // timestamp a few ms before its predecessor's, which ffmpeg's muxer reports. No frame fails to decode.
        const errors = stderr.split('\n').filter((l) => l.trim() && !/non monotonically increasing dts/.test(l));
        t.same(errors, [], 'ffmpeg -v error prints no decode error');
        if (!c.audio) {
          const v = await videoChanges(file);
          t.ok(v.frames > wall * 20, `most frames are there (${v.frames} in ${wall.toFixed(1)} s)`);
          t.ok(v.distinctFrames > v.frames / 2, `the video changes (${v.distinctFrames}/${v.frames})`);
        }
      }),
    ),
  );
  const missed = node.log().split('\n').filter((l) => l.includes('video packets found missing')).map((l) => Number(/"missed":(\d+)/.exec(l)?.[1]));
  t.ok(missed.length >= 1, `the video jobs report their loss (${missed.length})`);
  // 10 s of a camera-like 720p track: 2% of its packets is some 20 per job.
  t.ok(missed.every((n) => n >= 5), `the loss was real: ${missed.join(', ')} packets missed, and asked for again`);
}
