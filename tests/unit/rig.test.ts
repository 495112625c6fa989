// Self-test of the test rig (tests/rig): real redis-server + livekit-server + rtc-node
// publisher and subscriber, and the ffmpeg-based output checkers on generated media.
import '../rig/quiet-rtc.ts';
import t from 'tap';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AudioStream, Room, RoomEvent, TrackKind, VideoStream, type RemoteTrack } from '@livekit/rtc-node';
import { parse } from 'yaml';
import {
  loadDeployment,
  noFlags,
  parseDeployment,
  startLocalDeployment,
  writeDeploymentFile,
  type Deployment,
} from '../rig/deployment.ts';
import { DEFAULT_API_KEY, DEFAULT_API_SECRET } from '../rig/livekit.ts';
import { freePort, freeUdpPort } from '../rig/ports.ts';
import { audioLevel, beepTimes, flashTimes, isSilent, probe, videoChanges } from '../rig/probe.ts';
import { disposeRtc, mintToken, startPublisher } from '../rig/publisher.ts';
import { startWebhookReceiver } from '../rig/webhooks.ts';

t.teardown(disposeRtc);

const tmp = mkdtempSync(join(tmpdir(), 'rig-test-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

t.test('freePort / freeUdpPort', async (t) => {
  for (const port of [await freePort(), await freeUdpPort()]) {
    t.ok(port > 1024 && port < 65536, `port ${port}`);
  }
});

t.test('livekit-server + publisher → subscriber', async (t) => {
  const webhooks = await startWebhookReceiver(DEFAULT_API_KEY, DEFAULT_API_SECRET);
  t.teardown(() => webhooks.stop());
  const d = await startLocalDeployment({ webhookUrl: webhooks.url });
  t.teardown(() => d.stop());

  const config = parse(readFileSync(d.livekitConfigPath, 'utf8')) as { bind_addresses: string[]; rtc: Record<string, unknown> };
  t.same(config.bind_addresses, ['127.0.0.1'], 'server binds loopback only');
  t.match(config.rtc, { node_ip: '127.0.0.1', use_external_ip: false, enable_loopback_candidate: true, stun_servers: ['127.0.0.1:3478'] });
  t.match(d.wsUrl, /^ws:\/\/127\.0\.0\.1:\d+$/);
  t.equal((await fetch(`${d.httpUrl}/`)).status, 200);

  const room = 'rig-self-test';
  const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: 'pub', audio: true, video: 'vp8' });
  t.teardown(() => pub.stop());
  t.match(pub.audioTrackSid, /^TR_/, 'audio track sid known on resolve');
  t.match(pub.videoTrackSid, /^TR_/, 'video track sid known on resolve');
  t.ok(Math.abs(pub.publishedAt - Date.now()) < 5000, 'publishedAt is wall-clock ms');

  const sub = new Room();
  const counts = { audio: 0, beep: 0, video: 0, flash: 0, moving: 0 };
  const readers: Promise<void>[] = [];
  const subscribed = new Set<string>();
  sub.on(RoomEvent.TrackSubscribed, (track: RemoteTrack) => {
    subscribed.add(track.sid ?? '');
    if (track.kind === TrackKind.KIND_AUDIO) {
      readers.push(
        (async () => {
          for await (const frame of new AudioStream(track, 48000, 1)) {
            counts.audio++;
            // the 220 Hz tone peaks at 3277; only beep frames go well above it
            if (frame.data.some((s) => Math.abs(s) > 6000)) counts.beep++;
          }
        })(),
      );
    } else if (track.kind === TrackKind.KIND_VIDEO) {
      readers.push(
        (async () => {
          let previous: Uint8Array | undefined;
          for await (const { frame } of new VideoStream(track)) {
            counts.video++;
            const luma = frame.data.subarray(0, frame.width * frame.height);
            let sum = 0;
            for (let i = 0; i < luma.length; i += 7) sum += luma[i]!;
            if (sum / Math.ceil(luma.length / 7) > 200) counts.flash++;
            if (previous && Buffer.compare(previous, luma) !== 0) counts.moving++;
            previous = Uint8Array.from(luma);
          }
        })(),
      );
    }
  });
  await sub.connect(d.wsUrl, await mintToken({ apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: 'sub', canPublish: false }), {
    autoSubscribe: true,
    dynacast: false,
  });

  await new Promise((r) => setTimeout(r, 3500));
  t.ok(subscribed.has(pub.audioTrackSid!) && subscribed.has(pub.videoTrackSid!), 'subscriber got both tracks');
  t.ok(counts.audio >= 200, `audio frames received (${counts.audio})`);
  t.ok(counts.beep >= 10, `beep frames received (${counts.beep})`);
  t.ok(counts.video >= 30, `video frames received (${counts.video})`);
  t.ok(counts.flash >= 2, `white flash frames received (${counts.flash})`);
  t.ok(counts.moving >= counts.video / 2, `consecutive frames differ (${counts.moving}/${counts.video})`);

  const unpublished = new Promise<string>((resolve) => sub.once(RoomEvent.TrackUnpublished, (p) => resolve(p.sid ?? '')));
  await pub.unpublish('video');
  t.equal(await unpublished, pub.videoTrackSid, 'unpublish reaches the subscriber');

  const joined = await webhooks.waitFor((e) => e.event === 'participant_joined' && e.participant?.identity === 'pub', 10_000);
  t.equal(joined.room?.name, room, 'signed participant_joined webhook');
  await webhooks.waitFor((e) => e.event === 'track_published' && e.track?.sid === pub.audioTrackSid, 10_000);
  t.same(webhooks.rejected, [], 'no webhook failed validation');

  const forged = await fetch(webhooks.url, { method: 'POST', body: '{"event":"room_started"}', headers: { Authorization: 'bogus' } });
  t.equal(forged.status, 401, 'unsigned webhook rejected');

  await sub.disconnect();
  await pub.stop();
  await Promise.all(readers);
});

