// Crash isolation and lifecycle of the node's job fleet, with real processes: handlers killed,
// frozen and orphaned; SIGTERM drain and SIGINT stop; session limits.
import '../rig/quiet-rtc.ts';
import t, { type Test } from 'tap';
import { DirectFileOutput, EgressStatus, type EgressInfo } from '@livekit/protocol';
import { EgressClient } from 'livekit-server-sdk';
import { probe } from '../rig/probe.ts';
import { freePort } from '../rig/ports.ts';
import { disposeRtc, startPublisher, type Publisher } from '../rig/publisher.ts';
import { isAlive, jobDetail } from '../support/debug-api.ts';
import { startEgressNode } from '../support/egress-node.ts';
import { suiteDeployment } from '../support/suite.ts';
import { waitFor } from '../support/wait.ts';

const { deployment: d } = await suiteDeployment(t, { needsWebhooks: false });
const client = new EgressClient(d.httpUrl, d.apiKey, d.apiSecret);
t.teardown(disposeRtc);

const info = async (id: string) => (await client.listEgress({ egressId: id }))[0];
const untilActive = (id: string) => waitFor(`${id} ACTIVE`, async () => ((await info(id))?.status === EgressStatus.EGRESS_ACTIVE ? true : undefined), 20_000);
const untilEnded = (id: string, ms = 30_000) =>
  waitFor<EgressInfo>(`${id} to end`, async () => {
    const i = await info(id);
    return i && i.status >= EgressStatus.EGRESS_COMPLETE ? i : undefined;
  }, ms);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function publish(t: Test, name: string, video: false | 'vp8' | 'h264' = false): Promise<{ pub: Publisher; room: string; track: string }> {
  const room = `${name}-${Date.now()}`;
  const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: `${name}-pub`, audio: !video, video });
  t.teardown(() => pub.stop());
  return { pub, room, track: (video ? pub.videoTrackSid : pub.audioTrackSid)! };
}

async function startTrack(t: Test, name: string, video: false | 'vp8' | 'h264' = false): Promise<string> {
  const { room, track } = await publish(t, name, video);
  const started = await client.startTrackEgress(room, new DirectFileOutput({ filepath: `${name}/{track_id}` }), track);
  return started.egressId;
}

t.test('a SIGKILLed handler fails alone, its file is recovered, and nothing is orphaned', async (t) => {
  const debugPort = await freePort();
  const node = await startEgressNode(d, { debug_handler_port: debugPort });
  t.teardown(() => node.stop());
  const [a, victim, c] = await Promise.all([startTrack(t, 'keep-a'), startTrack(t, 'victim', 'h264'), startTrack(t, 'keep-c')]);
  await Promise.all([a, victim, c].map(untilActive));
  await sleep(4000);

  const detail = await jobDetail(debugPort, victim);
  const pids = detail.processes.map((p) => p.pid);
  t.ok(detail.processes.some((p) => p.name === 'gst-launch-1.0'), 'the handler reported its gst-launch process');
  process.kill(detail.processes[0]!.pid, 'SIGKILL');

  const failed = await untilEnded(victim);
  t.equal(failed.status, EgressStatus.EGRESS_FAILED);
  t.match(failed.error, /signal: killed/, `the reason names the signal: ${failed.error}`);
  t.equal(failed.errorCode, 500);
  const recovered = failed.fileResults[0];
  t.ok(recovered?.location, 'the FAILED EgressInfo lists the recovered file');
  const p = await probe(recovered!.location);
  t.equal(p.streams[0]?.codecName, 'h264', 'the recovered MP4 is playable');
  t.ok(p.duration >= 2, `it holds what was recorded (${p.duration.toFixed(2)} s)`);
  for (const pid of pids) t.notOk(isAlive(pid), `process ${pid} of the dead handler is gone`);

  await sleep(1000);
  for (const id of [a, c]) {
    t.equal((await info(id))?.status, EgressStatus.EGRESS_ACTIVE, `${id} kept recording`);
    await client.stopEgress(id);
  }
  for (const id of [a, c]) {
    const done = await untilEnded(id);
    t.equal(done.status, EgressStatus.EGRESS_COMPLETE, `${id} COMPLETE`);
    const q = await probe(done.fileResults[0]!.location);
    t.ok(q.duration > 5, `${id} playable, ${q.duration.toFixed(2)} s`);
  }
  t.equal(node.process.exitCode, null, 'the node kept running');
});

