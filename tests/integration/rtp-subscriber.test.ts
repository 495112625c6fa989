// The encoded-RTP subscriber (handler/src/source/rtp) against the pinned livekit-server: an rtc-node
// publisher's Opus, VP8 and H.264 tracks arrive as plain RTP with the negotiated payload type, sender
// reports come with an SDES CNAME, a PLI gets a key frame, and the track or its publisher going
// ends the subscription. Packets are parsed here by hand, not by werift, so the bytes handed out
// are what a gst udpsrc would get.
import '../rig/quiet-rtc.ts';
import net from 'node:net';
import t, { type Test } from 'tap';
import { RoomServiceClient } from 'livekit-server-sdk';
import { startLocalDeployment } from '../rig/deployment.ts';
import { disposeRtc, startPublisher, type Publisher, type PublisherOptions } from '../rig/publisher.ts';
import { recorderToken } from '../../handler/src/source/token.ts';
import { subscribeTrack, type RtpCodec, type RtpSubscription } from '../../handler/src/source/rtp/subscriber.ts';
import { EgressError } from '../../shared/src/errors.ts';
import { createLogger } from '../../shared/src/logging.ts';

const d = await startLocalDeployment();
t.teardown(async () => {
  await disposeRtc();
  await d.stop();
});
const log = createLogger({ level: 'warn', json: false });
const rooms = new RoomServiceClient(d.httpUrl, d.apiKey, d.apiSecret);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let roomCount = 0;

async function publish(t: Test, opts: Partial<PublisherOptions>): Promise<Publisher> {
  const room = `rtp-${++roomCount}-${Date.now()}`;
  const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: `pub-${roomCount}`, ...opts });
  t.teardown(() => pub.stop());
  return pub;
}

/** Subscribed, and its first RTP packet in (the codec is known then). */
async function subscribe(t: Test, pub: Publisher, trackId: string, timeoutMs = 10_000): Promise<{ sub: RtpSubscription; codec: RtpCodec; ms: number }> {
  const started = Date.now();
  const sub = await subscribeTrack({ wsUrl: d.wsUrl, token: await recorderToken(d.apiKey, d.apiSecret, pub.room.name!, `EG_rtp${roomCount}`), trackId, timeoutMs, log });
  t.teardown(() => sub.close());
  const codec = await sub.receiving;
  return { sub, codec, ms: Date.now() - started };
}

interface Rtp {
  at: number;
  pt: number;
  seq: number;
  ts: number;
  ssrc: number;
  marker: boolean;
  payload: Buffer;
}

/** RFC 3550 fixed header, CSRCs, one header extension, padding. */
function parseRtp(b: Buffer, at: number): Rtp {
  if (b[0]! >> 6 !== 2) throw new Error('not RTP version 2');
  let offset = 12 + (b[0]! & 0x0f) * 4;
  if (b[0]! & 0x10) offset += 4 + b.readUInt16BE(offset + 2) * 4;
  const end = b[0]! & 0x20 ? b.length - b[b.length - 1]! : b.length;
  return { at, pt: b[1]! & 0x7f, marker: !!(b[1]! & 0x80), seq: b.readUInt16BE(2), ts: b.readUInt32BE(4), ssrc: b.readUInt32BE(8), payload: b.subarray(offset, end) };
}

function record(sub: RtpSubscription) {
  const rtp: Rtp[] = [];
  const rtcp: { at: number; buf: Buffer }[] = [];
  sub.onRtp((b) => rtp.push(parseRtp(b, Date.now())));
  sub.onRtcp((buf) => rtcp.push({ at: Date.now(), buf }));
  return { rtp, rtcp };
}

/** Packets per second over the packets that arrived after `from`. */
function rate(rtp: Rtp[], from: number, to: number): number {
  return rtp.filter((p) => p.at >= from && p.at < to).length / ((to - from) / 1000);
}

/** Frames (marker bits) and packets per second of a 640x360 30 fps publisher (its encoder may run at 25). */
function checkRates(t: Test, what: string, rtp: Rtp[], from: number, to: number): void {
  const window = rtp.filter((p) => p.at >= from && p.at < to);
  const fps = window.filter((p) => p.marker).length / ((to - from) / 1000);
  const pps = window.length / ((to - from) / 1000);
  t.comment(`${what}: ${fps.toFixed(1)} frames/s, ${pps.toFixed(1)} packets/s`);
  t.ok(fps > 20 && fps < 35, `${what}: 25–30 frames/s (${fps.toFixed(1)})`);
  t.ok(pps >= fps, 'at least one packet per frame');
}

/** Sequence numbers step by one (16-bit), none repeated, from the first packet on. */
function gaps(rtp: Rtp[]): number {
  let n = 0;
  for (let i = 1; i < rtp.length; i++) if (((rtp[i]!.seq - rtp[i - 1]!.seq) & 0xffff) !== 1) n++;
  return n;
}