t.test('deployment file', async (t) => {
  const d: Deployment = {
    wsUrl: 'ws://127.0.0.1:7880',
    httpUrl: 'http://127.0.0.1:7880',
    apiKey: 'k',
    apiSecret: 's',
    redis: { address: '127.0.0.1:6379', username: 'u', password: 'p', db: 2 },
    flags: { ...noFlags(), track_only: true, short: true },
  };
  const file = join(tmp, 'deployment.yaml');
  writeDeploymentFile(d, file);
  t.same(loadDeployment(file), d, 'round trip');

  const minimal = parseDeployment('ws_url: wss://lk.example.com\napi_key: k\napi_secret: s\nredis: { address: "r:6379" }\n');
  t.equal(minimal.httpUrl, 'https://lk.example.com');
  t.same(minimal.redis, { address: 'r:6379', username: '', password: '', db: 0 });
  t.same(minimal.flags, noFlags(), 'flags default to false');

  t.throws(() => parseDeployment('ws_url: ws://x\napi_key: k\napi_secret: s\nredis: { address: a }\ntrack_onyl: true\n'), /unknown key "track_onyl"/);
  t.throws(() => parseDeployment('ws_url: ws://x\napi_key: k\napi_secret: s\nredis: { address: a }\nshort: yes please\n'), /short must be true or false/);
  t.throws(() => parseDeployment('ws_url: ws://x\napi_key: k\n'), /redis/);
});

