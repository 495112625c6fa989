// Faults injected into real processes (issue 10): Redis killed or gone while jobs end, and errors no
// code path handled inside the supervisor. Each case checks that the node stays up, that livekit-server
// ends up with the right final status (ListEgress through livekit-server-sdk), and that the file plays.
// It always starts its own livekit-server and Redis: it kills that Redis.
import '../rig/quiet-rtc.ts';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { DirectFileOutput, EgressStatus, type EgressInfo } from '@livekit/protocol';
import { EgressClient } from 'livekit-server-sdk';
import { startLocalDeployment } from '../rig/deployment.ts';
import { freePort } from '../rig/ports.ts';
import { probe } from '../rig/probe.ts';
import { disposeRtc, startPublisher } from '../rig/publisher.ts';
import { startEgressNode, type EgressNode } from '../support/egress-node.ts';
import { waitFor } from '../support/wait.ts';

// Durable (AOF, fsync always), as a production Redis: a SIGKILL loses nothing livekit-server stored.
const d = await startLocalDeployment({ redis: { durable: true } });
const redis = d.redisServer;
t.teardown(async () => {
  await disposeRtc();
  await d.stop();
});
const client = new EgressClient(d.httpUrl, d.apiKey, d.apiSecret);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Undefined while livekit-server cannot answer (its Redis is down). */
const info = async (id: string) => (await client.listEgress({ egressId: id }).catch(() => []))[0];
const untilActive = (id: string) => waitFor(`${id} ACTIVE`, async () => ((await info(id))?.status === EgressStatus.EGRESS_ACTIVE ? true : undefined), 20_000);
const untilEnded = (id: string, ms = 30_000) =>
  waitFor<EgressInfo>(`${id} to end`, async () => {
    const i = await info(id);
    return i && i.status >= EgressStatus.EGRESS_COMPLETE ? i : undefined;
  }, ms, 250);

/**
 * livekit-server answers a join with 500 for a moment after the Redis an earlier case killed or froze
 * comes back (its own psrpc subscriptions reconnect). That is livekit-server recovering, not the egress
 * under test, so a case's publisher retries that one answer for a while before it counts as a failure.
 */
async function joinWhenServed<T>(join: () => Promise<T>, withinMs = 20_000): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      return await join();
    } catch (err) {
      if (!/handshake error: 5\d\d/.test(String(err)) || Date.now() > deadline) throw err;
      await sleep(500);
    }
  }
}

async function startTrack(t: Test, name: string): Promise<string> {
  const room = `${name}-${Date.now()}`;
  const pub = await joinWhenServed(() => startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: `${name}-pub`, audio: true, video: false }));
  t.teardown(() => pub.stop());
  const started = await client.startTrackEgress(room, new DirectFileOutput({ filepath: `${name}/{track_id}` }), pub.audioTrackSid!);
  await untilActive(started.egressId);
  return started.egressId;
}