t.test('a frozen handler (no heartbeat) is killed and reported', async (t) => {
  const debugPort = await freePort();
  const node = await startEgressNode(d, { debug_handler_port: debugPort });
  t.teardown(() => node.stop());
  const id = await startTrack(t, 'frozen');
  await untilActive(id);
  const detail = await jobDetail(debugPort, id);
  process.kill(detail.processes[0]!.pid, 'SIGSTOP');
  // Found after 10 s of silence (the supervisor's limit), then its file is recovered.
  const failed = await untilEnded(id, 30_000);
  t.equal(failed.status, EgressStatus.EGRESS_FAILED);
  t.match(failed.error, /handler stopped responding/);
  for (const p of detail.processes) t.notOk(isAlive(p.pid), `process ${p.pid} is gone`);
});

t.test('a handler whose supervisor dies finalizes its file and exits by itself', async (t) => {
  const debugPort = await freePort();
  const node = await startEgressNode(d, { debug_handler_port: debugPort });
  const id = await startTrack(t, 'orphan');
  await untilActive(id);
  await sleep(2000);
  const detail = await jobDetail(debugPort, id);
  node.process.kill('SIGKILL');
  await waitFor('the orphaned handler to exit', async () => (detail.processes.every((p) => !isAlive(p.pid)) ? true : undefined), 20_000);
  t.pass('the handler and its gst-launch exited');
  const out = `${node.outputDir}/orphan`;
  const { readdirSync } = await import('node:fs');
  const files = readdirSync(out).filter((f) => !f.endsWith('.json'));
  t.equal(files.length, 1, 'its file was finalized into the output directory');
  t.ok(readdirSync(out).includes(`${id}.json`), 'with its manifest');
  const p = await probe(`${out}/${files[0]}`);
  t.ok(p.duration >= 1.5, `playable, ${p.duration.toFixed(2)} s`);
});

t.test('SIGTERM drains: no new work, running jobs finish, then exit 0', async (t) => {
  const healthPort = await freePort();
  const node = await startEgressNode(d, { health_port: healthPort });
  const id = await startTrack(t, 'drain');
  await untilActive(id);
  t.equal((await fetch(`http://127.0.0.1:${healthPort}/healthz`)).status, 200, 'healthy before');
  node.process.kill('SIGTERM');
  await sleep(1000);
  const health = await fetch(`http://127.0.0.1:${healthPort}/healthz`);
  t.equal(health.status, 503, '/healthz says draining');
  t.equal(await health.text(), 'draining');
  t.equal((await info(id))?.status, EgressStatus.EGRESS_ACTIVE, 'the running job goes on');
  t.equal(node.process.exitCode, null, 'the node waits for it');
  await client.stopEgress(id);
  t.equal((await untilEnded(id)).status, EgressStatus.EGRESS_COMPLETE);
  t.equal(await node.stop('SIGTERM'), 0, 'exit 0 once idle');
});

t.test('SIGINT stops every job gracefully, files finalized, then exits', async (t) => {
  const node = await startEgressNode(d);
  const ids = await Promise.all([startTrack(t, 'sigint-a'), startTrack(t, 'sigint-b', 'vp8')]);
  await Promise.all(ids.map(untilActive));
  await sleep(3000);
  t.equal(await node.stop('SIGINT'), 0, 'the node exits 0');
  for (const id of ids) {
    const done = await untilEnded(id);
    t.equal(done.status, EgressStatus.EGRESS_COMPLETE, `${id} COMPLETE`);
    t.equal(done.details, 'End reason: Process killed');
    t.ok((await probe(done.fileResults[0]!.location)).duration > 2, 'its file is playable');
  }
});

t.test('session limits end a job LIMIT_REACHED with its file finalized', async (t) => {
  const node = await startEgressNode(d, { session_limits: { file_output_max_duration: '4s', file_output_max_size: 40_000 } });
  t.teardown(() => node.stop());
  const [byTime, bySize] = await Promise.all([startTrack(t, 'limit-time'), startTrack(t, 'limit-size', 'vp8')]);
  for (const [id, what] of [[byTime, 'duration'], [bySize, 'size']] as const) {
    const done = await untilEnded(id, 30_000);
    t.equal(done.status, EgressStatus.EGRESS_LIMIT_REACHED, `${what} limit: LIMIT_REACHED`);
    t.equal(done.error, 'Session limit reached');
    t.equal(done.errorCode, 413);
    t.equal(done.details, 'End reason: Session limit reached');
    const file = done.fileResults[0]!;
    const p = await probe(file.location);
    t.ok(p.duration > 0.5, `${what}: the file is finalized and playable (${p.duration.toFixed(2)} s, ${file.size} bytes)`);
    if (what === 'duration') t.ok(p.duration <= 4.5, 'stopped at the duration limit');
  }
});

