// The node's HTTP endpoints against a real node with real jobs: health, metrics, the debug port
// (list, inspect, graph, stop, kill), the template server, and debug.enable_profiling on a real
// pipeline failure.
import '../rig/quiet-rtc.ts';
import t, { type Test } from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import { DirectFileOutput, EgressStatus, type EgressInfo } from '@livekit/protocol';
import { EgressClient } from 'livekit-server-sdk';
import { freePort } from '../rig/ports.ts';
import { disposeRtc, startPublisher } from '../rig/publisher.ts';
import { isAlive, jobDetail } from '../support/debug-api.ts';
import { startEgressNode } from '../support/egress-node.ts';
import { suiteDeployment } from '../support/suite.ts';
import { waitFor } from '../support/wait.ts';

const { deployment: d } = await suiteDeployment(t, { needsWebhooks: false });
const client = new EgressClient(d.httpUrl, d.apiKey, d.apiSecret);
const ports = { health: await freePort(), prometheus: await freePort(), debug: await freePort(), template: await freePort() };
const node = await startEgressNode(d, {
  health_port: ports.health,
  prometheus_port: ports.prometheus,
  debug_handler_port: ports.debug,
  template_port: ports.template,
  debug: { enable_profiling: true },
});
t.teardown(async () => {
  await node.stop();
  await disposeRtc();
});

const get = (port: number, p: string, init?: RequestInit) => fetch(`http://127.0.0.1:${port}${p}`, init);
const info = async (id: string) => (await client.listEgress({ egressId: id }))[0];
const untilActive = (id: string) => waitFor('ACTIVE', async () => ((await info(id))?.status === EgressStatus.EGRESS_ACTIVE ? true : undefined), 20_000);
const untilEnded = (id: string) =>
  waitFor<EgressInfo>('the end', async () => {
    const i = await info(id);
    return i && i.status >= EgressStatus.EGRESS_COMPLETE ? i : undefined;
  });

async function startAudio(t: Test, name: string): Promise<string> {
  const room = `${name}-${Date.now()}`;
  const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: `${name}-pub`, audio: true, video: false });
  t.teardown(() => pub.stop());
  const id = (await client.startTrackEgress(room, new DirectFileOutput({ filepath: `${name}/{track_id}` }), pub.audioTrackSid!)).egressId;
  await untilActive(id);
  return id;
}

t.test('health, metrics and debug describe a running job; stop through the debug port', async (t) => {
  const id = await startAudio(t, 'endpoints');
  await new Promise((r) => setTimeout(r, 2500)); // let the monitor measure it

  const health = (await (await get(ports.health, '/')).json()) as Record<string, unknown>;
  t.type(health.CpuLoad, 'number', 'CpuLoad as in the Go egress');
  t.ok((health[id] as Record<string, unknown>)?.Track, 'one key per active egress, holding its request');
  t.equal(health.ActiveJobs, 1);
  t.equal(health.CanAccept, true);
  const healthz = await get(ports.health, '/healthz');
  t.equal(healthz.status, 200);

  const metrics = await (await get(ports.prometheus, '/metrics')).text();
  t.match(metrics, /livekit_egress_requests\{[^}]*type="track"[^}]*\} 1/, 'requests by type');
  t.match(metrics, /livekit_node_cpu_load\{/, 'node CPU load');
  t.match(metrics, new RegExp(`livekit_egress_job_cpu_cores\\{[^}]*egress_id="${id}"`), 'per-job CPU');
  t.match(metrics, new RegExp(`livekit_egress_job_memory_bytes\\{[^}]*egress_id="${id}"`), 'per-job memory');
  t.match(metrics, /livekit_egress_claims_total\{[^}]*outcome="won"[^}]*\} 1/, 'claims won');

  const list = (await (await get(ports.debug, '/jobs')).json()) as { egressId: string }[];
  t.same(list.map((j) => j.egressId), [id], 'debug: list jobs');
  const detail = await jobDetail(ports.debug, id);
  t.equal(detail.status, 'EGRESS_ACTIVE');
  t.ok(detail.processes.find((p) => p.name === 'handler'), 'the handler process');
  t.match(detail.commandLines[0], /gst-launch-1\.0 .*opusenc/, 'the gst-launch command line');
  t.notMatch(JSON.stringify(detail), new RegExp(d.apiSecret), 'no credentials');
  for (const path of [`/jobs/${id}/dot`, `/gst_pipeline/${id}`]) {
    const dot = await get(ports.debug, path);
    t.equal(dot.headers.get('content-type'), 'text/vnd.graphviz', `${path} content type`);
    t.match(await dot.text(), /digraph pipeline/, `${path} is the pipeline graph`);
  }
  t.equal((await get(ports.debug, '/jobs/EG_nosuchjob')).status, 404);

  const stopped = (await (await get(ports.debug, `/jobs/${id}/stop`, { method: 'POST' })).json()) as { info: { status: string } };
  t.equal(stopped.info.status, 'EGRESS_ENDING', 'debug stop is graceful');
  t.equal((await untilEnded(id)).status, EgressStatus.EGRESS_COMPLETE);
});

t.test('kill through the debug port: FAILED, recovered', async (t) => {
  const id = await startAudio(t, 'debugkill');
  await new Promise((r) => setTimeout(r, 2000));
  const res = await get(ports.debug, `/jobs/${id}/kill`, { method: 'POST' });
  t.equal(res.status, 202);
  const done = await untilEnded(id);
  t.equal(done.status, EgressStatus.EGRESS_FAILED);
  t.equal(done.error, 'killed through the debug endpoint');
  t.equal(done.errorCode, 403);
  t.ok(done.fileResults[0] && existsSync(done.fileResults[0].location), 'the recording was recovered');
});

t.test('debug.enable_profiling keeps a failed pipeline\'s graph, commands, log and CPU profile', async (t) => {
  const id = await startAudio(t, 'profiling');
  await new Promise((r) => setTimeout(r, 1500));
  const gst = (await jobDetail(ports.debug, id)).processes.find((p) => p.name === 'gst-launch-1.0')!;
  process.kill(gst.pid, 'SIGKILL');
  const done = await untilEnded(id);
  t.equal(done.status, EgressStatus.EGRESS_FAILED, `a dead gst-launch fails the pipeline: ${done.error}`);
  const dir = /debug files: (\S+)/.exec(done.details)?.[1];
  t.ok(dir, `the details point to the debug files: ${done.details}`);
  const files = readdirSync(dir!);
  for (const f of ['pipeline.dot', 'gst-launch.txt', 'handler.log', 'handler.cpuprofile']) t.ok(files.includes(f), f);
  t.notOk(isAlive(gst.pid), 'gst is gone');
  t.equal(node.process.exitCode, null, 'the node goes on');
  const again = await startAudio(t, 'after-failure');
  t.pass('the node still takes work after a failed job');
  await client.stopEgress(again);
  await untilEnded(again);
});

t.test('the template server answers on template_port', async (t) => {
  const res = await get(ports.template, '/');
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type') ?? '', /text\/html/);
});

t.test('metrics count the failures', async (t) => {
  const metrics = await (await get(ports.prometheus, '/metrics')).text();
  t.match(metrics, /livekit_egress_handler_crashes_total\{[^}]*\} 1/, 'one handler crash (the debug kill)');
  t.match(metrics, /livekit_egress_handler_results_total\{[^}]*result="complete"[^}]*\} [12]/);
});
