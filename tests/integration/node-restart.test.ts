// A node that dies under running jobs loses no recording: the next node started on the machine
// finds their scratch in tmp_dir and reports each to livekit-server (FAILED, "recovered after node
// restart", with its file). Two ways to die: the supervisor alone (its handlers finish as orphans and
// leave their final status in the journal) and the whole process tree at once (the files are as they
// were; the recovery handler finalizes them).
import '../rig/quiet-rtc.ts';
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DirectFileOutput, EgressStatus, EncodedFileOutput, type EgressInfo } from '@livekit/protocol';
import { EgressClient } from 'livekit-server-sdk';
import { ownProcesses, sampleProcesses } from '../../supervisor/src/admission/proc.ts';
import { probe } from '../rig/probe.ts';
import { disposeRtc, startPublisher } from '../rig/publisher.ts';
import { serveWebPages } from '../rig/web-page.ts';
import { isAlive } from '../support/debug-api.ts';
import { startEgressNode, type EgressNode } from '../support/egress-node.ts';
import { suiteDeployment } from '../support/suite.ts';
import { waitFor } from '../support/wait.ts';
import { processName } from '../support/web-job.ts';

const { deployment: d } = await suiteDeployment(t, { needsWebhooks: false });
const client = new EgressClient(d.httpUrl, d.apiKey, d.apiSecret);
t.teardown(() => disposeRtc());

const info = async (id: string) => (await client.listEgress({ egressId: id }))[0];

