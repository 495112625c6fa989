// The SDK-fed kinds end to end (issue 7): track composite, participant, audio-only room composite
// (the three mixing modes), track → websocket, and v2 StartEgress with a media source, each started
// through livekit-server-sdk on the real livekit-server, published by the rig's rtc-node publisher,
// and its output checked with ffprobe and content analysis.
import '../rig/quiet-rtc.ts';
import t, { type Test } from 'tap';
import {
  AudioChannel,
  AudioConfig,
  AudioMixing,
  AudioRoute,
  EgressStatus,
  EncodedFileOutput,
  EncodedFileType,
  FileOutput,
  MediaSource,
  Output,
  ParticipantVideo,
  StartEgressRequest,
} from '@livekit/protocol';
import { RoomServiceClient } from 'livekit-server-sdk';
import { audioLevel, avSync, beepTimes, blackSpells, probe, toneLevel, videoChanges } from '../rig/probe.ts';
import { startPublisher, type Publisher, type PublisherOptions } from '../rig/publisher.ts';
import { startPionPublisher } from '../rig/pion-publisher.ts';
import { startWsReceiver } from '../rig/ws-receiver.ts';
import { checkComposite, checkDuration, fileOf, runEgress, waitForStatus } from '../support/egress-run.ts';
import { egressSuite } from '../support/suite.ts';

const RECORD_MS = 10_000;
/**
 * Enough markers (one a second) for a p95 that the start-up does not decide. rtc-node's audio jitter
 * buffer (WebRTC's NetEq) starts behind and speeds up to catch up, which puts the sound of the first
 * two markers 40-110 ms late; and when the machine is busy for a moment it stretches and then
 * shortens what it plays, moving the sound by up to ~80 ms for a second or two. Of 20 markers p95 is
 * the second worst, which the start-up alone fills; of 40 it is the third worst.
 */
