// `npm run bench`: starts a local deployment (redis-server + livekit-server on 127.0.0.1) and egress
// nodes, measures what a node costs and how fast it answers, and prints the figures next to their
// targets:
//   1. the supervisor's idle RSS;
//   2. claim latency: StartEgress REQ published → our ClaimRequest, both seen on Redis by this process;
//   3. request → ACTIVE for an audio track egress, through livekit-server: on an idle node, on a node
//      already running a job (no selection wait), and on an idle node without spare handlers;
//   4. CPU and RSS per audio track egress (4 at once, 20 s, summed over each handler's processes), and how
//      many such jobs a node admits with that cost under measured-load admission, against the Go defaults;
//   5. `egress serve` start → ready, and `egress --help`.
// The nodes run bin/egress as it chooses (dist/ when built and current); EGRESS_RUNTIME forces one.
// Everything is stopped before it exits.
import '../tests/rig/quiet-rtc.ts';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import os from 'node:os';
import { Redis } from 'ioredis';
import { DirectFileOutput, EgressInfo, EgressStatus, TrackEgressRequest } from '@livekit/protocol';
import { EgressClient } from 'livekit-server-sdk';
import { EgressError } from '../shared/src/errors.ts';
import type { CallOptions } from '../shared/src/psrpc/client.ts';
import { decodeFrame } from '../shared/src/psrpc/frame.ts';
import { StartEgressRequest } from '../shared/src/proto/rpc.ts';
import { startLocalDeployment } from '../tests/rig/deployment.ts';
import { DEFAULT_API_KEY, DEFAULT_API_SECRET } from '../tests/rig/livekit.ts';
import { disposeRtc, startPublisher, type Publisher } from '../tests/rig/publisher.ts';
import { startWebhookReceiver, type WebhookSink } from '../tests/rig/webhooks.ts';
import { egressInternalClient, START_SELECTION } from '../tests/support/psrpc.ts';
import { REFILL_DELAY_MS } from '../supervisor/src/fleet/handler-pool.ts';
import { makeLog, printTable, ratioText, runBench, spread, startNode, waitUntil } from './common.ts';
import { busyBetween, CLK_TCK, cpuByGroup, cpuOfPid, loadAverage, sparePids, statusBytes, systemTimes } from './proc.ts';

// ---- targets and sizes ----
const TARGET_IDLE_RSS_MB = 80;
const TARGET_CLAIM_P50_MS = 5;
const TARGET_ACTIVE_P50_S = 0.8;
const TARGET_BUSY_ACTIVE_P50_S = 0.3;
const TARGET_JOB_RSS_MB = 80;
const TARGET_READY_MS = 200;
const TARGET_HELP_S = 0.3;
/** The Go egress on this machine (issue 11): its figures, for the ratio. */
const GO_READY_MS = 115;
const GO_JOB_RSS_MB = 78;
const READY_RUNS = 5;
const HELP_RUNS = 5;
const IDLE_WAIT_MS = 3_000;
const CLAIM_SAMPLES = 20;
const ACTIVE_RUNS = 5;
const CPU_JOBS = 4;
const CPU_WINDOW_MS = 20_000;
/** Go egress defaults: a track egress costs 0.5 core, a busy node keeps 20% headroom. */
const GO_TRACK_COST = 0.5;
const MAX_CPU_UTILIZATION = 0.8;
/** A refused start is tried once more this much later before the node counts as full. */
const REFUSAL_CONFIRM_MS = 3_000;
/** Stop filling a node after this many jobs, whatever admission says. */
const FILL_CAP = 24;

const MACHINE_CPUS = os.availableParallelism();

// StartEgress as livekit-server selects.
const START_OPTIONS: CallOptions = { timeoutMs: 30_000, selection: START_SELECTION };

const REQ_CHANNEL = 'EgressInternal|StartEgress|REQ';
const RCLAIM_CHANNEL = 'EgressInternal|StartEgress|RCLAIM';
const CLAIM_PATTERN = 'EgressInternal|*|CLAIM';