/** Two audio track egresses running on `node`; resolves once both are ACTIVE and have recorded a while. */
async function twoJobs(t: Test, name: string, node: EgressNode): Promise<string[]> {
  const ids: string[] = [];
  for (const n of [1, 2]) {
    const room = `${name}-${n}-${Date.now()}`;
    const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: `${name}-pub${n}`, audio: true, video: false });
    t.teardown(() => pub.stop());
    ids.push((await client.startTrackEgress(room, new DirectFileOutput({ filepath: `${name}/{room_name}` }), pub.audioTrackSid!)).egressId);
  }
  for (const id of ids) {
    await waitFor(`${id} ACTIVE`, async () => ((await info(id))?.status === EgressStatus.EGRESS_ACTIVE ? true : undefined), 20_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${node.log().slice(-3000)}`);
    });
  }
  await new Promise((r) => setTimeout(r, 4000));
  return ids;
}

/** `pid` and every process below it: the supervisor's own tree walk, over one pass of /proc. */
const tree = (pid: number): number[] => ownProcesses(sampleProcesses(), pid, new Set()).map((p) => p.pid);

/** A node on the dead one's tmp_dir and output dir, as the same machine restarted would run it. */
const restartOn = (dead: EgressNode) => startEgressNode(d, { tmp_dir: dead.tmpDir, local_output_dir: dead.outputDir });

async function checkReported(t: Test, id: string, recoveredBy: EgressNode): Promise<EgressInfo> {
  const final = await waitFor(`${id} reported`, async () => {
    const i = await info(id);
    return i && i.status >= EgressStatus.EGRESS_COMPLETE ? i : undefined;
  }, 60_000);
  t.equal(final.status, EgressStatus.EGRESS_FAILED, `${id}: FAILED (${final.error})`);
  t.match(final.error, /recovered after node restart/, 'the error says what happened');
  const file = final.fileResults[0];
  t.ok(file, 'with its file result');
  t.ok(file && existsSync(file.location), `the file is in storage: ${file?.location}`);
  if (file) {
    const p = await probe(file.location);
    t.equal(p.streams[0]?.codecName, 'opus', 'an Opus recording');
    t.ok(p.duration > 3, `that plays: ${p.duration.toFixed(1)} s`);
  }
  t.match(recoveredBy.log(), new RegExp(`reporting an egress orphaned by a node that died.*${id}|${id}.*reporting an egress orphaned`), 'the new node says so');
  return final;
}

t.test('the supervisor SIGKILLed with 2 jobs running: its orphans finish, and the next node reports both', async (t) => {
  const node = await startEgressNode(d);
  const ids = await twoJobs(t, 'orphans', node);
  const handlers = tree(node.process.pid!);
  node.process.kill('SIGKILL');
  await node.stop();
  // The handlers finalize and upload as orphans, then exit.
  await waitFor('the orphaned handlers to finish', async () => (handlers.every((p) => !isAlive(p)) ? true : undefined), 60_000);
  for (const id of ids) t.equal((await info(id))?.status, EgressStatus.EGRESS_ACTIVE, `${id}: livekit-server still thinks it runs`);

  const next = await restartOn(node);
  t.teardown(() => next.stop());
  for (const id of ids) {
    const final = await checkReported(t, id, next);
    t.match(final.details, /End reason: Process killed/, 'the orphan\'s own final status, as it wrote it');
  }
  const again = await restartOn(node);
  await new Promise((r) => setTimeout(r, 2000));
  await again.stop();
  t.notMatch(again.log(), /reporting an egress orphaned/, 'a later start does not report them again');
});

t.test('the whole node SIGKILLed at once (supervisor, handlers, gst): the next node recovers the files and reports both', async (t) => {
  const node = await startEgressNode(d);
  const ids = await twoJobs(t, 'wholetree', node);
  for (const p of tree(node.process.pid!)) process.kill(p, 'SIGKILL');
  await node.stop();
  t.ok(ids.every((id) => existsSync(path.join(node.tmpDir, id))), 'their scratch is left in tmp_dir');

  const next = await restartOn(node);
  t.teardown(() => next.stop());
  for (const id of ids) {
    const final = await checkReported(t, id, next);
    t.match(final.details, /recovered after node restart; 1 output\(s\) recovered/, final.details);
  }
});

t.test('a node and its handler SIGKILLed under a web egress: the next node kills the Chromium, Xvfb and gst left behind, and recovers the MP4', async (t) => {
  const pages = await serveWebPages();
  t.teardown(() => pages.stop());
  // No spare: the job starts its own display and browser (a spare's are covered by handler-pool's suite).
  const node = await startEgressNode(d, { handler_pool: { idle: 0 }, cpu_cost: { web_cpu_cost: 1 } });
  const started = await client.startWebEgress(pages.url({ id: 'killed-tree', plain: true }), new EncodedFileOutput({ filepath: 'wholetree/web.mp4' }));
  await waitFor('the web egress ACTIVE', async () => ((await info(started.egressId))?.status === EgressStatus.EGRESS_ACTIVE ? true : undefined), 40_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${node.log().slice(-3000)}`);
  });
  await new Promise((r) => setTimeout(r, 4000));
  const all = tree(node.process.pid!);
  const named = all.map((pid) => ({ pid, name: processName(pid) }));
  const nodes = named.filter((p) => p.name === 'node').map((p) => p.pid);
  const detachedNames = ['Xvfb', 'chromium', 'gst-launch-1.0'];
  const detached = named.filter((p) => detachedNames.includes(p.name));
  for (const name of detachedNames) t.ok(detached.some((p) => p.name === name), `the job runs ${name}`);
  // The node's processes die, as under an OOM kill or a KillMode=process stop; what they started in
  // groups of their own does not.
  for (const pid of nodes) process.kill(pid, 'SIGKILL');
  await node.stop();
  const left = () => detached.filter((p) => isAlive(p.pid));
  t.ok(left().length, `with nobody left to kill them, the job's processes run on (${left().map((p) => p.name).join(', ')})`);

  const next = await restartOn(node);
  t.teardown(() => next.stop());
  await waitFor('what the dead job left killed', async () => (left().length ? undefined : true), 20_000).catch(() => undefined);
  t.same(left(), [], 'the next node killed them all');
  t.match(next.log(), /killing what an orphaned egress left running/, 'and said so');
  const final = await waitFor(`${started.egressId} reported`, async () => {
    const i = await info(started.egressId);
    return i && i.status >= EgressStatus.EGRESS_COMPLETE ? i : undefined;
  }, 60_000);
  t.match(final.error, /recovered after node restart/, `reported FAILED: ${final.error}`);
  const file = final.fileResults[0];
  t.ok(file && existsSync(file.location), `with its file: ${file?.location}`);
  if (file) {
    const p = await probe(file.location);
    t.equal(p.streams.find((s) => s.codecType === 'video')?.codecName, 'h264', 'an H.264 recording');
    t.ok(p.duration > 3, `that plays: ${p.duration.toFixed(1)} s`);
  }
});

t.test('a node whose parent process dies without stopping it stops too (its IPC channel closes)', async (t) => {
  const parent = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../support/node-parent.ts', import.meta.url)), JSON.stringify(d)], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => void parent.kill('SIGKILL'));
  const pid = await new Promise<number>((resolve, reject) => {
    let out = '';
    parent.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /node pid (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    parent.once('exit', (code) => reject(new Error(`the parent exited (${code}) before its node was ready: ${out}`)));
  });
  t.ok(isAlive(pid), `the node (pid ${pid}) runs`);
  parent.kill('SIGKILL');
  await waitFor('the orphaned node to stop', async () => (isAlive(pid) ? undefined : true), 20_000);
  t.pass('it stopped once its parent was gone');
});
