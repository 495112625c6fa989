// Scale-out: three egress nodes on one Redis behind one livekit-server, each with room for two audio
// track egresses. Checks the Go egress's packing: an idle node bids 0.5, a busy one 1.0 (which wins at
// once), a full one sends no claim at all; so jobs fill one node before the next, and once every node
// is full livekit-server gives up with psrpc's `unavailable` "no response from servers".
import '../rig/quiet-rtc.ts';
import t from 'tap';
import { DirectFileOutput, EgressStatus, type EgressInfo } from '@livekit/protocol';
import { EgressClient, TwirpError } from 'livekit-server-sdk';
import { freePort } from '../rig/ports.ts';
import { disposeRtc, startPublisher, type Publisher } from '../rig/publisher.ts';
import { startEgressNode, type EgressNode } from '../support/egress-node.ts';
import { suiteDeployment } from '../support/suite.ts';
import { waitFor } from '../support/wait.ts';

const NODES = 3;
const JOBS_PER_NODE = 2;
const JOBS = NODES * JOBS_PER_NODE;
/** Seconds; livekit-server gives up on an unclaimed StartEgress after ~20–27 s of retries. */
const API_TIMEOUT_S = 60;

// cpu_capacity 1 × max_cpu_utilization 1 = 1 core per node; 0.5 per track egress: two jobs fill a node.
const NODE_CONFIG = {
  cpu_cost: { cpu_capacity: 1, track_cpu_cost: 0.5, max_cpu_utilization: 1 },
  // The measured load of this shared machine must not decide admission, and a job must stay "full" for
  // livekit-server's whole retry window (~27 s) although an audio job measures ~0.1 core: the test is
  // about bidding across nodes, so admission charges each job its cost (see config.example.yaml).
  test_overrides: { cpu_load: 0, hold_reservations: true },
};

interface JobSummary {
  egressId: string;
  status: string;
  /** The node's last 1 s measurement of the job, in cores. */
  cpu: number | null;
}