t.test('probe and media checkers', async (t) => {
  const ffmpeg = (...args: string[]) => execa('ffmpeg', ['-v', 'error', '-nostdin', '-y', ...args]);
  // The publisher's markers: a white flash and a 1 kHz beep during the first 100 ms of
  // every second, here with the audio 250 ms late.
  const av = join(tmp, 'av.mp4');
  await ffmpeg(
    '-f', 'lavfi', '-i', "testsrc2=s=320x180:r=30:d=4,drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='lt(mod(t,1),0.1)'",
    '-f', 'lavfi', '-i', "aevalsrc='0.1*sin(2*PI*220*t)+0.25*sin(2*PI*1000*t)*lt(mod(t,1),0.1)':s=48000:d=3.75",
    '-af', 'adelay=250:all=1',
    '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-c:a', 'aac', av,
  );
  const avTs = join(tmp, 'av.ts');
  await ffmpeg('-i', av, '-c', 'copy', avTs);
  const frozenSilent = join(tmp, 'frozen-silent.webm');
  await ffmpeg(
    '-f', 'lavfi', '-i', 'smptebars=s=320x180:r=30:d=3',
    '-f', 'lavfi', '-i', 'anullsrc=r=48000:cl=stereo',
    '-t', '3', '-c:v', 'libvpx', '-deadline', 'realtime', '-c:a', 'libopus', '-f', 'webm', frozenSilent,
  );
  const tone = join(tmp, 'tone.ogg');
  await ffmpeg('-f', 'lavfi', '-i', 'sine=f=1000:r=48000:d=3', '-c:a', 'libopus', tone);

  const near = (actual: number[], expected: number[], tol: number) =>
    actual.length === expected.length && actual.every((v, i) => Math.abs(v - expected[i]!) <= tol);

  const info = await probe(av);
  t.match(info, { formatName: /mp4/, streams: [{ codecType: 'video', codecName: 'h264', width: 320, height: 180, frameRate: 30 }, { codecType: 'audio', codecName: 'aac', sampleRate: 48000, channels: 1 }] });
  t.ok(Math.abs(info.duration - 4) < 0.1, `duration ${info.duration}`);
  t.ok(info.size > 0);
  const webm = await probe(frozenSilent);
  t.match(webm, { formatName: /webm/, streams: [{ codecName: 'vp8' }, { codecName: 'opus', channels: 2 }] });
  const es = join(tmp, 'av.h264');
  await ffmpeg('-i', av, '-map', '0:v', '-c', 'copy', '-bsf:v', 'h264_mp4toannexb', es);
  t.ok(Math.abs((await probe(es)).duration - 4) < 0.1, 'duration from packets when the container has none');
  await t.rejects(probe(join(tmp, 'missing.mp4')), /No such file/);

  const level = await audioLevel(av);
  t.ok(level.meanDb > -30 && level.meanDb < -10 && level.maxDb <= 0, `tone level ${JSON.stringify(level)}`);
  t.notOk(await isSilent(av), 'tone is not silent');
  t.ok(await isSilent(frozenSilent), 'anullsrc is silent');

  const moving = await videoChanges(av);
  t.equal(moving.frames, 120);
  t.ok(moving.distinctFrames > 100, `testsrc2 changes (${moving.distinctFrames}/${moving.frames})`);
  const frozen = await videoChanges(frozenSilent);
  t.same(frozen, { frames: 90, distinctFrames: 1, perSecond: [1] }, 'smptebars is frozen');
  // A grid tile's marker bar (40 px, 8 px a frame, on a 1280x720 frame): a small part of the
  // picture moving is motion, though the frame's mean hardly changes.
  const tile = join(tmp, 'tile.mp4');
  await ffmpeg('-f', 'lavfi', '-i', "color=c=0x202020:s=1280x720:r=30:d=2[bg];color=c=0xb4b4b4:s=40x360:r=30[bar];[bg][bar]overlay=x='mod(n*8,640)':y=180:eval=frame:shortest=1", '-c:v', 'libx264', '-pix_fmt', 'yuv420p', tile);
  const bar = await videoChanges(tile);
  t.same(bar, { frames: 60, distinctFrames: 60, perSecond: [30, 30] }, `a small bar moving counts on every frame (${bar.distinctFrames}/${bar.frames})`);
  await t.rejects(videoChanges(tone), /matches no streams/, 'audio-only file has no video to check');

  const flashes = await flashTimes(av);
  t.ok(near(flashes, [0, 1, 2, 3], 0.001), `flashes ${flashes}`);
  const beeps = await beepTimes(av);
  t.ok(near(beeps, [0.25, 1.25, 2.25, 3.25], 0.01), `beeps ${beeps}`);
  // MPEG-TS starts at 1.4 s and keeps AAC's priming samples: times stay file-relative
  t.ok(near(await flashTimes(avTs), [0, 1, 2, 3], 0.001), 'flashes in MPEG-TS');
  t.ok(near(await beepTimes(avTs), [0.25, 1.25, 2.25, 3.25], 0.03), 'beeps in MPEG-TS');
  t.same(await flashTimes(frozenSilent), [], 'no flashes in smptebars');
  t.same(await beepTimes(frozenSilent), [], 'no beeps in silence');
  t.same(await beepTimes(tone), [], 'a continuous 1 kHz tone is not a beep');
});