const log = makeLog('bench');

// ---- small helpers ----

/** VmRSS of a bare node process (optionally with the tsx loader, as bin/egress runs) after `waitMs`. */
async function bareNodeRss(withTsx: boolean, waitMs: number): Promise<number> {
  const loader = fileURLToPath(new URL('../node_modules/tsx/dist/loader.mjs', import.meta.url));
  const args = [...(withTsx ? ['--import', loader] : []), '-e', 'setInterval(() => {}, 1e6)'];
  const child = spawn(process.execPath, args, { stdio: 'ignore' });
  try {
    await sleep(waitMs);
    return statusBytes(child.pid!, 'VmRSS') ?? NaN;
  } finally {
    child.kill('SIGKILL');
  }
}

const EGRESS_BIN = fileURLToPath(new URL('../bin/egress', import.meta.url));

/** Wall time of `egress --help`, as an operator runs it. */
function helpSeconds(): number {
  const t0 = performance.now();
  const r = spawnSync(EGRESS_BIN, ['--help'], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`egress --help exited ${r.status}`);
  return (performance.now() - t0) / 1000;
}

/** Summed VmRSS of the given processes (shared pages count in each). */
const rssOf = (pids: number[]) => pids.reduce((sum, pid) => sum + (statusBytes(pid, 'VmRSS') ?? 0), 0);

const egressId = () => `EG_${randomBytes(9).toString('base64url').replace(/[-_]/g, 'x').slice(0, 12)}`;

// ---- claim watcher: REQ and CLAIM as seen on Redis by this process ----

interface ClaimSample {
  requestId: string;
  clientId: string;
  claimMs: number;
  affinity: number;
  /** REQ → livekit-server's (or our client's) ClaimResponse: the selection wait. */
  chosenMs?: number;
}

class ClaimWatch {
  private readonly sub: Redis;
  private readonly requests = new Map<string, { at: bigint; clientId: string }>();
  readonly samples = new Map<string, ClaimSample>();

  constructor(address: string) {
    const i = address.lastIndexOf(':');
    this.sub = new Redis({ host: address.slice(0, i), port: Number(address.slice(i + 1)), lazyConnect: true });
    this.sub.on('messageBuffer', (channel: Buffer, payload: Buffer) => {
      const at = process.hrtime.bigint();
      const name = channel.toString();
      if (name === REQ_CHANNEL) {
        const req = decodeFrame('Request', payload);
        this.requests.set(req.requestId, { at, clientId: req.clientId });
      } else if (name === RCLAIM_CHANNEL) {
        const choice = decodeFrame('ClaimResponse', payload);
        const req = this.requests.get(choice.requestId);
        const sample = this.samples.get(choice.requestId);
        if (req && sample && sample.chosenMs === undefined) sample.chosenMs = Number(at - req.at) / 1e6;
      }
    });
    this.sub.on('pmessageBuffer', (_pattern: Buffer, _channel: Buffer, payload: Buffer) => {
      const at = process.hrtime.bigint();
      const claim = decodeFrame('ClaimRequest', payload);
      const req = this.requests.get(claim.requestId);
      if (!req || this.samples.has(claim.requestId)) return;
      this.samples.set(claim.requestId, { requestId: claim.requestId, clientId: req.clientId, claimMs: Number(at - req.at) / 1e6, affinity: claim.affinity });
    });
  }

  async start(): Promise<void> {
    await this.sub.connect();
    await this.sub.subscribe(REQ_CHANNEL, RCLAIM_CHANNEL);
    await this.sub.psubscribe(CLAIM_PATTERN);
  }

  /** Requests seen so far that got no claim at all. */
  unclaimed(clientId?: string): number {
    let n = 0;
    for (const [id, r] of this.requests) if ((!clientId || r.clientId === clientId) && !this.samples.has(id)) n++;
    return n;
  }

  close(): void {
    this.sub.disconnect();
  }
}

// ---- the table ----