const { deployment: d } = await suiteDeployment(t, { needsWebhooks: false });
if (d.flags.stream_only || d.flags.segments_only || d.flags.room_only || d.flags.web_only || d.flags.track_composite_only) {
  t.pass('track file cases filtered out by the deployment flags');
} else {
  const debugPorts = await Promise.all(Array.from({ length: NODES }, () => freePort()));
  const nodes: EgressNode[] = [];
  const publishers: Publisher[] = [];
  t.teardown(async () => {
    await Promise.allSettled(publishers.map((p) => p.stop()));
    await Promise.allSettled(nodes.map((n) => n.stop()));
    await disposeRtc();
  });

  const room = `scale-out-${Date.now()}`;
  const [started] = await Promise.all([
    Promise.all(debugPorts.map((port) => startEgressNode(d, { ...NODE_CONFIG, debug_handler_port: port }))),
    Promise.all(
      Array.from({ length: JOBS }, (_, i) =>
        startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: `pub-${i}`, audio: true, video: false }).then((p) => {
          publishers.push(p);
          return p;
        }),
      ),
    ),
  ]);
  nodes.push(...started);
  t.comment(`node logs: ${nodes.map((n) => n.logPath).join(' ')}`);
  const tracks = publishers.map((p) => p.audioTrackSid!);

  const client = new EgressClient(d.httpUrl, d.apiKey, d.apiSecret, { requestTimeout: API_TIMEOUT_S });
  const getInfo = async (egressId: string): Promise<EgressInfo | undefined> => (await client.listEgress({ egressId }))[0];

  /** Every node's active jobs, read from its debug endpoint. */
  const jobsByNode = async (): Promise<JobSummary[][]> =>
    Promise.all(
      debugPorts.map(async (port) => {
        const res = await fetch(`http://127.0.0.1:${port}/jobs`, { signal: AbortSignal.timeout(5000) });
        if (!res.ok) throw new Error(`GET /jobs on :${port}: HTTP ${res.status}`);
        return (await res.json()) as JobSummary[];
      }),
    );
  const nodeOf = (jobs: JobSummary[][], egressId: string): number => jobs.findIndex((list) => list.some((j) => j.egressId === egressId));
  const counts = (jobs: JobSummary[][]): number[] => jobs.map((list) => list.length);
  /** What each node measures its jobs at: admission charges a young job max(cost, measured). */
  const usage = (jobs: JobSummary[][]): string => jobs.map((list) => `[${list.map((j) => j.cpu?.toFixed(2) ?? '-').join(' ')}]`).join(' ');

  const egressIds: string[] = [];
  /** A 7th egress that should not have started; stopped, not checked. */
  const extra: string[] = [];
  const placement: number[] = [];
  const t0 = Date.now();

  await t.test('six starts, one at a time, pack two per node', async (t) => {
    for (let i = 0; i < JOBS; i++) {
      if (i > 0) t.comment(`  before start ${i + 1}: measured job CPU per node ${usage(await jobsByNode())}`);
      const begun = Date.now();
      const info = await client.startTrackEgress(room, new DirectFileOutput({ filepath: `scale-out/{track_id}-${i}` }), tracks[i]!);
      egressIds.push(info.egressId);
      const answered = Date.now() - begun;
      await waitFor(`${info.egressId} ACTIVE`, async () => ((await getInfo(info.egressId))?.status === EgressStatus.EGRESS_ACTIVE ? true : undefined), 20_000, 50);
      const jobs = await jobsByNode();
      const node = nodeOf(jobs, info.egressId);
      placement.push(node);
      t.comment(`start ${i + 1}: ${info.egressId} on node ${node}: answered after ${answered} ms, ACTIVE after ${Date.now() - begun} ms (t+${((Date.now() - t0) / 1000).toFixed(1)} s); jobs per node [${counts(jobs).join(', ')}]`);
      t.not(node, -1, `start ${i + 1} is listed by exactly one node's GET /jobs`);
      t.equal(jobs.filter((list) => list.some((j) => j.egressId === info.egressId)).length, 1, `start ${i + 1} runs on one node only`);
    }
    t.equal(placement[1], placement[0], 'the 2nd job lands on the node of the 1st (a busy bid of 1.0 beats an idle 0.5)');
    t.equal(placement[3], placement[2], 'the 4th job joins the 3rd on the second node');
    t.equal(placement[5], placement[4], 'the 6th job joins the 5th on the third node');
    t.same([...new Set(placement)].sort(), [0, 1, 2], 'all three nodes took work');
    const jobs = await jobsByNode();
    t.same(counts(jobs), [JOBS_PER_NODE, JOBS_PER_NODE, JOBS_PER_NODE], 'each node ends with exactly 2 jobs (a full node sends no claim)');
  });

  await t.test('a 7th start finds no node with room', async (t) => {
    const begun = Date.now();
    let err: unknown;
    let info: EgressInfo | undefined;
    try {
      info = await client.startTrackEgress(room, new DirectFileOutput({ filepath: 'scale-out/{track_id}-extra' }), tracks[0]!);
    } catch (e) {
      err = e;
    }
    const elapsed = (Date.now() - begun) / 1000;
    if (info) {
      extra.push(info.egressId);
      const jobs = await jobsByNode();
      t.fail(`the 7th start was accepted (${info.egressId} on node ${nodeOf(jobs, info.egressId)} after ${elapsed.toFixed(1)} s, t+${((Date.now() - t0) / 1000).toFixed(1)} s; jobs per node [${counts(jobs).join(', ')}])`);
      return;
    }
    t.comment(`7th start refused after ${elapsed.toFixed(1)} s: ${String(err)}`);
    t.ok(err instanceof TwirpError, 'a Twirp error from livekit-server, not a client-side timeout');
    const twirp = err as TwirpError;
    t.equal(twirp.code, 'unavailable', 'Twirp code unavailable');
    t.equal(twirp.status, 503, 'HTTP 503');
    t.match(twirp.message, /no response from servers/, 'psrpc: no node claimed it');
    t.ok(elapsed < API_TIMEOUT_S, `within the API timeout (${elapsed.toFixed(1)} s < ${API_TIMEOUT_S} s)`);
    t.same(counts(await jobsByNode()), [JOBS_PER_NODE, JOBS_PER_NODE, JOBS_PER_NODE], 'no node took a third job');
  });

  await t.test('every egress stops and ends COMPLETE', async (t) => {
    // An extra egress (only if the 7th start was wrongly accepted) is stopped on its node directly,
    // whatever livekit-server says about it, so that this check stands on its own.
    // A stop that reaches a handler still loading its media modules is answered 404; retried until taken.
    for (const id of extra) {
      const outcome = await waitFor(`the extra egress ${id} to take a stop`, async () => {
        const node = nodeOf(await jobsByNode(), id);
        if (node < 0) return 'gone';
        const res = await fetch(`http://127.0.0.1:${debugPorts[node]}/jobs/${id}/stop`, { method: 'POST', signal: AbortSignal.timeout(30_000) });
        return res.ok ? `stopped through node ${node}'s debug endpoint` : undefined;
      }, 20_000, 250).catch((e: unknown) => String(e));
      t.comment(`extra egress ${id}: ${outcome}`);
    }
    const stops = await Promise.allSettled(egressIds.map((id) => client.stopEgress(id)));
    stops.forEach((r, i) => t.equal(r.status, 'fulfilled', `StopEgress ${egressIds[i]} accepted${r.status === 'rejected' ? ` (${String(r.reason)})` : ''}`));
    const finals = await Promise.all(
      egressIds.map((id) =>
        waitFor(`${id} ended`, async () => {
          const info = await getInfo(id);
          return info && info.status >= EgressStatus.EGRESS_COMPLETE ? info : undefined;
        }, 30_000),
      ),
    );
    for (const f of finals) t.equal(f.status, EgressStatus.EGRESS_COMPLETE, `${f.egressId} ends COMPLETE (error: ${f.error || 'none'})`);
    await waitFor('every node idle', async () => (counts(await jobsByNode()).every((n) => n === 0) ? true : undefined), 15_000);
    t.pass('every node is idle again');
    t.comment(`total ${((Date.now() - t0) / 1000).toFixed(1)} s since the first start`);
  });
}
