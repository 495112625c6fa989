// The warm handler (handler_pool.idle, default 1): a node keeps a spare handler process started, with
// its media modules loaded; a job takes it and a new spare starts behind it; spares go with the node,
// whether it stops or is killed.
import '../rig/quiet-rtc.ts';
import { readdirSync, readFileSync } from 'node:fs';
import t from 'tap';
import { DirectFileOutput, EgressStatus } from '@livekit/protocol';
import { freePort } from '../rig/ports.ts';
import { startPublisher } from '../rig/publisher.ts';
import { isAlive, jobDetail } from '../support/debug-api.ts';
import { startEgressNode } from '../support/egress-node.ts';
import { waitForStatus } from '../support/egress-run.ts';
import { egressSuite } from '../support/suite.ts';
import { waitFor } from '../support/wait.ts';

/** The node's spare handlers: its children started with EGRESS_HANDLER_SPARE=1. */
function spares(nodePid: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === nodePid && readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes('EGRESS_HANDLER_SPARE=1') && isAlive(pid)) found.push(pid);
    } catch {
      // gone while we looked
    }
  }
  return found;
}

const debugPort = await freePort();
const suite = await egressSuite(t, { what: 'handler pool cases', filteredBy: ['stream_only', 'segments_only', 'room_only', 'web_only', 'track_composite_only'], node: { debug_handler_port: debugPort } });
if (suite) {
  const { deployment: d, node, client } = suite;

  t.test('a job starts on the spare handler, and a new spare takes its place', async (t) => {
    const nodePid = node.process.pid!;
    const [spare] = await waitFor('a spare handler', async () => (spares(nodePid).length === 1 ? spares(nodePid) : undefined), 20_000);
    t.ok(spare, `one spare handler waits (pid ${spare})`);
    const room = `pool-${Date.now()}`;
    const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: 'ann', audio: true, video: false });
    t.teardown(() => pub.stop());
    const t0 = Date.now();
    const started = await client.startTrackEgress(room, new DirectFileOutput({ filepath: 'pool/{track_id}' }), pub.audioTrackSid!);
    await waitForStatus(client, started.egressId, (s) => s >= EgressStatus.EGRESS_ACTIVE, 'ACTIVE', 20_000);
    t.comment(`request → ACTIVE seen by polling: ${Date.now() - t0} ms`);
    const detail = await jobDetail(debugPort, started.egressId);
    t.equal(detail.processes.find((p) => p.name === 'handler')?.pid, spare, 'the job runs in the spare');
    const next = await waitFor('a new spare', async () => spares(nodePid).find((p) => p !== spare), 20_000);
    t.not(next, spare, `a new spare started behind it (pid ${next})`);
    await client.stopEgress(started.egressId);
    const final = await waitForStatus(client, started.egressId, (s) => s >= EgressStatus.EGRESS_COMPLETE, 'ended', 30_000);
    t.equal(final.status, EgressStatus.EGRESS_COMPLETE, `COMPLETE (${final.error})`);
    t.ok(Number(final.fileResults[0]?.size) > 0, 'with its file');
    t.notOk(isAlive(spare!), 'the used handler exited with its job');
  });

  t.test('spares go with their node: when it stops, and when it is killed', async (t) => {
    for (const how of ['SIGINT', 'SIGKILL'] as const) {
      const other = await startEgressNode(d, { handler_pool: { idle: 2 } });
      t.teardown(() => other.stop());
      const pid = other.process.pid!;
      const two = await waitFor('two spares', async () => (spares(pid).length === 2 ? spares(pid) : undefined), 20_000);
      t.equal(two.length, 2, `handler_pool.idle: 2 keeps two spares (${how})`);
      await other.stop(how);
      await waitFor(`the spares gone after ${how}`, async () => (two.every((p) => !isAlive(p)) ? true : undefined), 10_000);
      t.pass(`no spare outlives its node (${how})`);
    }
  });
}
