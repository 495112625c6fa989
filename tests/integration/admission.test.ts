// Admission and overload against a real node: a request it cannot take gets no claim at all, and a
// node above 95% CPU for 10 s stops its heaviest job gracefully.
import '../rig/quiet-rtc.ts';
import t, { type Test } from 'tap';
import { DirectFileOutput, EgressInfo, EgressStatus, TrackEgressRequest } from '@livekit/protocol';
import { EgressClient } from 'livekit-server-sdk';
import { EgressError } from '../../shared/src/errors.ts';
import { StartEgressRequest } from '../../shared/src/proto/rpc.ts';
import { disposeRtc, startPublisher } from '../rig/publisher.ts';
import { startEgressNode } from '../support/egress-node.ts';
import { suiteDeployment } from '../support/suite.ts';
import { waitFor } from '../support/wait.ts';
import { egressInternalClient, START_SELECTION } from '../support/psrpc.ts';
import { jobDetail } from '../support/debug-api.ts';
import { freePort } from '../rig/ports.ts';

const { deployment: d } = await suiteDeployment(t, { needsWebhooks: false });
const client = new EgressClient(d.httpUrl, d.apiKey, d.apiSecret);
const psrpc = await egressInternalClient(d);
const internal = psrpc.rpc;
t.teardown(async () => {
  await psrpc.close();
  await disposeRtc();
});

const info = async (id: string) => (await client.listEgress({ egressId: id }))[0];
const untilEnded = (id: string, ms = 30_000) =>
  waitFor<EgressInfo>(`${id} to end`, async () => {
    const i = await info(id);
    return i && i.status >= EgressStatus.EGRESS_COMPLETE ? i : undefined;
  }, ms);

async function audioTrack(t: Test, name: string) {
  const room = `${name}-${Date.now()}`;
  const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: `${name}-pub`, audio: true, video: false });
  t.teardown(() => pub.stop());
  return { room, track: pub.audioTrackSid! };
}

t.test('a node that cannot take a job sends no claim', async (t) => {
  // Capacity 1 core; each track job costs 0.6: the idle node takes the first, then has 0.8 - 0.6 left.
  const node = await startEgressNode(d, { cpu_cost: { cpu_capacity: 1, track_cpu_cost: 0.6 } });
  t.teardown(() => node.stop());
  const first = await audioTrack(t, 'admit');
  const started = await client.startTrackEgress(first.room, new DirectFileOutput({ filepath: 'admit/{track_id}' }), first.track);
  t.equal(started.status, EgressStatus.EGRESS_STARTING, 'the idle node takes the first job');

  const second = await audioTrack(t, 'refused');
  const req = new StartEgressRequest({
    egressId: 'EG_admissiontest',
    request: { case: 'track', value: new TrackEgressRequest({ roomName: second.room, trackId: second.track, output: { case: 'file', value: new DirectFileOutput({ filepath: 'x' }) } }) },
  });
  const t0 = Date.now();
  const err = await internal
    .call('StartEgress', '', req, EgressInfo, { timeoutMs: 5000, selection: START_SELECTION })
    .then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof EgressError, 'refused');
  t.equal((err as EgressError).message, 'no response from servers', 'no claim at all, not an error answer');
  t.ok(Date.now() - t0 < 2000, 'decided by the selection window, not a timeout');
  await t.rejects(info('EG_admissiontest'), /egress does not exist/, 'nothing was stored for it');

  await waitFor('ACTIVE', async () => ((await info(started.egressId))?.status === EgressStatus.EGRESS_ACTIVE ? true : undefined), 20_000);
  await client.stopEgress(started.egressId);
  t.equal((await untilEnded(started.egressId)).status, EgressStatus.EGRESS_COMPLETE);
});

t.test('overload: the heaviest job is stopped gracefully after 10 s above 95%', async (t) => {
  // test_overrides.cpu_load pins the measured load at 99%; per-job CPU is still measured from /proc.
  const node = await startEgressNode(d, { cpu_cost: { cpu_capacity: 16 }, test_overrides: { cpu_load: 0.99 } });
  t.teardown(() => node.stop());
  const tracks = await Promise.all([audioTrack(t, 'overload-a'), audioTrack(t, 'overload-b')]);
  const ids = await Promise.all(tracks.map(async (x) => (await client.startTrackEgress(x.room, new DirectFileOutput({ filepath: 'overload/{track_id}' }), x.track)).egressId));
  const stopped = await waitFor('a job to end', async () => {
    for (const id of ids) {
      const i = await info(id);
      if (i && i.status >= EgressStatus.EGRESS_COMPLETE) return i;
    }
    return undefined;
  }, 30_000);
  t.equal(stopped.status, EgressStatus.EGRESS_COMPLETE, 'stopped gracefully: COMPLETE');
  t.equal(stopped.details, 'End reason: CPU exhausted');
  t.ok(stopped.fileResults[0]?.size, 'its file was finalized');
  const other = ids.find((id) => id !== stopped.egressId)!;
  t.equal((await info(other))?.status, EgressStatus.EGRESS_ACTIVE, 'the other job goes on (one job alone is never stopped for load)');
  await client.stopEgress(other);
  await untilEnded(other);
});

t.test('overload: a stopped job that cannot finish is killed after cpu_kill_grace_sec', async (t) => {
  const debugPort = await freePort();
  const node = await startEgressNode(d, { cpu_cost: { cpu_capacity: 16, cpu_kill_grace_sec: 3 }, test_overrides: { cpu_load: 0.99 }, debug_handler_port: debugPort });
  t.teardown(() => node.stop());
  const tracks = await Promise.all([audioTrack(t, 'wedged-a'), audioTrack(t, 'wedged-b')]);
  const ids = await Promise.all(tracks.map(async (x) => (await client.startTrackEgress(x.room, new DirectFileOutput({ filepath: 'wedged/{track_id}' }), x.track)).egressId));
  await Promise.all(ids.map((id) => waitFor('ACTIVE', async () => ((await info(id))?.status === EgressStatus.EGRESS_ACTIVE ? true : undefined), 20_000)));
  // Frozen encoders: the graceful stop cannot finalize, so only the kill ends the job.
  // gst starts with the first media, a moment after ACTIVE.
  const gst = await Promise.all(ids.map((id) => waitFor(`${id} gst-launch`, async () => (await jobDetail(debugPort, id)).processes.find((p) => p.name === 'gst-launch-1.0')?.pid, 10_000)));
  gst.forEach((pid) => process.kill(pid, 'SIGSTOP'));
  t.teardown(() => gst.forEach((pid) => { try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ } }));
  const killed = await waitFor('a job to be killed', async () => {
    for (const id of ids) {
      const i = await info(id);
      if (i && i.status >= EgressStatus.EGRESS_COMPLETE) return i;
    }
    return undefined;
  }, 40_000);
  t.equal(killed.status, EgressStatus.EGRESS_FAILED);
  t.match(killed.error, /^CPU exhausted: \d+\.\d\d cores used$/);
  t.equal(killed.errorCode, 403);
  const other = ids.find((id) => id !== killed.egressId)!;
  const otherGst = gst[ids.indexOf(other)]!;
  process.kill(otherGst, 'SIGCONT');
  await client.stopEgress(other).catch(() => undefined);
  await untilEnded(other, 40_000);
});
