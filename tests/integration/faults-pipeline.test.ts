// A pipeline that wedges while it stops: gst-launch SIGSTOPped just before a graceful stop. The
// stop's deadline (the 30 s EOS watchdog) fires, gst is killed, the job ends FAILED `pipeline frozen`
// as the Go egress's does, what it had written is delivered and plays, and nothing of the job is
// left running. And a source whose leave never returns (rtc-node's, seen in CI): the recording is
// finished without it, COMPLETE.
import '../rig/quiet-rtc.ts';
import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DirectFileOutput, EgressStatus, type EgressInfo } from '@livekit/protocol';
import { EgressClient } from 'livekit-server-sdk';
import { freePort } from '../rig/ports.ts';
import { probe } from '../rig/probe.ts';
import { disposeRtc, startPublisher } from '../rig/publisher.ts';
import { isAlive, jobDetail } from '../support/debug-api.ts';
import { startEgressNode } from '../support/egress-node.ts';
import { suiteDeployment } from '../support/suite.ts';
import { waitFor } from '../support/wait.ts';

const { deployment: d } = await suiteDeployment(t, { needsWebhooks: false });
const client = new EgressClient(d.httpUrl, d.apiKey, d.apiSecret);
t.teardown(() => disposeRtc());

const info = async (id: string) => (await client.listEgress({ egressId: id }))[0];

/** An audio track egress on `node`, recording a few seconds, ACTIVE. */
async function recording(t: Test, name: string): Promise<string> {
  const room = `${name}-${Date.now()}`;
  const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: `${name}-pub`, audio: true, video: false });
  t.teardown(() => pub.stop());
  const id = (await client.startTrackEgress(room, new DirectFileOutput({ filepath: `${name}/{track_id}` }), pub.audioTrackSid!)).egressId;
  await waitFor('ACTIVE', async () => ((await info(id))?.status === EgressStatus.EGRESS_ACTIVE ? true : undefined), 20_000);
  await new Promise((r) => setTimeout(r, 4000));
  return id;
}

/** StopEgress, then the final EgressInfo and how long after the stop it came. */
async function stopped(id: string, timeoutMs: number): Promise<{ final: EgressInfo; seconds: number }> {
  const stoppedAt = Date.now();
  await client.stopEgress(id);
  const final = await waitFor<EgressInfo>('the end', async () => {
    const i = await info(id);
    return i && i.status >= EgressStatus.EGRESS_COMPLETE ? i : undefined;
  }, timeoutMs);
  return { final, seconds: (Date.now() - stoppedAt) / 1000 };
}

t.test('gst-launch SIGSTOPped during a graceful stop: the deadline fires, FAILED "pipeline frozen", the file delivered', async (t) => {
  const debugPort = await freePort();
  const node = await startEgressNode(d, { debug_handler_port: debugPort });
  t.teardown(() => node.stop());
  const id = await recording(t, 'frozen');
  const processes = (await jobDetail(debugPort, id)).processes;
  const gst = processes.find((p) => p.name === 'gst-launch-1.0')!;
  process.kill(gst.pid, 'SIGSTOP');

  const { final, seconds } = await stopped(id, 90_000);
  t.equal(final.status, EgressStatus.EGRESS_FAILED, `FAILED after ${seconds.toFixed(1)} s`);
  t.equal(final.error, 'pipeline frozen', 'with the Go egress\'s text');
  t.ok(seconds >= 29 && seconds < 60, 'once the 30 s deadline has passed, not before and not much later');
  const file = final.fileResults[0];
  t.ok(file && existsSync(file.location), `what gst wrote is delivered: ${file?.location}`);
  if (file) t.ok((await probe(file.location)).duration > 2.5, 'and plays');
  await waitFor('the job\'s processes to go', async () => (processes.every((p) => !isAlive(p.pid)) ? true : undefined), 10_000);
  t.pass('no process of the job is left');
  t.notMatch(node.log(), /stop deadline exceeded/, 'the handler\'s own watchdog fired; the supervisor\'s backstop was not needed');
  t.equal(node.process.exitCode, null, 'the node goes on');
});

t.test("rtc-node's leave never returns at a stop: the recording is finished without it, COMPLETE", async (t) => {
  const preload = fileURLToPath(new URL('../support/hang-room-leave.mjs', import.meta.url));
  const node = await startEgressNode(d, { handler_pool: { idle: 0 } }, { NODE_OPTIONS: `--import=${preload}` });
  t.teardown(() => node.stop());
  const id = await recording(t, 'leave');
  const { final, seconds } = await stopped(id, 60_000);
  t.equal(final.status, EgressStatus.EGRESS_COMPLETE, `COMPLETE after ${seconds.toFixed(1)} s (${final.error || 'no error'})`);
  t.ok(seconds < 15, 'once the source had its 5 s to close, not at the supervisor\'s 45 s deadline');
  t.match(node.log(), /the source did not close in time/, 'the handler says why it went on');
  const file = final.fileResults[0];
  t.ok(file && existsSync(file.location), `the file is delivered: ${file?.location}`);
  if (file) t.ok((await probe(file.location)).duration > 3, 'and plays');
});
