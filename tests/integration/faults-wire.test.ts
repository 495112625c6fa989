// Garbage on every Redis channel the node listens on, with a job running: random bytes, frames cut
// short, frames of the wrong kind, oversized payloads, and well-formed psrpc frames carrying requests
// with absurd values (fast-check generates them from the messages' own field lists). The node must
// drop what it cannot use, keep the running job going, and take the next real job.
import '../rig/quiet-rtc.ts';
import t from 'tap';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { DirectFileOutput, EgressStatus, StopEgressRequest, UpdateStreamRequest } from '@livekit/protocol';
import { EgressClient } from 'livekit-server-sdk';
import { encodeFrame, type FrameKind } from '../../shared/src/psrpc/frame.ts';
import { ClaimRequest, ClaimResponse, Request, Response } from '../../shared/src/proto/internal.ts';
import { ListActiveEgressRequest, StartEgressRequest } from '../../shared/src/proto/rpc.ts';
import { probe } from '../rig/probe.ts';
import { disposeRtc, startPublisher } from '../rig/publisher.ts';
import { startEgressNode } from '../support/egress-node.ts';
import { egressInfo, waitForStatus } from '../support/egress-run.ts';
import { arbitraryMessage } from '../support/proto-arbitrary.ts';
import { suiteDeployment } from '../support/suite.ts';

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const FRAMES_PER_CHANNEL = Number(process.env.FUZZ_RUNS ?? 150);

const { deployment: d } = await suiteDeployment(t, { needsWebhooks: false });
const client = new EgressClient(d.httpUrl, d.apiKey, d.apiSecret);
const [host, port] = d.redis.address.split(':');
const redis = new Redis({ host, port: Number(port), db: d.redis.db, password: d.redis.password || undefined, username: d.redis.username || undefined });
t.teardown(async () => {
  redis.disconnect();
  await disposeRtc();
});

const info = (id: string) => egressInfo(client, id);
/** Waits for `id`'s status to satisfy `done`. */
const until = (id: string, done: (s: EgressStatus) => boolean, what: string, ms?: number) => waitForStatus(client, id, done, `${id} ${what}`, ms);

/** Requests of every kind the node's handlers decode, generated with absurd values. */
const innerRequest = fc.oneof(
  arbitraryMessage(StartEgressRequest, 4),
  arbitraryMessage(StopEgressRequest, 2),
  arbitraryMessage(UpdateStreamRequest, 2),
  arbitraryMessage(ListActiveEgressRequest, 2),
);

/** A psrpc frame of `kind`, well-formed, with generated fields (a Request's payload is one of the above). */
function wellFormed(kind: FrameKind): fc.Arbitrary<Uint8Array> {
  switch (kind) {
    case 'Request':
      return fc.tuple(arbitraryMessage(Request, 2), innerRequest).map(([r, inner]) => {
        r.rawRequest = inner.toBinary();
        return encodeFrame('Request', r);
      });
    case 'Response':
      return arbitraryMessage(Response, 2).map((m) => encodeFrame('Response', m));
    case 'ClaimRequest':
      return arbitraryMessage(ClaimRequest, 2).map((m) => encodeFrame('ClaimRequest', m));
    case 'ClaimResponse':
      return arbitraryMessage(ClaimResponse, 2).map((m) => encodeFrame('ClaimResponse', m));
  }
}

const KINDS: FrameKind[] = ['Request', 'Response', 'ClaimRequest', 'ClaimResponse'];
const garbage: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 512 }) },
  // Any kind on any channel: a wrong kind must be dropped, never acted on.
  { weight: 4, arbitrary: fc.constantFrom(...KINDS).chain(wellFormed) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...KINDS).chain(wellFormed), fc.double({ min: 0, max: 1, noNaN: true })).map(([f, cut]) => f.slice(0, Math.floor(f.length * cut))) },
  { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
);
/** A few payloads far over any real frame. */
const OVERSIZED = [Buffer.alloc(8 * 1024 * 1024, 0xff), Buffer.concat([Buffer.from(encodeFrame('Request', new Request({ requestId: 'REQ_x' }))), Buffer.alloc(4 * 1024 * 1024)])];

t.test(`garbage on every channel the node listens on (seed ${SEED}): the running job and the node carry on`, async (t) => {
  const before = new Set(await redis.pubsub('CHANNELS', '*') as string[]);
  const node = await startEgressNode(d);
  t.teardown(() => node.stop());
  const room = `wire-${Date.now()}`;
  const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: 'wire-pub', audio: true, video: false });
  t.teardown(() => pub.stop());
  const running = (await client.startTrackEgress(room, new DirectFileOutput({ filepath: 'wire/{track_id}' }), pub.audioTrackSid!)).egressId;
  await until(running, (s) => s === EgressStatus.EGRESS_ACTIVE, 'ACTIVE');

  // Ours: what appeared with the node: its requests, its job's topics, its IOInfo client's replies
  // (livekit-server's own, for the room, are not this test's to flood).
  const ours = /^(EgressInternal|EgressHandler)\||^IOInfo\|CLI_/;
  const channels = ((await redis.pubsub('CHANNELS', '*')) as string[]).filter((c) => !before.has(c) && ours.test(c));
  t.ok(channels.some((c) => c.includes('StartEgress')), `the node's channels: ${channels.join(', ')}`);
  t.ok(channels.some((c) => c.includes(running)), 'including the running job\'s own topic');
  let sent = 0;
  for (const channel of channels) {
    const frames = fc.sample(garbage, { numRuns: FRAMES_PER_CHANNEL, seed: SEED + sent });
    for (const f of [...frames, ...OVERSIZED]) {
      await redis.publish(channel, Buffer.from(f));
      sent++;
    }
  }
  t.ok(sent > channels.length * FRAMES_PER_CHANNEL, `${sent} frames sent`);
  await new Promise((r) => setTimeout(r, 2000));

  t.equal(node.process.exitCode, null, 'the node is alive');
  t.equal((await info(running))?.status, EgressStatus.EGRESS_ACTIVE, 'the running job is still ACTIVE');
  const next = (await client.startTrackEgress(room, new DirectFileOutput({ filepath: 'wire/next-{track_id}' }), pub.audioTrackSid!)).egressId;
  await until(next, (s) => s === EgressStatus.EGRESS_ACTIVE, 'ACTIVE');
  await new Promise((r) => setTimeout(r, 2000));
  for (const id of [running, next]) await client.stopEgress(id);
  for (const id of [running, next]) {
    const done = await until(id, (s) => s >= EgressStatus.EGRESS_COMPLETE, 'to end');
    t.equal(done.status, EgressStatus.EGRESS_COMPLETE, `${id} COMPLETE (${done.error})`);
    t.ok((await probe(done.fileResults[0]!.location)).duration > 1.5, 'and its recording plays');
  }
  t.notMatch(node.log(), /uncaught|unhandled/i, 'nothing escaped to the last line of defence');
});
