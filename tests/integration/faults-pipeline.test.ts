// A pipeline that wedges while it stops: gst-launch SIGSTOPped just before a graceful stop. The
// stop's deadline (the 30 s EOS watchdog) fires, gst is killed, the job ends FAILED `pipeline frozen`
// as the Go egress's does, what it had written is delivered and plays, and nothing of the job is
// left running.
import '../rig/quiet-rtc.ts';
import t from 'tap';
import { existsSync } from 'node:fs';
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

t.test('gst-launch SIGSTOPped during a graceful stop: the deadline fires, FAILED "pipeline frozen", the file delivered', async (t) => {
  const debugPort = await freePort();
  const node = await startEgressNode(d, { debug_handler_port: debugPort });
  t.teardown(() => node.stop());
  const room = `frozen-${Date.now()}`;
  const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: 'frozen-pub', audio: true, video: false });
  t.teardown(() => pub.stop());
  const id = (await client.startTrackEgress(room, new DirectFileOutput({ filepath: 'frozen/{track_id}' }), pub.audioTrackSid!)).egressId;
  await waitFor('ACTIVE', async () => ((await info(id))?.status === EgressStatus.EGRESS_ACTIVE ? true : undefined), 20_000);
  await new Promise((r) => setTimeout(r, 4000));
  const processes = (await jobDetail(debugPort, id)).processes;
  const gst = processes.find((p) => p.name === 'gst-launch-1.0')!;
  process.kill(gst.pid, 'SIGSTOP');

  const stoppedAt = Date.now();
  await client.stopEgress(id);
  const final = await waitFor<EgressInfo>('the end', async () => {
    const i = await info(id);
    return i && i.status >= EgressStatus.EGRESS_COMPLETE ? i : undefined;
  }, 90_000);
  const seconds = (Date.now() - stoppedAt) / 1000;
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
