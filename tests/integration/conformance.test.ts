// The wire contract's edge cases against a real livekit-server and Redis: duplicates, a missing
// track, and garbage on the channels only egress nodes subscribe to.
import '../rig/quiet-rtc.ts';
import t from 'tap';
import { Redis } from 'ioredis';
import { DirectFileOutput, EgressInfo, EgressStatus, TrackEgressRequest } from '@livekit/protocol';
import { EgressClient } from 'livekit-server-sdk';
import { encodeFrame } from '../../shared/src/psrpc/frame.ts';
import { ClaimRequest } from '../../shared/src/proto/internal.ts';
import { ListActiveEgressRequest, ListActiveEgressResponse, StartEgressRequest } from '../../shared/src/proto/rpc.ts';
import { EgressError } from '../../shared/src/errors.ts';
import { startPublisher, disposeRtc } from '../rig/publisher.ts';
import { suiteDeployment } from '../support/suite.ts';
import { startEgressNode } from '../support/egress-node.ts';
import { waitFor } from '../support/wait.ts';
import { egressInternalClient, START_SELECTION } from '../support/psrpc.ts';

const { deployment: d } = await suiteDeployment(t, { needsWebhooks: false });
const node = await startEgressNode(d, { subscribe_timeout: '3s' });
const client = new EgressClient(d.httpUrl, d.apiKey, d.apiSecret);
const psrpc = await egressInternalClient(d);
const internal = psrpc.rpc;
t.teardown(async () => {
  await psrpc.close();
  await node.stop();
  await disposeRtc();
});

const getInfo = async (egressId: string) => (await client.listEgress({ egressId }))[0];

t.test('a duplicate StartEgress for a running egress id is answered already_exists', async (t) => {
  const room = `dup-${Date.now()}`;
  const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: 'dup-pub', audio: true, video: false });
  t.teardown(() => pub.stop());
  const started = await client.startTrackEgress(room, new DirectFileOutput({ filepath: 'dup/{track_id}' }), pub.audioTrackSid!);

  // Sent as livekit-server's retry would send it: same egress id, a new request.
  const retry = new StartEgressRequest({
    egressId: started.egressId,
    roomId: started.roomId,
    request: { case: 'track', value: new TrackEgressRequest({ roomName: room, trackId: pub.audioTrackSid!, output: { case: 'file', value: new DirectFileOutput({ filepath: 'dup/{track_id}' }) } }) },
  });
  const err = await internal.call('StartEgress', '', retry, EgressInfo, { timeoutMs: 10_000, selection: START_SELECTION }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof EgressError, 'the retry is refused');
  t.equal((err as EgressError).code, 'already_exists');
  t.equal((err as EgressError).message, 'egress already exists');

  await waitFor('ACTIVE', async () => ((await getInfo(started.egressId))?.status === EgressStatus.EGRESS_ACTIVE ? true : undefined), 20_000);
  await client.stopEgress(started.egressId);
  const final = await waitFor('end', async () => {
    const i = await getInfo(started.egressId);
    return i && i.status >= EgressStatus.EGRESS_COMPLETE ? i : undefined;
  });
  t.equal(final.status, EgressStatus.EGRESS_COMPLETE, 'the original egress is untouched by the duplicate');
});

t.test('a track that is never published ends FAILED with a clear error', async (t) => {
  const room = `missing-${Date.now()}`;
  const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: 'missing-pub', audio: true, video: false });
  t.teardown(() => pub.stop());
  const started = await client.startTrackEgress(room, new DirectFileOutput({ filepath: 'missing/{track_id}' }), 'TR_doesnotexist');
  t.equal(started.status, EgressStatus.EGRESS_STARTING);
  const final = await waitFor('FAILED', async () => {
    const i = await getInfo(started.egressId);
    return i && i.status >= EgressStatus.EGRESS_COMPLETE ? i : undefined;
  }, 20_000);
  t.equal(final.status, EgressStatus.EGRESS_FAILED);
  t.equal(final.error, 'track TR_doesnotexist not found');
  t.equal(final.errorCode, 404);
  t.ok(final.endedAt > 0n, 'ended_at set so livekit-server can sweep it');
});