const SYNC_RECORD_MS = 40_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const suite = await egressSuite(t, { what: 'SDK kind cases', filteredBy: ['stream_only', 'segments_only', 'web_only', 'track_only'] });
if (suite) {
  const { deployment: d, node, client } = suite;
  const rooms = new RoomServiceClient(d.httpUrl, d.apiKey, d.apiSecret);
  let roomSeq = 0;
  const newRoom = (name: string) => `${name}-${++roomSeq}-${Date.now()}`;
  const publish = async (t: Test, room: string, identity: string, opts: Partial<PublisherOptions> = {}): Promise<Publisher> => {
    const p = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity, ...opts });
    t.teardown(() => p.stop());
    return p;
  };
  /** A user muting from their client: the server marks the track muted, the sender stops sending. */
  const mute = async (room: string, identity: string, p: Publisher, kind: 'audio' | 'video', muted: boolean) => {
    p.pause(kind, muted);
    await rooms.mutePublishedTrack(room, identity, (kind === 'audio' ? p.audioTrackSid : p.videoTrackSid)!, muted);
  };

  // The pion publisher sends its files' audio and video on one clock, so what arrives is in sync
  // and the output shows the egress's own error. (rtc-node's AudioSource sends audio 40-80 ms after
  // the video of the same instant: its own skew, measured at a plain receiver.)
  t.test('track composite: one audio and one video track → MP4 (H.264 720p30 + AAC), in sync', async (t) => {
    const room = newRoom('tc');
    const pub = await startPionPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: 'alice', video: 'h264' });
    t.teardown(() => pub.stop());
    const run = await runEgress(client, () =>
      client.startTrackCompositeEgress(room, new EncodedFileOutput({ filepath: 'tc/{room_name}-{publisher_identity}' }), { audioTrackId: pub.audioTrackSid, videoTrackId: pub.videoTrackSid }), { recordMs: SYNC_RECORD_MS });
    t.equal(run.started.request.case, 'trackComposite');
    const location = await checkComposite(t, run, { audio: 'aac', width: 1280, height: 720, fps: 30 });
    t.equal(run.final.fileResults[0]!.filename, `tc/${room}-alice.mp4`, 'placeholders of both passes');
    const sync = await avSync(location);
    t.comment(`A/V offsets (ms): ${sync.offsetsMs.join(' ')}; p50 ${sync.p50}, p95 ${sync.p95}, max ${sync.max}`);
    t.ok(sync.offsetsMs.length >= SYNC_RECORD_MS / 1000 - 2, `markers paired (${sync.offsetsMs.length})`);
    t.ok(sync.p95 <= 100, `A/V offset p95 ${sync.p95} ms ≤ 100 ms`);
  });

  t.test('track composite: an audio id in the video slot is refused, naming the field', async (t) => {
    const room = newRoom('tc-kind');
    const pub = await publish(t, room, 'alice');
    const started = await client.startTrackCompositeEgress(room, new EncodedFileOutput({ filepath: 'x' }), { videoTrackId: pub.audioTrackSid });
    const final = await waitForStatus(client, started.egressId, (s) => s >= EgressStatus.EGRESS_COMPLETE, 'ended');
    t.equal(final.status, EgressStatus.EGRESS_FAILED);
    t.equal(final.error, 'request has missing or invalid field: video_track_id');
    t.equal(final.errorCode, 400);
  });

  t.test('participant: a late video track, a mute mid-way, ends COMPLETE when the participant leaves', async (t) => {
    const room = newRoom('participant');
    const pub = await publish(t, room, 'bob', { video: false });
    let leftAt = 0;
    const run = await runEgress(client, () => client.startParticipantEgress(room, 'bob', { file: new EncodedFileOutput({ filepath: 'p/{publisher_identity}' }) }), {
      recordMs: 0,
      endsByItself: true,
      during: async () => {
        await sleep(2_000);
        await pub.publish('video'); // the camera arrives late
        await sleep(3_000);
        await mute(room, 'bob', pub, 'audio', true);
        await sleep(2_500);
        await mute(room, 'bob', pub, 'audio', false);
        await sleep(1_000);
        await mute(room, 'bob', pub, 'video', true);
        await sleep(2_000);
        await mute(room, 'bob', pub, 'video', false);
        await sleep(2_000);
        leftAt = Date.now();
        await pub.stop();
        return leftAt;
      },
    });
    t.equal(run.final.details, 'End reason: Source closed');
    const location = await checkComposite(t, run, { audio: 'aac', width: 1280, height: 720, fps: 30 });
    t.equal(run.final.fileResults[0]!.filename, 'p/bob.mp4');
    const beeps = await beepTimes(location);
    const seconds = (run.stopAt - run.activeAt) / 1000;
    t.ok(beeps.length <= Math.ceil(seconds) - 1 && beeps.length >= Math.floor(seconds) - 4, `the muted 2.5 s has no beeps (${beeps.length} beeps in ${seconds.toFixed(1)} s)`);
    t.ok(beeps.some((b) => b > seconds - 3), 'audio is back after the unmute');
    // Black until the camera arrives (~2 s), and while it is muted (2 s, less the mute's signalling).
    // Spells, not a total: on a loaded machine the file's video may begin after its audio.
    const { firstFrame, spells } = await blackSpells(location);
    t.comment(`video from ${firstFrame.toFixed(2)} s; black spells: ${spells.map((b) => `${b.start.toFixed(2)}–${b.end.toFixed(2)}`).join(', ')}`);
    const [before, muted, ...rest] = spells;
    t.ok(before && before.start - firstFrame < 0.1 && before.end - before.start >= 1, 'black from the first frame until the camera arrives');
    t.ok(muted && muted.end - muted.start >= 1 && muted.end - muted.start <= 3.5, 'black while the camera is muted');
    t.equal(rest.length, 0, 'and nowhere else');
  });

  t.test('participant: one who never publishes and leaves ends ABORTED', async (t) => {
    const room = newRoom('never');
    const pub = await publish(t, room, 'nopub', { audio: false, video: false });
    const started = await client.startParticipantEgress(room, 'nopub', { file: new EncodedFileOutput({ filepath: 'never/x' }) });
    await sleep(2_000);
    await pub.stop();
    const final = await waitForStatus(client, started.egressId, (s) => s >= EgressStatus.EGRESS_COMPLETE, 'ended');
    t.equal(final.status, EgressStatus.EGRESS_ABORTED);
    t.equal(final.error, 'Start signal not received');
    t.equal(final.errorCode, 412);
  });

  t.test('participant: screen share', async (t) => {
    const room = newRoom('screen');
    await publish(t, room, 'carol', { screenShare: true });
    await publish(t, room, 'carol-cam', {}); // another participant's camera is not taken
    const run = await runEgress(client, () => client.startParticipantEgress(room, 'carol', { file: new EncodedFileOutput({ filepath: 'screen/' }) }, { screenShare: true }), { recordMs: 6_000 });
    // A screen share is sent at a few frames a second (libwebrtc favours resolution for screen
    // content); the output still runs at 30 fps, repeating frames.
    await checkComposite(t, run, { audio: 'aac', width: 1280, height: 720, fps: 30, minDistinctPerSecond: 3 });
  });

  const TONES = [300, 500, 700];
  const mix = async (t: Test, mixing: AudioMixing, kinds: ('standard' | 'agent')[]) => {
    const room = newRoom(`mix-${mixing}`);
    const pubs: Publisher[] = [await publish(t, room, 'p0', { video: false, toneHz: TONES[0]!, kind: kinds[0]! })];
    const run = await runEgress(client, () => client.startRoomCompositeEgress(room, new EncodedFileOutput({ filepath: `mix/${mixing}` }), { audioOnly: true, audioMixing: mixing }), {
      recordMs: RECORD_MS,
      during: async () => {
        // Participants join during the recording; one leaves and comes back.
        await sleep(1_000);
        pubs.push(await publish(t, room, 'p1', { video: false, toneHz: TONES[1]!, kind: kinds[1]! }));
        await sleep(1_000);
        pubs.push(await publish(t, room, 'p2', { video: false, toneHz: TONES[2]!, kind: kinds[2]! }));
        await sleep(2_000);
        await pubs[1]!.stop();
        await sleep(1_500);
        pubs[1] = await publish(t, room, 'p1', { video: false, toneHz: TONES[1]!, kind: kinds[1]! });
      },
    });
    t.equal(run.started.request.case, 'roomComposite');
    const file = fileOf(t, run);
    t.match(file.filename, /\.ogg$/, 'audio-only with the default file type → OGG');
    const info = await probe(file.location);
    t.equal(info.streams.length, 1);
    t.equal(info.streams[0]?.codecName, 'opus');
    checkDuration(t, info.duration, run);
    const levels = await Promise.all(TONES.map(async (hz) => ({ hz, left: await toneLevel(file.location, hz, 'left'), right: await toneLevel(file.location, hz, 'right') })));
    t.comment(`tone levels (dB): ${levels.map((l) => `${l.hz} Hz L ${l.left} R ${l.right}`).join('; ')}`);
    return levels;
  };
  // A tone is present at its channel's level; on the other channel only the band-pass leakage of
  // the other publishers' tones remains, far below it.
  const PRESENT_DB = -35;
  const APART_DB = 15;

  t.test('audio-only room composite: every participant mixed (DEFAULT_MIXING)', async (t) => {
    const levels = await mix(t, AudioMixing.DEFAULT_MIXING, ['standard', 'standard', 'standard']);
    for (const l of levels) t.ok(l.left > PRESENT_DB && l.right > PRESENT_DB && Math.abs(l.left - l.right) < 3, `${l.hz} Hz on both channels`);
  });

  t.test('audio-only room composite: DUAL_CHANNEL_AGENT puts the agent left, everyone else right', async (t) => {
    const [agent, ...others] = await mix(t, AudioMixing.DUAL_CHANNEL_AGENT, ['agent', 'standard', 'standard']);
    t.ok(agent!.left > PRESENT_DB && agent!.right < agent!.left - APART_DB, `agent (${agent!.hz} Hz) on the left only`);
    for (const l of others) t.ok(l.right > PRESENT_DB && l.left < l.right - APART_DB, `${l.hz} Hz on the right only`);
  });

  t.test('audio-only room composite: DUAL_CHANNEL_ALTERNATE alternates left, right, left', async (t) => {
    const [first, second, third] = await mix(t, AudioMixing.DUAL_CHANNEL_ALTERNATE, ['standard', 'standard', 'standard']);
    t.ok(first!.left > PRESENT_DB && first!.right < first!.left - APART_DB, 'first track left');
    // The second participant leaves and comes back: its new track is the fourth added, so it is on the right again.
    t.ok(second!.right > PRESENT_DB && second!.left < second!.right - APART_DB, 'second track right');
    t.ok(third!.left > PRESENT_DB && third!.right < third!.left - APART_DB, 'third track left');
  });

  t.test('the room is deleted mid-recording: COMPLETE, with the file', async (t) => {
    const room = newRoom('deleted');
    await publish(t, room, 'kim', { video: false });
    let deletedAt = 0;
    const run = await runEgress(client, () => client.startRoomCompositeEgress(room, new EncodedFileOutput({ filepath: 'deleted/x' }), { audioOnly: true }), {
      recordMs: 0,
      endsByItself: true,
      during: async () => {
        await sleep(5_000);
        deletedAt = Date.now();
        await rooms.deleteRoom(room);
        return deletedAt;
      },
    });
    t.equal(run.final.details, 'End reason: Source closed');
    const file = fileOf(t, run);
    checkDuration(t, (await probe(file.location)).duration, run);
  });

  t.test('track → websocket: raw PCM at 48 kHz stereo s16 for the recorded time, and mute messages', async (t) => {
    const room = newRoom('ws');
    const pub = await publish(t, room, 'dave', { video: false });
    const ws = await startWsReceiver();
    t.teardown(() => ws.stop());
    const run = await runEgress(client, () => client.startTrackEgress(room, ws.url, pub.audioTrackSid!), {
      recordMs: RECORD_MS,
      during: async () => {
        await sleep(3_000);
        await mute(room, 'dave', pub, 'audio', true);
        await sleep(2_000);
        await mute(room, 'dave', pub, 'audio', false);
      },
    });
    t.equal(run.final.status, EgressStatus.EGRESS_COMPLETE, `COMPLETE (${run.final.error})`);
    await Promise.race([ws.closed, sleep(5_000)]);
    t.equal(ws.connections, 1);
    t.equal(ws.headers?.['content-type'], 'audio/x-raw', 'Content-Type header');
    const expected = ((run.stopAt - run.activeAt) / 1000) * 48_000 * 2 * 2;
    t.ok(Math.abs(ws.binaryBytes - expected) <= expected * 0.05, `${ws.binaryBytes} bytes ≈ ${Math.round(expected)} for the recorded time (silence included)`);
    t.same(ws.texts.map((m) => m.text), ['{"muted":true}', '{"muted":false}'], 'mute and unmute messages');
  });

  t.test('v2 StartEgress, media source: video by participant, audio routed LEFT/RIGHT by identity', async (t) => {
    const room = newRoom('media');
    await publish(t, room, 'erin', { toneHz: TONES[0]! });
    await publish(t, room, 'frank', { video: false, toneHz: TONES[1]! });
    const request = new StartEgressRequest({
      roomName: room,
      source: {
        case: 'media',
        value: new MediaSource({
          video: { case: 'participantVideo', value: new ParticipantVideo({ identity: 'erin' }) },
          audio: new AudioConfig({
            routes: [
              new AudioRoute({ match: { case: 'participantIdentity', value: 'erin' }, channel: AudioChannel.LEFT }),
              new AudioRoute({ match: { case: 'participantIdentity', value: 'frank' }, channel: AudioChannel.RIGHT }),
            ],
          }),
        }),
      },
      outputs: [new Output({ config: { case: 'file', value: new FileOutput({ filepath: 'media/{room_name}' }) } })],
    });
    const run = await runEgress(client, () => client.startEgress(request), { recordMs: RECORD_MS });
    t.equal(run.started.request.case, 'egress', 'stored as a v2 request');
    const location = await checkComposite(t, run, { audio: 'aac', width: 1280, height: 720, fps: 30 });
    const erinL = await toneLevel(location, TONES[0]!, 'left');
    const erinR = await toneLevel(location, TONES[0]!, 'right');
    const frankL = await toneLevel(location, TONES[1]!, 'left');
    const frankR = await toneLevel(location, TONES[1]!, 'right');
    t.comment(`erin L ${erinL} R ${erinR}; frank L ${frankL} R ${frankR}`);
    t.ok(erinL > PRESENT_DB && erinR < erinL - APART_DB, 'erin on the left');
    t.ok(frankR > PRESENT_DB && frankL < frankR - APART_DB, 'frank on the right');
  });

  t.test('v2 StartEgress, media source: audio by track id → MP3', async (t) => {
    const room = newRoom('media-mp3');
    const pub = await publish(t, room, 'gina', { video: false });
    const request = new StartEgressRequest({
      roomName: room,
      source: {
        case: 'media',
        value: new MediaSource({ audio: new AudioConfig({ routes: [new AudioRoute({ match: { case: 'trackId', value: pub.audioTrackSid! }, channel: AudioChannel.BOTH })] }) }),
      },
      outputs: [new Output({ config: { case: 'file', value: new FileOutput({ fileType: EncodedFileType.MP3, filepath: 'media/{room_name}' }) } })],
    });
    const run = await runEgress(client, () => client.startEgress(request), { recordMs: 8_000 });
    const file = fileOf(t, run);
    t.match(file.filename, /\.mp3$/);
    const info = await probe(file.location);
    t.equal(info.streams[0]?.codecName, 'mp3');
    checkDuration(t, info.duration, run);
    t.ok((await audioLevel(file.location)).meanDb > -50, 'audio is not silent');
  });

  t.test('a publisher that switches resolution mid-recording: the file stays valid at the output size', async (t) => {
    const room = newRoom('resize');
    const pub = await publish(t, room, 'hank', { audio: false, width: 640, height: 360 });
    const run = await runEgress(client, () => client.startTrackCompositeEgress(room, new EncodedFileOutput({ filepath: 'resize/x' }), { videoTrackId: pub.videoTrackSid }), {
      recordMs: 8_000,
      during: async () => {
        await sleep(3_000);
        pub.setResolution(480, 480);
      },
    });
    const file = fileOf(t, run);
    const info = await probe(file.location);
    const v = info.streams.find((s) => s.codecType === 'video');
    t.equal(v?.width, 1280);
    t.equal(v?.height, 720);
    t.equal(info.streams.length, 1, 'video only: no audio stream');
    checkDuration(t, info.duration, run);
    const changes = await videoChanges(file.location);
    t.ok(changes.distinctFrames > changes.frames / 4, `video changes (${changes.distinctFrames}/${changes.frames})`);
    t.match(node.log(), /video size changed/, 'the handler saw the new size');
  });
}
