// Every SDK kind recorded from publishers that are not ours: a pion client (server-sdk-go, media from
// files) and a browser (livekit-client in Chromium, fake capture devices). Interop bugs hide when
// the publisher is the same library the egress subscribes with.
import '../rig/quiet-rtc.ts';
import t, { type Test } from 'tap';
import { AudioConfig, EncodedFileOutput, FileOutput, MediaSource, Output, StartEgressRequest } from '@livekit/protocol';
import { startBrowserPublisher } from '../rig/browser-publisher.ts';
import { startPionPublisher } from '../rig/pion-publisher.ts';
import { audioLevel, avSync, probe } from '../rig/probe.ts';
import { checkComposite, checkDuration, fileOf, runEgress } from '../support/egress-run.ts';
import { egressSuite } from '../support/suite.ts';

const RECORD_MS = 8_000;

interface Published {
  audioTrackSid?: string;
  videoTrackSid?: string;
  stop(): Promise<void>;
}

const suite = await egressSuite(t, { what: 'SDK kind cases', filteredBy: ['stream_only', 'segments_only', 'web_only', 'track_only'] });
if (suite) {
  const { deployment: d, client } = suite;
  const conn = { wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret };
  const publishers: [string, (room: string, identity: string) => Promise<Published>][] = [
    ['pion (VP8 + Opus from files)', (room, identity) => startPionPublisher({ ...conn, room, identity, video: 'vp8' })],
    ['browser (H.264 + Opus, livekit-client in Chromium)', (room, identity) => startBrowserPublisher({ ...conn, room, identity, video: 'h264' })],
  ];
  const composite = { audio: 'aac', width: 1280, height: 720, fps: 30 };

  for (const [name, start] of publishers) {
    await t.test(name, async (t: Test) => {
      const room = `publishers-${name.split(' ')[0]}-${Date.now()}`;
      const pub = await start(room, 'ann');
      t.teardown(() => pub.stop());

      await t.test('track composite → MP4', async (t) => {
        const run = await runEgress(client, () => client.startTrackCompositeEgress(room, new EncodedFileOutput({ filepath: 'pk/tc-{publisher_identity}' }), { audioTrackId: pub.audioTrackSid, videoTrackId: pub.videoTrackSid }), { recordMs: RECORD_MS });
        const location = await checkComposite(t, run, composite);
        const sync = await avSync(location);
        t.comment(`A/V offsets (ms): ${sync.offsetsMs.join(' ')}; p50 ${sync.p50}, p95 ${sync.p95}, max ${sync.max}`);
      });

      await t.test('participant → MP4', async (t) => {
        const run = await runEgress(client, () => client.startParticipantEgress(room, 'ann', { file: new EncodedFileOutput({ filepath: 'pk/p-{publisher_identity}' }) }), { recordMs: RECORD_MS });
        await checkComposite(t, run, composite);
        t.equal(run.final.fileResults[0]?.filename, 'pk/p-ann.mp4');
      });

      await t.test('audio-only room composite → OGG', async (t) => {
        const run = await runEgress(client, () => client.startRoomCompositeEgress(room, new EncodedFileOutput({ filepath: 'pk/room' }), { audioOnly: true }), { recordMs: RECORD_MS });
        const file = fileOf(t, run);
        const info = await probe(file.location);
        t.equal(info.streams[0]?.codecName, 'opus');
        checkDuration(t, info.duration, run);
        t.ok((await audioLevel(file.location)).meanDb > -50, 'audio is not silent');
      });

      await t.test('v2 media source (video by track id, every audio track) → MP4', async (t) => {
        const request = new StartEgressRequest({
          roomName: room,
          source: { case: 'media', value: new MediaSource({ video: { case: 'videoTrackId', value: pub.videoTrackSid! }, audio: new AudioConfig({ captureAll: true }) }) },
          outputs: [new Output({ config: { case: 'file', value: new FileOutput({ filepath: 'pk/media' }) } })],
        });
        const run = await runEgress(client, () => client.startEgress(request), { recordMs: RECORD_MS });
        await checkComposite(t, run, composite);
      });
    });
  }
}