/** The debug endpoint's graceful stop: it needs no Redis. Resolves once the job is finalized. */
async function debugStop(port: number, id: string): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}/jobs/${id}/stop`, { method: 'POST' })).status;
}

const logLines = (node: EgressNode, text: string) => node.log().split('\n').filter((l) => l.includes(text));

t.test('an unhandled rejection and an uncaught exception in the supervisor: logged, counted, the job goes on', async (t) => {
  const metricsPort = await freePort();
  const preload = fileURLToPath(new URL('../support/provoke-faults.mjs', import.meta.url));
  const node = await startEgressNode(d, { prometheus_port: metricsPort }, {
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${preload}`.trim(),
  });
  t.teardown(() => node.stop());
  const id = await startTrack(t, 'provoked');
  await sleep(2000);

  node.process.kill('SIGUSR2');
  await waitFor('both faults logged', async () => (logLines(node, 'provoked uncaught exception').length && logLines(node, 'provoked unhandled rejection').length ? true : undefined), 10_000);
  t.equal(node.process.exitCode, null, 'the node is still running');
  const [rejection] = logLines(node, 'unhandled rejection: the node keeps running');
  t.match(rejection, /"stack":"Error: provoked unhandled rejection\\n\s+at /, 'the rejection is logged with its stack');
  t.match(rejection, /^\S+ ERROR/, 'at error level');
  t.match(logLines(node, 'uncaught exception: the node keeps running')[0], /"stack":"Error: provoked uncaught exception\\n\s+at /, 'the exception too');
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  t.match(metrics, /^livekit_egress_process_faults_total\{kind="unhandled_rejection",node_id="[^"]+",cluster_id=""\} 1$/m, 'counted: rejection');
  t.match(metrics, /^livekit_egress_process_faults_total\{kind="uncaught_exception",node_id="[^"]+",cluster_id=""\} 1$/m, 'counted: exception');

  await sleep(2000);
  t.equal((await info(id))?.status, EgressStatus.EGRESS_ACTIVE, 'the job kept recording');
  await client.stopEgress(id);
  const done = await untilEnded(id);
  t.equal(done.status, EgressStatus.EGRESS_COMPLETE);
  const p = await probe(done.fileResults[0]!.location);
  t.ok(p.duration > 3, `its file plays, ${p.duration.toFixed(2)} s`);
});

// Both track paths: the decoding one (rtc-node) and the remuxing one (remux_tracks), whose own signal
// connection livekit-server closes when it loses its Redis, and which must resume it.
for (const remux of [false, true]) t.test(`Redis SIGKILLed and restarted 3 s later mid-recording, then SIGSTOPped for 5 s: both recordings go on and end COMPLETE${remux ? ' (remux_tracks)' : ''}`, async (t) => {
  const node = await startEgressNode(d, { io_update_timeout: '2s', io_update_retry_window: '2m', remux_tracks: remux });
  t.teardown(() => node.stop());
  const ids = [await startTrack(t, 'redis-blip-1'), await startTrack(t, 'redis-blip-2')];
  await sleep(2000);

  await redis.kill();
  t.teardown(() => redis.restart());
  await sleep(3000);
  await redis.restart();
  await sleep(3000);
  redis.pause();
  await sleep(5000);
  redis.resume();
  await sleep(2000);
  t.equal(node.process.exitCode, null, 'the node is still running');
  for (const id of ids) t.equal((await info(id))?.status, EgressStatus.EGRESS_ACTIVE, `${id} is still ACTIVE`);

  for (const id of ids) await client.stopEgress(id);
  for (const id of ids) {
    const done = await untilEnded(id, 60_000);
    t.equal(done.status, EgressStatus.EGRESS_COMPLETE, `${id} COMPLETE (${done.error})`);
    const p = await probe(done.fileResults[0]!.location);
    // Recorded through both outages (about 15 s), not cut at the first one (2 s in).
    t.ok(p.duration > 10, `its file plays through the outages: ${p.duration.toFixed(1)} s`);
  }
  t.equal(node.process.exitCode, null, 'the node is still running');
});

t.test('Redis SIGKILLed while a job ends, restarted 5 s later: livekit-server gets COMPLETE', async (t) => {
  const debugPort = await freePort();
  const node = await startEgressNode(d, { debug_handler_port: debugPort, io_update_timeout: '2s', io_update_retry_window: '2m' });
  t.teardown(() => node.stop());
  const id = await startTrack(t, 'redis-down-end');
  await sleep(3000);

  await redis.kill();
  t.teardown(() => redis.restart());
  t.equal(await debugStop(debugPort, id), 200, 'the job stopped and finalized with Redis down');
  await waitFor('a failed final update', async () => (logLines(node, 'egress update failed, retrying').some((l) => l.includes(id) && l.includes('"status":"complete"')) ? true : undefined), 20_000);
  await sleep(5000);
  t.equal(node.process.exitCode, null, 'the node is still running');
  await redis.restart();

  const done = await untilEnded(id, 90_000);
  t.equal(done.status, EgressStatus.EGRESS_COMPLETE, 'ListEgress shows COMPLETE once Redis is back');
  const p = await probe(done.fileResults[0]!.location);
  t.ok(p.duration > 2, `its file plays, ${p.duration.toFixed(2)} s`);
  t.equal(logLines(node, 'egress update abandoned').length, 0, 'nothing was abandoned');
  const sent = logLines(node, 'egress update sent').filter((l) => l.includes(id));
  t.match(sent.at(-1), /"status":"complete"/, 'COMPLETE was the last update sent');
  t.notOk(sent.some((l) => l.includes('"status":"ending"')), 'latest wins: ENDING, queued while Redis was down, was replaced by COMPLETE');
  t.equal(node.process.exitCode, null, 'the node is still running');
});

t.test('Redis SIGSTOPped while a job ends, resumed 8 s later: livekit-server gets COMPLETE', async (t) => {
  const debugPort = await freePort();
  const node = await startEgressNode(d, { debug_handler_port: debugPort, io_update_timeout: '2s', io_update_retry_window: '2m' });
  t.teardown(() => node.stop());
  const id = await startTrack(t, 'redis-paused-end');
  await sleep(3000);

  redis.pause();
  t.teardown(() => redis.resume());
  t.equal(await debugStop(debugPort, id), 200, 'the job stopped and finalized with Redis frozen');
  await waitFor('a failed final update', async () => (logLines(node, 'egress update failed, retrying').some((l) => l.includes(id) && l.includes('"status":"complete"')) ? true : undefined), 20_000);
  await sleep(8000);
  t.equal(node.process.exitCode, null, 'the node is still running');
  redis.resume();

  const done = await untilEnded(id, 90_000);
  t.equal(done.status, EgressStatus.EGRESS_COMPLETE, 'ListEgress shows COMPLETE once Redis answers');
  t.ok((await probe(done.fileResults[0]!.location)).duration > 2, 'its file plays');
  t.equal(node.process.exitCode, null, 'the node is still running');
});

t.test('Redis gone for longer than io_update_retry_window: the node logs the lost status and its drain ends', async (t) => {
  const debugPort = await freePort();
  const node = await startEgressNode(d, { debug_handler_port: debugPort, io_update_timeout: '1s', io_update_retry_window: '4s' });
  t.teardown(() => node.stop());
  const id = await startTrack(t, 'redis-gone');
  await sleep(2000);

  await redis.kill();
  t.teardown(() => redis.restart());
  t.equal(await debugStop(debugPort, id), 200, 'the job stopped and finalized with Redis down');
  const drainStart = Date.now();
  node.process.kill('SIGTERM');
  const code = await waitFor('the drain to end', async () => node.process.exitCode ?? undefined, 30_000, 250);
  t.equal(code, 0, `the node drained and exited 0 after ${((Date.now() - drainStart) / 1000).toFixed(1)} s`);
  const [abandoned] = logLines(node, 'egress update abandoned');
  t.ok(abandoned, 'the lost status is logged');
  t.match(abandoned, /^\S+ ERROR/, 'at error level');
  t.match(abandoned, new RegExp(`"egressId":"${id}"`), 'naming the egress');
  t.match(abandoned, /"status":"complete"/, 'and the status that was lost');
});