/** RFC 7741: S=1, partition 0, and the VP8 payload header's P bit clear. */
function vp8KeyframeStart(p: Buffer): boolean {
  let i = 0;
  const b0 = p[i++]!;
  if (b0 & 0x80) {
    const b1 = p[i++]!;
    if (b1 & 0x80) i += p[i]! & 0x80 ? 2 : 1;
    if (b1 & 0x40) i++;
    if (b1 & 0x30) i++;
  }
  return !!(b0 & 0x10) && (b0 & 0x07) === 0 && (p[i]! & 0x01) === 0;
}

/** The NAL unit types an H.264 RTP payload starts (RFC 6184: single NAL, STAP-A, FU-A start). */
function h264Nals(p: Buffer): number[] {
  const type = p[0]! & 0x1f;
  if (type === 24) {
    const out: number[] = [];
    for (let i = 1; i + 2 < p.length; i += 2 + p.readUInt16BE(i)) out.push(p[i + 2]! & 0x1f);
    return out;
  }
  if (type === 28) return p[1]! & 0x80 ? [p[1]! & 0x1f] : [];
  return [type];
}

/** An SR for `ssrc` then an SDES with its CNAME: what rtpbin needs to map RTP time to NTP. */
function parseCompound(b: Buffer): { srSsrc: number; rtpTs: number; ntpSec: number; sdesSsrc: number; cname: string; rest: number } {
  if (b[0]! >> 6 !== 2 || b[1] !== 200) throw new Error(`first packet is not an SR (PT ${b[1]})`);
  const srLen = (b.readUInt16BE(2) + 1) * 4;
  const sdes = b.subarray(srLen);
  if (sdes[1] !== 202 || (sdes[0]! & 0x1f) !== 1) throw new Error(`second packet is not a one-chunk SDES (PT ${sdes[1]})`);
  const sdesLen = (sdes.readUInt16BE(2) + 1) * 4;
  if (sdes[8] !== 1) throw new Error('first SDES item is not a CNAME');
  return {
    srSsrc: b.readUInt32BE(4),
    ntpSec: b.readUInt32BE(8),
    rtpTs: b.readUInt32BE(16),
    sdesSsrc: sdes.readUInt32BE(4),
    cname: sdes.subarray(10, 10 + sdes[9]!).toString(),
    rest: b.length - srLen - sdesLen,
  };
}

t.test('Opus: plain RTP with the negotiated PT on one SSRC, ~50 packets/s, SR + SDES', async (t) => {
  const pub = await publish(t, { audio: true, video: false });
  const { sub, codec, ms } = await subscribe(t, pub, pub.audioTrackSid!);
  t.comment(`subscribeTrack → first RTP: ${ms} ms; codec ${JSON.stringify(codec)}, ssrc ${sub.ssrc}`);
  t.match(sub.info, { trackId: pub.audioTrackSid, kind: 'audio', source: 'microphone', publisherIdentity: pub.room.localParticipant!.identity });
  t.match(codec, { mimeType: 'audio/opus', clockRate: 48000, channels: 2 });
  // LiveKit's subscriber offer lists Opus at 111 and RED at 63; the answer takes Opus only.
  t.equal(codec.payloadType, 111, 'the offer\'s Opus PT, not RED');
  t.ok(sub.ssrc > 0, 'SSRC known at resolve');

  const start = Date.now();
  const { rtp, rtcp } = record(sub);
  await sleep(6_000);
  const end = Date.now();
  t.ok(rtp.length > 0, 'RTP arrives');
  t.same([...new Set(rtp.map((p) => p.pt))], [codec.payloadType], 'every packet has the negotiated PT');
  t.same([...new Set(rtp.map((p) => p.ssrc))], [sub.ssrc], 'one stable SSRC');
  t.ok(rtp.every((p) => p.payload.length > 0), 'no empty (padding-only) packets');
  t.equal(gaps(rtp), 0, 'consecutive sequence numbers on loopback');
  const pps = rate(rtp, start + 1000, end);
  t.comment(`audio: ${pps.toFixed(1)} packets/s`);
  t.ok(pps > 45 && pps < 55, `20 ms Opus frames: ~50 packets/s (${pps.toFixed(1)})`);

  t.ok(rtcp.length >= 1, `at least one SR + SDES within 6 s (${rtcp.length})`);
  const first = rtcp[0];
  if (first) {
    t.comment(`first SR ${first.at - start} ms after resolve; ${rtcp.length} in 6 s`);
    const c = parseCompound(first.buf);
    t.equal(c.srSsrc, sub.ssrc, 'the SR is for the track\'s SSRC');
    t.equal(c.sdesSsrc, sub.ssrc, 'the SDES chunk names the same SSRC');
    t.ok(c.cname.length > 0, `CNAME ${c.cname}`);
    t.equal(c.rest, 0, 'nothing after the SDES');
    t.ok(Math.abs(c.ntpSec - 2_208_988_800 - Date.now() / 1000) < 60, 'SR NTP time is about now');
    // The SR maps the RTP timestamps this subscriber gets (the SFU's munged ones), not the publisher's.
    const near = rtp.reduce((a, p) => (Math.abs(p.at - first.at) < Math.abs(a.at - first.at) ? p : a));
    const diff = ((c.rtpTs - near.ts) | 0) / 48_000;
    t.ok(Math.abs(diff) < 1, `SR RTP time within 1 s of the packets' (${diff.toFixed(3)} s)`);
  }
});