t.test('a malformed request is refused at once with the field named', async (t) => {
  const room = `bad-${Date.now()}`;
  const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: 'bad-pub', audio: true, video: false });
  t.teardown(() => pub.stop());
  const err = await client.startTrackEgress(room, new DirectFileOutput({ filepath: 'x' }), '').then(() => undefined, (e: unknown) => e);
  t.ok(err, 'refused');
  // livekit-server passes our text through inside its Twirp error.
  t.match((err as Error).message, /: request has missing or invalid field: track_id$/);
  t.equal((err as { status?: number }).status, 400, 'HTTP 400 (invalid_argument)');
  t.same(await client.listEgress({ roomName: room }), [], 'nothing half-started is stored');
});

t.test('garbage on egress-only request channels does not hurt the node', async (t) => {
  const raw = new Redis({ host: d.redis.address.split(':')[0], port: Number(d.redis.address.split(':')[1]), db: d.redis.db, password: d.redis.password || undefined });
  t.teardown(() => void raw.quit());
  const wrongKind = encodeFrame('ClaimRequest', new ClaimRequest({ requestId: 'REQ_x', serverId: 'SRV_x', affinity: 1 }));
  const channels = ['EgressInternal|StartEgress|REQ', 'EgressInternal|StartEgress|RCLAIM', 'EgressInternal|ListActiveEgress|REQ', 'EgressHandler|StopEgress|EG_nosuchegress1|REQ'];
  for (const ch of channels) {
    for (const payload of [Buffer.from('not a protobuf \xff\x00\x01'), Buffer.alloc(0), Buffer.from(wrongKind), Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f])]) {
      await raw.publish(ch, payload);
    }
  }
  await new Promise((r) => setTimeout(r, 500));
  t.equal(node.process.exitCode, null, 'the supervisor is still running');

  const answers = await internal.callMulti('ListActiveEgress', '', new ListActiveEgressRequest(), ListActiveEgressResponse, 1000);
  t.ok(answers.length >= 1, 'the node still answers ListActiveEgress');

  // And it still takes real work.
  const room = `after-garbage-${Date.now()}`;
  const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: 'g-pub', audio: true, video: false });
  t.teardown(() => pub.stop());
  const started = await client.startTrackEgress(room, new DirectFileOutput({ filepath: 'garbage/{track_id}' }), pub.audioTrackSid!);
  await waitFor('ACTIVE', async () => ((await getInfo(started.egressId))?.status === EgressStatus.EGRESS_ACTIVE ? true : undefined), 20_000);
  await client.stopEgress(started.egressId);
  const final = await waitFor('end', async () => {
    const i = await getInfo(started.egressId);
    return i && i.status >= EgressStatus.EGRESS_COMPLETE ? i : undefined;
  });
  t.equal(final.status, EgressStatus.EGRESS_COMPLETE);
  t.notMatch(node.log(), /uncaught|unhandled/i, 'no uncaught errors in the node log');
});

t.test('a StopEgress right after StartEgress aborts the egress instead of losing the stop', async (t) => {
  const room = `early-stop-${Date.now()}`;
  const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: 'early-pub', audio: true, video: false });
  t.teardown(() => pub.stop());
  const started = await client.startTrackEgress(room, new DirectFileOutput({ filepath: 'early/{track_id}' }), pub.audioTrackSid!);
  const stopped = await client.stopEgress(started.egressId);
  t.ok([EgressStatus.EGRESS_ABORTED, EgressStatus.EGRESS_ENDING].includes(stopped.status), `the stop is taken (${EgressStatus[stopped.status]})`);
  const final = await waitFor('end', async () => {
    const i = await getInfo(started.egressId);
    return i && i.status >= EgressStatus.EGRESS_COMPLETE ? i : undefined;
  }, 20_000);
  t.ok([EgressStatus.EGRESS_ABORTED, EgressStatus.EGRESS_COMPLETE].includes(final.status), `it ends (${EgressStatus[final.status]}: ${final.error})`);
  if (final.status === EgressStatus.EGRESS_ABORTED) t.equal(final.error, 'Stop called before pipeline could start');
});