interface Row {
  metric: string;
  measured: string;
  target: string;
  ratio: string;
}
const rows: Row[] = [];
const row = (metric: string, measured: string, target = '', ratio = '') => rows.push({ metric, measured, target, ratio });

function report(): void {
  console.log('');
  console.log(`load average at the end: ${loadAverage()} (anything else running on this machine counts in the measured-load figures)`);
  console.log(`egress bench: ${MACHINE_CPUS} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), ${(os.totalmem() / 1024 ** 3).toFixed(1)} GB, node ${process.version}`);
  printTable([['metric', 'measured', 'target / baseline', 'ratio'], ...rows.map((r) => [r.metric, r.measured, r.target, r.ratio])]);
  console.log('');
}

// ---- main ----

async function main(cleanups: (() => Promise<unknown> | unknown)[]): Promise<void> {
  log('starting redis-server, livekit-server and a webhook receiver');
  const webhooks: WebhookSink = await startWebhookReceiver(DEFAULT_API_KEY, DEFAULT_API_SECRET);
  cleanups.push(() => webhooks.stop());
  const d = await startLocalDeployment({ webhookUrl: webhooks.url });
  cleanups.push(() => d.stop());

  const watch = new ClaimWatch(d.redis.address);
  await watch.start();
  cleanups.push(() => watch.close());

  const psrpc = await egressInternalClient(d);
  const rpc = psrpc.rpc;
  cleanups.push(() => psrpc.close());

  const client = new EgressClient(d.httpUrl, d.apiKey, d.apiSecret, { requestTimeout: 60 });
  const room = `bench-${Date.now()}`;

  // The measuring node: the launcher's default cpu_load 0 keeps this machine's load out of admission,
  // and a 0.2-core track cost lets CPU_JOBS run at once on one node.
  log('starting the measuring node and a publisher (one audio track)');
  const [first, pub] = await Promise.all([
    startNode(d, { cpu_cost: { track_cpu_cost: 0.2 } }),
    startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: 'bench-pub', audio: true, video: false }),
  ]);
  let m = first;
  cleanups.push(() => m.stop());
  cleanups.push(async () => {
    await (pub as Publisher).stop();
    await disposeRtc();
  });
  const trackId = pub.audioTrackSid!;

  // 1. idle RSS, next to bare node processes for scale
  log(`load average now: ${loadAverage()}`);
  const [, bareRss, tsxRss] = await Promise.all([sleep(IDLE_WAIT_MS), bareNodeRss(false, IDLE_WAIT_MS), bareNodeRss(true, IDLE_WAIT_MS)]);
  const rss = statusBytes(m.pid, 'VmRSS')!;
  const hwm = statusBytes(m.pid, 'VmHWM');
  const rssMb = rss / 1024 ** 2;
  log(`idle RSS of the supervisor (pid ${m.pid}): ${rssMb.toFixed(1)} MB (peak ${((hwm ?? 0) / 1024 ** 2).toFixed(1)} MB)`);
  row('supervisor idle RSS (VmRSS, 3 s after ready)', `${rssMb.toFixed(1)} MB`, `≤ ${TARGET_IDLE_RSS_MB} MB`, ratioText(rssMb, TARGET_IDLE_RSS_MB));
  const spares = sparePids(m.pid);
  const spareMb = spares.reduce((sum, pid) => sum + (statusBytes(pid, 'VmRSS') ?? 0), 0) / 1024 ** 2;
  row(`  and its spare handler${spares.length === 1 ? '' : 's'} (handler_pool.idle ${spares.length}), counted as a job`, `${spareMb.toFixed(1)} MB`);
  const bareMb = bareRss / 1024 ** 2;
  const tsxMb = tsxRss / 1024 ** 2;
  row('  baseline: bare node, idle', `${bareMb.toFixed(1)} MB`, `supervisor is ${ratioText(rssMb, bareMb)} of it`);
  row('  baseline: node + tsx loader (as bin/egress), idle', `${tsxMb.toFixed(1)} MB`, `supervisor is ${ratioText(rssMb, tsxMb)} of it`);

  // 2. claim latency, with our own psrpc client. A minimum affinity above any bid means no claim is
  //    ever chosen, so no job starts: the node only bids, exactly as for a real StartEgress.
  log(`claim latency: ${CLAIM_SAMPLES} StartEgress requests through the project's psrpc client`);
  const probeReq = () =>
    new StartEgressRequest({
      egressId: egressId(),
      roomName: room,
      request: { case: 'track', value: new TrackEgressRequest({ roomName: room, trackId, output: { case: 'file', value: new DirectFileOutput({ filepath: 'bench/probe-{track_id}' }) } }) },
    });
  for (let i = 0; i < CLAIM_SAMPLES; i++) {
    try {
      await rpc.call('StartEgress', '', probeReq(), EgressInfo, { timeoutMs: 500, selection: { minimumAffinity: 2, affinityTimeoutMs: 150 } });
      throw new Error('a claim-only probe was answered');
    } catch (err) {
      if (!(err instanceof EgressError) || err.code !== 'unavailable') throw err;
    }
    await sleep(100);
  }
  const probeClaims = [...watch.samples.values()].filter((s) => s.clientId === rpc.clientId).map((s) => s.claimMs);
  if (probeClaims.length < CLAIM_SAMPLES) log(`warning: only ${probeClaims.length}/${CLAIM_SAMPLES} probes were claimed (${watch.unclaimed(rpc.clientId)} unclaimed)`);
  const cl = spread(probeClaims);
  log(`claim latency (probes): p50 ${cl.p50.toFixed(2)} ms, p90 ${cl.p90.toFixed(2)} ms, max ${cl.max.toFixed(2)} ms`);
  row(`claim latency, REQ → CLAIM on Redis (${cl.n} psrpc probes) p50`, `${cl.p50.toFixed(2)} ms`, `≤ ${TARGET_CLAIM_P50_MS} ms`, ratioText(cl.p50, TARGET_CLAIM_P50_MS));
  row('  … p90 / max', `${cl.p90.toFixed(2)} / ${cl.max.toFixed(2)} ms`);

  // 3. request → ACTIVE through livekit-server, one at a time.
  log(`request → ACTIVE: ${ACTIVE_RUNS} audio track egresses, one at a time`);
  const getInfo = async (id: string) => (await client.listEgress({ egressId: id }))[0];
  const stopAndWait = async (id: string): Promise<EgressInfo> => {
    await client.stopEgress(id);
    return waitUntil(`${id} to end`, async () => {
      const info = await getInfo(id);
      return info && info.status >= EgressStatus.EGRESS_COMPLETE ? info : undefined;
    }, 30_000, 100);
  };
  /** ACTIVE_RUNS audio track egresses, one at a time, on whichever node runs now. */
  const activeRuns = async (tag: string) => {
    const answered: number[] = [];
    const polled: number[] = [];
    const hooked: number[] = [];
    const selectionWaits: number[] = [];
    const lkStartClaims: number[] = [];
    for (let i = 0; i < ACTIVE_RUNS; i++) {
      const before = new Set(webhooks.events.map((e) => e.egressInfo?.egressId));
      const hook = webhooks
        .waitFor((e) => e.event === 'egress_updated' && e.egressInfo?.status === EgressStatus.EGRESS_ACTIVE && !before.has(e.egressInfo.egressId), 30_000)
        .then((e) => ({ id: e.egressInfo!.egressId, at: performance.now() }));
      const claimsBefore = new Set(watch.samples.keys());
      const t0 = performance.now();
      const info = await client.startTrackEgress(room, new DirectFileOutput({ filepath: `bench/active-${tag}-${i}-{track_id}` }), trackId);
      const tAnswer = performance.now();
      const tActive = await waitUntil(`${info.egressId} ACTIVE`, async () => ((await getInfo(info.egressId))?.status === EgressStatus.EGRESS_ACTIVE ? performance.now() : undefined), 30_000, 20);
      const h = await hook;
      if (h.id !== info.egressId) throw new Error(`ACTIVE webhook for ${h.id}, expected ${info.egressId}`);
      answered.push((tAnswer - t0) / 1000);
      polled.push((tActive - t0) / 1000);
      hooked.push((h.at - t0) / 1000);
      for (const [id, s] of watch.samples) {
        if (claimsBefore.has(id) || s.clientId === rpc.clientId) continue;
        lkStartClaims.push(s.claimMs);
        if (s.chosenMs !== undefined) selectionWaits.push(s.chosenMs);
      }
      log(`  ${tag} run ${i + 1}: answered ${(tAnswer - t0).toFixed(0)} ms, ACTIVE (poll) ${(tActive - t0).toFixed(0)} ms, ACTIVE (webhook) ${(h.at - t0).toFixed(0)} ms`);
      const end = await stopAndWait(info.egressId);
      if (end.status !== EgressStatus.EGRESS_COMPLETE) log(`  warning: ${info.egressId} ended ${EgressStatus[end.status]}: ${end.error}`);
      await sleep(REFILL_DELAY_MS + 2_000); // the pool's next spare starts and warms up, as it would between real jobs
    }
    return { answered, polled, hooked, selectionWaits, lkStartClaims };
  };
  const { answered, polled, hooked, selectionWaits, lkStartClaims } = await activeRuns('pool');
  // On a busy node: one job already running, so the node bids 1.0 and livekit-server takes its claim
  // without the wait it gives an idle (0.5) bid.
  log(`request → ACTIVE on a busy node: ${ACTIVE_RUNS} more while one job runs`);
  const background = await client.startTrackEgress(room, new DirectFileOutput({ filepath: 'bench/busy-background-{track_id}' }), trackId);
  await waitUntil(`${background.egressId} ACTIVE`, async () => ((await getInfo(background.egressId))?.status === EgressStatus.EGRESS_ACTIVE ? true : undefined), 30_000, 100);
  await sleep(REFILL_DELAY_MS + 2_000);
  const busyRuns = await activeRuns('busy');
  const backgroundEnd = await stopAndWait(background.egressId);
  if (backgroundEnd.status !== EgressStatus.EGRESS_COMPLETE) log(`  warning: ${background.egressId} ended ${EgressStatus[backgroundEnd.status]}: ${backgroundEnd.error}`);
  // The same on a node without spares (handler_pool.idle 0: each job forks its handler), for the ratio.
  log('request → ACTIVE again on a node with handler_pool.idle 0');
  await m.stop();
  const cold = await startNode(d, { cpu_cost: { track_cpu_cost: 0.2 }, handler_pool: { idle: 0 } });
  cleanups.push(() => cold.stop());
  const coldRuns = await activeRuns('no-pool');
  await cold.stop();
  m = await startNode(d, { cpu_cost: { track_cpu_cost: 0.2 } });
  const act = spread(polled);
  const hk = spread(hooked);
  const ans = spread(answered);
  row(`request → ACTIVE, audio track egress (${act.n} runs, listEgress every 20 ms) p50`, `${act.p50.toFixed(3)} s`, `≤ ${TARGET_ACTIVE_P50_S.toFixed(1)} s`, ratioText(act.p50, TARGET_ACTIVE_P50_S));
  row('  … p90 / max', `${act.p90.toFixed(3)} / ${act.max.toFixed(3)} s`);
  const coldAct = spread(coldRuns.polled);
  row('  baseline: the same with handler_pool.idle 0 (a handler forked per job) p50', `${coldAct.p50.toFixed(3)} s`, `the pool takes ${ratioText(act.p50, coldAct.p50)} of it`);
  row('  request → ACTIVE webhook (egress_updated) p50', `${hk.p50.toFixed(3)} s`, `≤ ${TARGET_ACTIVE_P50_S.toFixed(1)} s`, ratioText(hk.p50, TARGET_ACTIVE_P50_S));
  row('  request → StartEgress answered (STARTING) p50', `${ans.p50.toFixed(3)} s`);
  if (selectionWaits.length) {
    const sw = spread(selectionWaits);
    row('  of which livekit-server selection (REQ → RCLAIM) p50', `${sw.p50.toFixed(0)} ms`, '500 ms short-circuit for an idle (0.5) bid');
  }
  if (lkStartClaims.length) {
    const lc = spread(lkStartClaims);
    row(`claim latency, livekit-server StartEgress (${lc.n} requests) p50 / max`, `${lc.p50.toFixed(2)} / ${lc.max.toFixed(2)} ms`, `≤ ${TARGET_CLAIM_P50_MS} ms`, ratioText(lc.p50, TARGET_CLAIM_P50_MS));
  }
  const busyAct = spread(busyRuns.polled);
  row(`request → ACTIVE on a busy node (one job running; ${busyAct.n} runs) p50`, `${busyAct.p50.toFixed(3)} s`, `≤ ${TARGET_BUSY_ACTIVE_P50_S.toFixed(1)} s`, ratioText(busyAct.p50, TARGET_BUSY_ACTIVE_P50_S));
  row('  … p90 / max', `${busyAct.p90.toFixed(3)} / ${busyAct.max.toFixed(3)} s`);
  row('  request → StartEgress answered (STARTING) p50', `${spread(busyRuns.answered).p50.toFixed(3)} s`);
  if (busyRuns.selectionWaits.length) row('  of which livekit-server selection (REQ → RCLAIM) p50', `${spread(busyRuns.selectionWaits).p50.toFixed(0)} ms`, 'none for a busy (1.0) bid');

  // 4a. CPU per audio track egress: CPU_JOBS at once, CPU_WINDOW_MS, utime+stime of each handler's process groups.
  log(`CPU: ${CPU_JOBS} concurrent audio track egresses for ${CPU_WINDOW_MS / 1000} s`);
  const cpuIds: string[] = [];
  for (let i = 0; i < CPU_JOBS; i++) cpuIds.push((await client.startTrackEgress(room, new DirectFileOutput({ filepath: `bench/cpu-${i}-{track_id}` }), trackId)).egressId);
  await Promise.all(cpuIds.map((id) => waitUntil(`${id} ACTIVE`, async () => ((await getInfo(id))?.status === EgressStatus.EGRESS_ACTIVE ? true : undefined), 30_000, 100)));
  await sleep(3000); // past start-up: joining, subscribing, pipeline warm-up
  const groupsOf = new Map<string, number[]>();
  const pidsOf = new Map<string, { pid: number; name: string }[]>();
  for (const id of cpuIds) {
    const detail = await m.job(id);
    if (!detail) throw new Error(`${id} is not listed by the node's debug endpoint`);
    groupsOf.set(id, [...new Set(detail.processes.map((p) => p.pgid))]);
    pidsOf.set(id, detail.processes);
  }
  const allGroups = [...groupsOf.values()].flat();
  const c0 = cpuByGroup(allGroups);
  const s0 = cpuOfPid(m.pid) ?? 0;
  const sys0 = systemTimes();
  const w0 = performance.now();
  await sleep(CPU_WINDOW_MS);
  const c1 = cpuByGroup(allGroups);
  const s1 = cpuOfPid(m.pid) ?? 0;
  const machineBusy = busyBetween(sys0, systemTimes());
  const window = (performance.now() - w0) / 1000;
  const nodeSays = await m.jobs();
  const perJob: number[] = [];
  for (const [id, groups] of groupsOf) {
    const used = groups.reduce((sum, g) => sum + (c1.get(g)! - c0.get(g)!), 0);
    perJob.push(used / window);
    const own = nodeSays.find((j) => j.egressId === id)?.cpu;
    log(`  ${id}: ${(used / window).toFixed(3)} cores over ${groups.length} process group(s) [${groups.join(', ')}]; the node's own last 1 s sample: ${own?.toFixed(3) ?? 'n/a'}`);
  }
  const jobProcesses = [...pidsOf.values()];
  const jobRss = spread(jobProcesses.map((ps) => rssOf(ps.map((p) => p.pid)) / 1024 ** 2));
  const rssNamed = (name: string) => spread(jobProcesses.map((ps) => rssOf(ps.filter((p) => p.name === name).map((p) => p.pid)) / 1024 ** 2));
  const [handlerRss, gstRss] = [rssNamed('handler'), rssNamed('gst-launch-1.0')];
  const supervisorCores = (s1 - s0) / window;
  const cpu = spread(perJob);
  log(`  per job: mean ${cpu.mean.toFixed(3)}, min ${cpu.min.toFixed(3)}, max ${cpu.max.toFixed(3)} cores; supervisor ${supervisorCores.toFixed(3)} cores (CLK_TCK ${CLK_TCK})`);
  for (const id of cpuIds) {
    const end = await stopAndWait(id);
    if (end.status !== EgressStatus.EGRESS_COMPLETE) log(`  warning: ${id} ended ${EgressStatus[end.status]}: ${end.error}`);
  }
  await m.stop();
  row(`CPU per audio track egress (${CPU_JOBS} at once, ${CPU_WINDOW_MS / 1000} s) mean`, `${cpu.mean.toFixed(3)} cores`, `Go default cost ${GO_TRACK_COST} core`, ratioText(cpu.mean, GO_TRACK_COST));
  row('  … min / max per job', `${cpu.min.toFixed(3)} / ${cpu.max.toFixed(3)} cores`);
  row(`RSS per audio track egress (handler + gst-launch, ${jobRss.n} jobs) mean`, `${jobRss.mean.toFixed(1)} MB`, `≤ ${TARGET_JOB_RSS_MB} MB; Go ${GO_JOB_RSS_MB} MB`, ratioText(jobRss.mean, TARGET_JOB_RSS_MB));
  row('  … min / max per job', `${jobRss.min.toFixed(1)} / ${jobRss.max.toFixed(1)} MB`);
  row('  … of which the handler / gst-launch (mean)', `${handlerRss.mean.toFixed(1)} / ${gstRss.mean.toFixed(1)} MB`);
  row(`  supervisor CPU while running ${CPU_JOBS} jobs`, `${supervisorCores.toFixed(3)} cores`);
  row('  whole machine busy during that window', `${(machineBusy * MACHINE_CPUS).toFixed(2)} of ${MACHINE_CPUS} cores`);

  // 4b. How many jobs fit: computed, then verified on a node measuring its real load.
  const measuredCost = Math.max(0.005, Math.ceil(cpu.mean * 1000) / 1000);
  const predicted = (cost: number) => Math.max(1, Math.floor((MACHINE_CPUS * MAX_CPU_UTILIZATION) / cost + 1e-9));
  const fill = async (label: string, cost: number) => {
    log(`filling a node with track_cpu_cost ${cost} and measured load (test_overrides: {})`);
    const n = await startNode(d, { cpu_cost: { track_cpu_cost: cost, max_cpu_utilization: MAX_CPU_UTILIZATION }, test_overrides: {} });
    cleanups.push(() => n.stop());
    await sleep(2500); // a few samples of the real load before the first bid
    const sysStart = systemTimes();
    let accepted = 0;
    let refusal = '';
    for (let i = 0; i < FILL_CAP; i++) {
      const req = new StartEgressRequest({
        egressId: egressId(),
        roomName: room,
        request: { case: 'track', value: new TrackEgressRequest({ roomName: room, trackId, output: { case: 'file', value: new DirectFileOutput({ filepath: `bench/fill-${label}-${i}-{track_id}` }) } }) },
      });
      // A refusal counts once it repeats REFUSAL_CONFIRM_MS later: one busy second elsewhere on the
      // machine should not end the count.
      let answered = false;
      for (let attempt = 0; attempt < 2 && !answered; attempt++) {
        if (attempt > 0) await sleep(REFUSAL_CONFIRM_MS);
        const before = await n.health();
        try {
          await rpc.call('StartEgress', '', req, EgressInfo, START_OPTIONS);
          answered = true;
        } catch (err) {
          if (!(err instanceof EgressError && err.code === 'unavailable')) throw err;
          refusal = `${err.message}; node reported ${before.CpuLoad.toFixed(2)} cores available for a ${cost}-core job`;
          log(`  ${label}: job ${accepted + 1} refused (${attempt === 0 ? 'first time' : 'confirmed'}): ${refusal}`);
        }
      }
      if (!answered) break;
      refusal = '';
      accepted++;
      await waitUntil(`${req.egressId} ACTIVE`, async () => ((await n.job(req.egressId))?.status === 'EGRESS_ACTIVE' ? true : undefined), 30_000, 100);
      await sleep(2000); // let the node's 1 s monitor see the new job at steady state
      log(`  ${label}: job ${accepted} ACTIVE; node reports ${(await n.health()).CpuLoad.toFixed(2)} cores available`);
    }
    const busy = busyBetween(sysStart, systemTimes()) * MACHINE_CPUS;
    const running = (await n.jobs()).length;
    log(`  ${label}: ${accepted} accepted, ${running} still running${refusal ? `; then refused: ${refusal}` : `; stopped at the cap of ${FILL_CAP}`}; machine busy ${busy.toFixed(2)} cores meanwhile, load average ${loadAverage()}`);
    if (running !== accepted) log(`  warning: ${accepted - running} job(s) ended while filling (overload guard?)`);
    await n.stop();
    return { accepted, refused: refusal !== '', busy };
  };
  const measuredFill = await fill('measured-cost', measuredCost);
  const goFill = await fill('go-defaults', GO_TRACK_COST);
  const countText = (f: { accepted: number; refused: boolean; busy: number }) =>
    `${f.accepted}${f.refused ? '' : `+ (cap ${FILL_CAP})`}; machine busy ${f.busy.toFixed(2)}/${MACHINE_CPUS} cores`;
  row(
    `jobs admitted, track cost = measured ${measuredCost} core (computed ${MACHINE_CPUS} × ${MAX_CPU_UTILIZATION} / ${measuredCost})`,
    `${countText(measuredFill)} (computed ${predicted(measuredCost)})`,
    `Go defaults: ${predicted(GO_TRACK_COST)}`,
    ratioText(measuredFill.accepted, predicted(GO_TRACK_COST)),
  );
  row(`jobs admitted, Go default cost ${GO_TRACK_COST} core, verified`, countText(goFill), `computed ${predicted(GO_TRACK_COST)}`, ratioText(goFill.accepted, predicted(GO_TRACK_COST)));

  // 5. Start-up: `egress serve` until its ready line (Redis connected, endpoints open, bidding), one
  //    node at a time with nothing else running; then `egress --help`.
  log(`start → ready: ${READY_RUNS} nodes, one at a time; load average now: ${loadAverage()}`);
  const readies: number[] = [];
  for (let i = 0; i < READY_RUNS; i++) {
    const n = await startNode(d, {});
    cleanups.push(() => n.stop());
    readies.push(n.node.readyMs);
    await n.stop();
  }
  const ready = spread(readies);
  log(`  start → ready: ${readies.map((ms) => ms.toFixed(0)).join(', ')} ms`);
  row(`egress serve start → ready (${ready.n} starts) p50`, `${ready.p50.toFixed(0)} ms`, `≤ ${TARGET_READY_MS} ms; Go ≤ ${GO_READY_MS} ms`, ratioText(ready.p50, TARGET_READY_MS));
  row('  … min / max', `${ready.min.toFixed(0)} / ${ready.max.toFixed(0)} ms`);
  const helps = Array.from({ length: HELP_RUNS }, helpSeconds);
  const help = spread(helps);
  row(`egress --help (${help.n} runs, EGRESS_RUNTIME=${process.env.EGRESS_RUNTIME ?? '(unset)'}) p50`, `${help.p50.toFixed(3)} s`, `≤ ${TARGET_HELP_S} s`, ratioText(help.p50, TARGET_HELP_S));
  row('  … min / max', `${help.min.toFixed(3)} / ${help.max.toFixed(3)} s`);
}

await runBench('bench', main, report);