t.test('Opus: muting the track (RoomService) reaches onMuted', async (t) => {
  const pub = await publish(t, { audio: true, video: false });
  const { sub } = await subscribe(t, pub, pub.audioTrackSid!);
  const seen: boolean[] = [];
  sub.onMuted((m) => seen.push(m));
  const identity = pub.room.localParticipant!.identity;
  await rooms.mutePublishedTrack(pub.room.name!, identity, pub.audioTrackSid!, true);
  const deadline = Date.now() + 5_000;
  while (!seen.includes(true) && Date.now() < deadline) await sleep(50);
  t.same(seen, [true], 'muted');
  // The publisher confirms the server's mute itself; unmuting before its confirmation came makes
  // the server flap (updates muted, unmuted, muted, unmuted seen), so let it settle first.
  await sleep(1_000);
  await rooms.mutePublishedTrack(pub.room.name!, identity, pub.audioTrackSid!, false);
  await sleep(1_500);
  t.equal(seen.at(-1), false, `then unmuted (${seen.join(' → ')})`);
  t.ok(seen.every((m, i) => i === 0 || m !== seen[i - 1]), 'each change reported once');
});

t.test('VP8: starts on a key frame, and a PLI gets a new one', async (t) => {
  const pub = await publish(t, { audio: false, video: 'vp8' });
  const { sub, codec, ms } = await subscribe(t, pub, pub.videoTrackSid!);
  t.comment(`subscribeTrack → first RTP: ${ms} ms; codec ${JSON.stringify(codec)}`);
  t.match(sub.info, { kind: 'video', mimeType: 'video/vp8', source: 'camera', width: 640, height: 360 });
  t.match(codec, { mimeType: 'video/vp8', clockRate: 90000 });
  const start = Date.now();
  const { rtp } = record(sub);
  await sleep(4_000);
  const keyframes = () => rtp.filter((p) => vp8KeyframeStart(p.payload));
  t.ok(rtp[0] && vp8KeyframeStart(rtp[0].payload), 'the first packet handed out starts a key frame');
  const baseline = keyframes().filter((p) => p.at > start + 1000);
  // Without this, the key frame after the PLI could be one the encoder would have sent anyway.
  t.equal(baseline.length, 0, 'no key frame for the 3 s before the request');

  const askedAt = Date.now();
  sub.requestKeyframe();
  await sleep(1_500);
  const answered = keyframes().find((p) => p.at >= askedAt);
  t.ok(answered, 'a key frame follows the PLI');
  if (answered) t.comment(`key frame ${answered.at - askedAt} ms after the PLI`);

  t.same([...new Set(rtp.map((p) => p.pt))], [codec.payloadType], 'every packet has the negotiated PT');
  t.same([...new Set(rtp.map((p) => p.ssrc))], [sub.ssrc], 'one stable SSRC');
  t.equal(gaps(rtp), 0, 'consecutive sequence numbers (padding-only probes are not handed out, so none were sent)');
  checkRates(t, 'VP8', rtp, start + 1000, Date.now());
});

t.test('H.264: arrives with the negotiated H.264 PT, starting with SPS/IDR', async (t) => {
  const pub = await publish(t, { audio: false, video: 'h264' });
  const { sub, codec, ms } = await subscribe(t, pub, pub.videoTrackSid!);
  t.comment(`subscribeTrack → first RTP: ${ms} ms; codec ${JSON.stringify(codec)}`);
  t.match(codec, { mimeType: 'video/h264', clockRate: 90000, fmtp: /profile-level-id=/ });
  t.ok(codec.payloadType >= 96 && codec.payloadType <= 127, 'a dynamic PT');
  const start = Date.now();
  const { rtp } = record(sub);
  await sleep(3_000);
  t.ok(rtp.length > 0, 'RTP arrives');
  t.same([...new Set(rtp.map((p) => p.pt))], [codec.payloadType], 'every packet has the negotiated PT');
  t.same([...new Set(rtp.map((p) => p.ssrc))], [sub.ssrc], 'one stable SSRC');
  const nals = rtp.slice(0, 20).flatMap((p) => h264Nals(p.payload));
  t.comment(`first NAL types: ${nals.slice(0, 10).join(' ')}; all packets: ${[...new Set(rtp.map((p) => p.payload[0]! & 0x1f))].join(' ')}`);
  t.ok(nals.includes(7) && nals.includes(5), 'SPS and an IDR slice at the start');
  checkRates(t, 'H.264', rtp, start + 1000, Date.now());
});