t.test('drain_timeout: SIGTERM stops the jobs still running when the timeout ends', async (t) => {
  const node = await startEgressNode(d, { drain_timeout: '2s' });
  const id = await startTrack(t, 'drain-timeout');
  await untilActive(id);
  node.process.kill('SIGTERM');
  const done = await untilEnded(id, 20_000);
  t.equal(done.status, EgressStatus.EGRESS_COMPLETE, 'stopped gracefully');
  t.equal(done.details, 'End reason: drain timeout');
  t.equal(await node.stop('SIGTERM'), 0);
});

t.test('a second signal kills everything at once', async (t) => {
  const debugPort = await freePort();
  const node = await startEgressNode(d, { debug_handler_port: debugPort });
  const id = await startTrack(t, 'second-signal');
  await untilActive(id);
  const detail = await jobDetail(debugPort, id);
  node.process.kill('SIGTERM');
  await sleep(300);
  node.process.kill('SIGTERM');
  t.equal(await node.stop(), 1, 'the node exits 1');
  await waitFor('every process to be gone', async () => (detail.processes.every((p) => !isAlive(p.pid)) ? true : undefined), 10_000);
  t.pass('the handler and gst-launch were killed');
});

t.test('an invalid config fails at start with the key and the reason; a running node is undisturbed', async (t) => {
  const node = await startEgressNode(d);
  t.teardown(() => node.stop());
  const id = await startTrack(t, 'bad-config');
  await untilActive(id);
  const bad = await startEgressNode(d, { health_port: 99_999, logging: { level: 'loud' } }).then(
    () => undefined,
    (e: Error) => e.message,
  );
  t.match(bad, /health_port: .*65535/, 'names health_port and the range');
  t.match(bad, /logging\.level: must be one of debug, info, warn, error/, 'names logging.level');
  t.notMatch(bad, /\n\s+at /, 'no stack trace');
  const port = await freePort();
  const clash = await startEgressNode(d, { health_port: port, debug_handler_port: port }).then(() => undefined, (e: Error) => e.message);
  t.match(clash, /debug_handler_port \d+ is in use \(also health_port\)/, 'a port clash fails the start, naming both keys');
  t.notMatch(clash, /egress node ready/, 'before the node took any work');
  t.equal((await info(id))?.status, EgressStatus.EGRESS_ACTIVE, 'the running job goes on');
  await client.stopEgress(id);
  t.equal((await untilEnded(id)).status, EgressStatus.EGRESS_COMPLETE);
});

// StartEgress is answered once livekit-server has the egress (IOInfo.CreateEgress), not when the
// handler is ready: a handler that then dies, or never gets ready, still ends the egress FAILED.
// A preload (NODE_OPTIONS, inherited by the handlers) stops the handlers, which alone carry EGRESS_ID
// (handler_pool.idle 0: no spares), before their main module runs.
t.test('a handler that dies or hangs before ready: StartEgress answered STARTING, then FAILED', async (t) => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const os = await import('node:os');
  const preload = `${mkdtempSync(`${os.tmpdir()}/egress-unready-`)}/unready.mjs`;
  writeFileSync(preload, [
    'if (process.env.EGRESS_ID) {',
    "  if (process.env.TEST_UNREADY === 'die') process.exit(3);",
    '  setInterval(() => {}, 1 << 30);',
    '  await new Promise(() => {});',
    '}',
    '',
  ].join('\n'));
  for (const [how, reason] of [['die', /handler process died: exit status 3/], ['hang', /handler failed to start \(signal: killed\)/]] as const) {
    const node = await startEgressNode(d, { handler_pool: { idle: 0 } }, { NODE_OPTIONS: `--import=${preload}`, TEST_UNREADY: how });
    t.teardown(() => node.stop());
    const { room, track } = await publish(t, `unready-${how}`);
    const started = await client.startTrackEgress(room, new DirectFileOutput({ filepath: `unready-${how}/{track_id}` }), track);
    t.equal(started.status, EgressStatus.EGRESS_STARTING, `${how}: StartEgress answered STARTING`);
    const failed = await untilEnded(started.egressId, 30_000);
    t.equal(failed.status, EgressStatus.EGRESS_FAILED, `${how}: the egress ended FAILED`);
    t.match(failed.error, reason, `${how}: ${failed.error}`);
    t.equal(failed.errorCode, 500, `${how}: error code 500 (internal)`);
    t.equal(node.process.exitCode, null, `${how}: the node kept running`);
    await node.stop();
  }
});