/** A TCP relay to livekit-server's port whose connections the test can cut, as a network blip would. */
async function relay(target: URL): Promise<{ url: string; connections: () => number; cut: () => void; close: () => void }> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((client) => {
    connections++;
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined).on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    connections: () => connections,
    cut: () => sockets.forEach((s) => s.destroy()),
    close: () => {
      sockets.forEach((s) => s.destroy());
      server.close();
    },
  };
}

t.test('the signal connection cut mid-way: resumed, and the media never stops', async (t) => {
  const pub = await publish(t, { audio: true, video: false });
  const proxy = await relay(new URL(d.wsUrl.replace(/^ws/, 'http')));
  t.teardown(() => proxy.close());
  const sub = await subscribeTrack({ wsUrl: proxy.url, token: await recorderToken(d.apiKey, d.apiSecret, pub.room.name!, `EG_rtp${roomCount}`), trackId: pub.audioTrackSid!, timeoutMs: 10_000, log });
  t.teardown(() => sub.close());
  await sub.receiving;
  const { rtp } = record(sub);
  let ended: unknown;
  void sub.ended.then((e) => (ended = e));
  await sleep(1000);
  const cutAt = Date.now();
  proxy.cut();
  await sleep(4000);
  t.ok(proxy.connections() >= 2, `a new signal connection was opened (${proxy.connections()} in all)`);
  t.equal(ended, undefined, 'the subscription did not end');
  t.ok(rate(rtp, cutAt, Date.now()) > 45, `the audio went on at ${rate(rtp, cutAt, Date.now()).toFixed(1)} packets/s`);
  // The resumed connection is the one that carries the session now: the track going still ends it.
  await pub.unpublish('audio');
  const after = await Promise.race([sub.ended, sleep(5_000).then(() => 'still running')]);
  t.same(after, { reason: 'Source closed' }, 'and it still hears the room');
});

t.test('the track unpublished: ended says Source closed', async (t) => {
  const pub = await publish(t, { audio: true, video: 'vp8' });
  const { sub } = await subscribe(t, pub, pub.audioTrackSid!);
  let done = false;
  void sub.ended.then(() => (done = true));
  await sleep(500);
  t.notOk(done, 'not ended while the track is there');
  const at = Date.now();
  await pub.unpublish('audio');
  const ended = await Promise.race([sub.ended, sleep(5_000).then(() => 'still running')]);
  t.same(ended, { reason: 'Source closed' });
  t.comment(`ended ${Date.now() - at} ms after the unpublish`);
});

t.test('the publisher leaves: ended says Source closed', async (t) => {
  const pub = await publish(t, { audio: false, video: 'vp8' });
  const { sub } = await subscribe(t, pub, pub.videoTrackSid!);
  const at = Date.now();
  await pub.stop();
  const ended = await Promise.race([sub.ended, sleep(5_000).then(() => 'still running')]);
  t.same(ended, { reason: 'Source closed' });
  t.comment(`ended ${Date.now() - at} ms after the publisher left`);
  await sub.close();
  await sub.close();
  t.pass('close() twice');
});

t.test('a track that does not exist: trackNotFound after the timeout', async (t) => {
  const pub = await publish(t, { audio: true, video: false });
  const started = Date.now();
  const err = await subscribe(t, pub, 'TR_doesnotexist', 1_500).then(
    () => undefined,
    (e: unknown) => e,
  );
  const took = Date.now() - started;
  t.ok(err instanceof EgressError, 'an EgressError');
  t.match(err, { code: 'not_found', message: 'track TR_doesnotexist not found' });
  t.ok(took >= 1_500 && took < 4_000, `after the 1.5 s timeout (${took} ms)`);
});

t.test('a refused token: the server\'s reason, without the token', async (t) => {
  const token = await recorderToken(d.apiKey, 'not-the-secret-not-the-secret-not-the', 'rtp-refused', 'EG_refused');
  const err = await subscribeTrack({ wsUrl: d.wsUrl, token, trackId: 'TR_x', timeoutMs: 1_000, log }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.match(err, { code: 'unavailable', message: /^could not establish signal connection: 401 invalid token/ });
  t.notOk(String((err as Error).message).includes(token), 'the token is not quoted');
});
