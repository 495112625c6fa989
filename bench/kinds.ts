// `npm run bench:kinds`: what each kind of egress costs. Starts a local deployment (redis-server +
// livekit-server on 127.0.0.1) and one egress node, then runs these jobs ONE AT A TIME, each in a room
// of its own with its own publishers (rtc-node, in this process), on an otherwise idle node:
//   1. audio track egress (one Opus track → OGG): the baseline;
//   2. track composite 720p30 (audio + video track of one publisher → MP4 H.264 1280x720 30 fps + AAC),
//      the rig's marker picture;
//   3. the same with a camera-like picture (the marker under moving luma noise);
//   4. the track composite again, published by the pion client (its audio and video sent in sync);
//   5. participant egress (camera + microphone) → MP4;
//   6. the participant again, to MP4 + HLS + thumbnails from one encode;
//   7. the participant again, to MP4 + HLS + two RTMP servers (nginx-rtmp) from one encode;
//   8. audio-only room composite mixing 3 participants (tones 300/500/700 Hz) → OGG;
//   and track egress of a camera-like 720p30 VP8 / H.264 track at 2.5 Mb/s, decoded and encoded again;
//   then on a second node with remux_tracks on, the audio and both video tracks remuxed (zero-transcode),
//   each shown against its decoding run, with how many such jobs a node admits at the measured cost.
// Jobs 6 and 7 are also shown against job 5, the same source to a file alone.
// Then the stream recovery times (RTMP, camera-like 720p): how long a killed server that comes back
// takes to be streamed to again, and how long a stalled server (SIGSTOP) takes to be dropped.
// For each: CPU cores (utime+stime of every process in the job's process groups, handler + gst-launch,
// from /proc, over WINDOW_MS after WARMUP_MS), peak RSS (sum over those processes, sampled each second;
// and the sum of their VmHWM), the load average before it, how busy the whole machine was, and the
// ratio to the baseline. The track composite outputs (2, 3, 4) are checked for A/V offsets (avSync).
// A job that fails is reported and the others still run. Everything is stopped before it exits.
import '../tests/rig/quiet-rtc.ts';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import os from 'node:os';
import {
  DirectFileOutput,
  EgressInfo,
  EgressStatus,
  EncodedFileOutput,
  EncodedFileType,
  EncodingOptionsPreset,
  ImageOutput,
  SegmentedFileOutput,
  StreamInfo_Status,
  StreamOutput,
  StreamProtocol,
} from '@livekit/protocol';
import { EgressClient } from 'livekit-server-sdk';
import { startLocalDeployment, type LocalDeployment } from '../tests/rig/deployment.ts';
import { avSync, type AvSync } from '../tests/rig/probe.ts';
import { startPionPublisher } from '../tests/rig/pion-publisher.ts';
import { disposeRtc, startPublisher, type Publisher as RtcPublisher, type PublisherOptions } from '../tests/rig/publisher.ts';
import { startRtmpServer, type RtmpServer } from '../tests/rig/rtmp-server.ts';
import { LOOPBACK_CHROME } from '../tests/support/web-job.ts';

/** What a job needs of a publisher, whichever client it is. */
type Publisher = Pick<RtcPublisher, 'audioTrackSid' | 'videoTrackSid' | 'stop'>;
import { makeLog, printTable, ratioText, runBench, startNode, waitUntil, type BenchNode } from './common.ts';
import { allStats, busyBetween, cpuByGroup, cpuOfPid, loadAverage, pidsNamed, pssBytes, statusBytes, systemTimes } from './proc.ts';

const WARMUP_MS = 3_000;
/** BENCH_WINDOW_S lengthens the window (and so the recordings) to see A/V drift over a long recording. */
const WINDOW_MS = Number(process.env.BENCH_WINDOW_S ?? 30) * 1000;
/** BENCH_ONLY: run only the jobs whose name contains one of its comma-separated parts (the baseline always runs, for the ratios). */
const ONLY = process.env.BENCH_ONLY?.split(',');
const chosen = (name: string) => !ONLY || ONLY.some((part) => name.includes(part));
/** BENCH_CHROME_FLAGS: a JSON object of extra chrome_flags, to measure a Chromium switch (`{"disable-gpu-compositing": true}`). */
const EXTRA_CHROME_FLAGS = JSON.parse(process.env.BENCH_CHROME_FLAGS ?? '{}') as Record<string, string | boolean>;
const RSS_SAMPLE_MS = 1_000;
/** A quiet pause between jobs, so one job's tail is not in the next one's load average. */
const SETTLE_MS = 5_000;
const ACTIVE_TIMEOUT_MS = 40_000;
const END_TIMEOUT_MS = 60_000;
const MACHINE_CPUS = os.availableParallelism();
/** The default max_cpu_utilization admission keeps under. */
const MAX_CPU_UTILIZATION = 0.8;

const log = makeLog('bench:kinds');

interface JobSpec {
  name: string;
  /** Publishers of the job's room. */
  publishers: Partial<PublisherOptions>[];
  start(client: EgressClient, room: string, pubs: Publisher[]): Promise<EgressInfo>;
  /** Check the output for A/V offsets. */
  sync?: boolean;
  /** Publish with the pion client (files, audio and video on one clock) instead of rtc-node. */
  pion?: boolean;
  /** Also shown as a ratio to this job (the same source to a file alone). */
  versus?: string;
  /** Shared daemons the job uses (by command name): their CPU during the window is the job's too. */
  daemons?: string[];
  /** Run on a node with remux_tracks on (the zero-transcode track path), after the others. */
  remux?: boolean;
}

/** The bench's RTMP servers (nginx-rtmp on 127.0.0.1), started in main. */
const rtmp: RtmpServer[] = [];
const PARTICIPANT_MP4 = 'participant (camera + mic) → MP4 720p30';

const VIDEO: Partial<PublisherOptions> = { audio: true, video: 'vp8', width: 1280, height: 720, fps: 30 };
const mp4 = (filepath: string) => new EncodedFileOutput({ fileType: EncodedFileType.MP4, filepath });
const trackComposite = (name: string, picture: 'marker' | 'camera'): JobSpec => ({
  name,
  publishers: [{ identity: 'alice', ...VIDEO, picture }],
  start: (client, room, [p]) =>
    client.startTrackCompositeEgress(room, mp4(`kinds/tc-${picture}-{room_name}`), {
      audioTrackId: p!.audioTrackSid,
      videoTrackId: p!.videoTrackSid,
      encodingOptions: EncodingOptionsPreset.H264_720P_30,
    }),
  sync: true,
});

const BASELINE = 'audio track egress (Opus → OGG) [baseline]';
const trackEgress = (name: string, publisher: Partial<PublisherOptions>, remux: boolean, versus?: string): JobSpec => ({
  name,
  publishers: [{ identity: 'alice', ...publisher }],
  start: (client, room, [p]) => client.startTrackEgress(room, new DirectFileOutput({ filepath: 'kinds/track-{room_name}-{track_id}' }), (p!.videoTrackSid ?? p!.audioTrackSid)!),
  remux,
  ...(versus ? { versus } : {}),
});
/** A camera-like 720p30 track at 2.5 Mb/s. */
const TRACK_720P = (codec: 'vp8' | 'h264'): Partial<PublisherOptions> => ({ audio: false, video: codec, width: 1280, height: 720, fps: 30, picture: 'camera', maxBitrateKbps: 2500 });
const VP8_DECODED = 'VP8 720p30 2.5 Mb/s track → WebM, decoded and encoded again';
const H264_DECODED = 'H.264 720p30 2.5 Mb/s track → MP4, decoded and encoded again';

const JOBS: JobSpec[] = [
  trackEgress(BASELINE, { audio: true, video: false }, false),
  trackEgress(VP8_DECODED, TRACK_720P('vp8'), false),
  trackEgress(H264_DECODED, TRACK_720P('h264'), false),
  trackComposite('track composite 720p30 MP4, marker picture', 'marker'),
  trackComposite('track composite 720p30 MP4, camera-like picture', 'camera'),
  // rtc-node's own publisher sends audio later than the video of the same instant (40-80 ms idle, more
  // under load): this one shows the egress's own A/V error.
  { ...trackComposite('track composite 720p30 MP4, pion publisher (A/V sent in sync)', 'marker'), publishers: [{ identity: 'alice' }], pion: true },
  {
    name: PARTICIPANT_MP4,
    publishers: [{ identity: 'bob', ...VIDEO }],
    start: (client, room) => client.startParticipantEgress(room, 'bob', { file: mp4('kinds/participant-{room_name}') }, { encodingOptions: EncodingOptionsPreset.H264_720P_30 }),
  },
  {
    // The same participant, one encode fanned out: against the MP4-only job above, what segments and thumbnails add.
    name: 'participant → MP4 + HLS (4 s) + thumbnails (every 5 s), one encode',
    publishers: [{ identity: 'bob', ...VIDEO }],
    start: (client, room) =>
      client.startParticipantEgress(
        room,
        'bob',
        {
          file: mp4('kinds/fan-{room_name}'),
          segments: new SegmentedFileOutput({ filenamePrefix: 'kinds/fan-{room_name}-hls/seg', segmentDuration: 4 }),
          images: new ImageOutput({ filenamePrefix: 'kinds/fan-{room_name}-img/t', captureInterval: 5, width: 320, height: 180 }),
        },
        { encodingOptions: EncodingOptionsPreset.H264_720P_30 },
      ),
    versus: PARTICIPANT_MP4,
  },
  {
    name: 'participant → MP4 + HLS (4 s) + 2 RTMP, one encode',
    publishers: [{ identity: 'bob', ...VIDEO }],
    start: (client, room) =>
      client.startParticipantEgress(
        room,
        'bob',
        {
          file: mp4('kinds/rtmp-{room_name}'),
          segments: new SegmentedFileOutput({ filenamePrefix: 'kinds/rtmp-{room_name}-hls/seg', segmentDuration: 4 }),
          stream: new StreamOutput({ protocol: StreamProtocol.RTMP, urls: rtmp.map((r, i) => r.url('live', `bench${i}-${room}`)) }),
        },
        { encodingOptions: EncodingOptionsPreset.H264_720P_30 },
      ),
    versus: PARTICIPANT_MP4,
  },
  {
    // Chromium renders the default template into Xvfb; gst captures it with the PulseAudio sink's sound.
    name: 'room composite 720p30 grid, 2 publishers → MP4 (Chromium)',
    publishers: [{ identity: 'alice', ...VIDEO }, { identity: 'bob', ...VIDEO }],
    start: (client, room) => client.startRoomCompositeEgress(room, mp4('kinds/rc-{room_name}'), { layout: 'grid', encodingOptions: EncodingOptionsPreset.H264_720P_30 }),
    daemons: ['pulseaudio'],
  },
  {
    name: 'audio-only room composite, 3 participants → OGG',
    publishers: [300, 500, 700].map((toneHz, i) => ({ identity: `p${i}`, audio: true, video: false, toneHz })),
    start: (client, room) => client.startRoomCompositeEgress(room, new EncodedFileOutput({ filepath: 'kinds/room-audio-{room_name}' }), { audioOnly: true }),
  },
  trackEgress('audio track egress (Opus → OGG), remuxed (remux_tracks)', { audio: true, video: false }, true, BASELINE),
  trackEgress('VP8 720p30 2.5 Mb/s track → WebM, remuxed (remux_tracks)', TRACK_720P('vp8'), true, VP8_DECODED),
  trackEgress('H.264 720p30 2.5 Mb/s track → MP4, remuxed (remux_tracks)', TRACK_720P('h264'), true, H264_DECODED),
];

interface JobResult {
  name: string;
  loadBefore: string;
  egressId?: string;
  error?: string;
  cores?: number;
  /** The node's own last 1 s sample of the job, for comparison. */
  nodeCores?: number | null;
  groups?: number;
  processes?: string;
  peakRss?: number;
  hwmSum?: number;
  machineBusy?: number;
  /** This process (the publishers) during the window. */
  publisherCores?: number;
  location?: string;
  /** Request → ACTIVE as polled every 200 ms (ACTIVE: the first recorded frame), ms. */
  activeMs?: number;
  /** Σ PSS of the job's processes at the end of the window. */
  pss?: number;
  /** CPU of the shared daemons in `daemons`, included in `cores`. */
  daemonCores?: number;
  /** cores of each process group of the job, by its leader's name */
  byGroup?: string;
  sync?: AvSync;
  syncError?: string;
}

const mb = (bytes: number | undefined) => (bytes === undefined ? 'n/a' : `${(bytes / 1024 ** 2).toFixed(0)} MB`);
const errText = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 200);

/** RSS of every live process of the groups: the sum of VmRSS, and the sum of VmHWM (each process's own peak). */
function groupMemory(groups: Set<number>): { rss: number; hwm: number } {
  let rss = 0;
  let hwm = 0;
  for (const s of allStats()) {
    if (!groups.has(s.pgid)) continue;
    rss += statusBytes(s.pid, 'VmRSS') ?? 0;
    hwm += statusBytes(s.pid, 'VmHWM') ?? 0;
  }
  return { rss, hwm };
}

async function runJob(d: LocalDeployment, node: BenchNode, client: EgressClient, spec: JobSpec, index: number): Promise<JobResult> {
  const room = `kinds-${index + 1}-${Date.now()}`;
  const result: JobResult = { name: spec.name, loadBefore: '' };
  const pubs: Publisher[] = [];
  const getInfo = async (id: string) => (await client.listEgress({ egressId: id }))[0];
  try {
    for (const p of spec.publishers) {
      const conn = { wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: p.identity ?? `pub-${pubs.length}` };
      const pub = spec.pion ? await startPionPublisher({ ...conn, video: 'h264' }) : await startPublisher({ ...conn, ...p });
      pubs.push(pub);
      livePublishers.add(pub);
    }
    await sleep(1_000); // the tracks reach livekit-server before the request names them
    result.loadBefore = loadAverage();
    log(`job ${index + 1}: ${spec.name}; load average ${result.loadBefore}`);
    const requestedAt = Date.now();
    const started = await spec.start(client, room, pubs);
    result.egressId = started.egressId;
    const active = await waitUntil(`${started.egressId} ACTIVE`, async () => {
      const info = await getInfo(started.egressId);
      return info && info.status >= EgressStatus.EGRESS_ACTIVE ? info : undefined;
    }, ACTIVE_TIMEOUT_MS, 200);
    if (active.status !== EgressStatus.EGRESS_ACTIVE) throw new Error(`ended ${EgressStatus[active.status]} before ACTIVE: ${active.error}`);
    // EgressInfo.started_at is the request's time (as Go's); ACTIVE is the first recorded frame.
    result.activeMs = Date.now() - requestedAt;
    await sleep(WARMUP_MS);

    const detail = await node.job(started.egressId);
    if (!detail) throw new Error(`${started.egressId} is not listed by the node's debug endpoint`);
    const groups = new Set(detail.processes.map((p) => p.pgid));
    const daemons = (spec.daemons ?? []).flatMap(pidsNamed);
    const d0 = daemons.map((p) => cpuOfPid(p) ?? 0);
    const c0 = cpuByGroup(groups);
    const sys0 = systemTimes();
    const own0 = process.cpuUsage();
    const w0 = performance.now();
    let peakRss = 0;
    let hwmSum = 0;
    while (performance.now() - w0 < WINDOW_MS) {
      await sleep(Math.min(RSS_SAMPLE_MS, WINDOW_MS - (performance.now() - w0)));
      const m = groupMemory(groups);
      peakRss = Math.max(peakRss, m.rss);
      hwmSum = Math.max(hwmSum, m.hwm);
    }
    // Groups that appeared during the window (a restarted pipeline) ran inside it entirely.
    const after = await node.job(started.egressId);
    for (const p of after?.processes ?? []) groups.add(p.pgid);
    const c1 = cpuByGroup(groups);
    const window = (performance.now() - w0) / 1000;
    const own = process.cpuUsage(own0);
    const daemonUsed = daemons.reduce((sum, p, i) => sum + ((cpuOfPid(p) ?? d0[i]!) - d0[i]!), 0);
    const used = [...groups].reduce((sum, g) => sum + (c1.get(g)! - (c0.get(g) ?? 0)), 0) + daemonUsed;
    result.cores = used / window;
    // Which process of the job the CPU went to (by group leader: handler, gst-launch, chromium, Xvfb).
    const names = new Map((after ?? detail).processes.map((p) => [p.pgid, p.name]));
    result.byGroup = [...groups].map((g) => `${names.get(g) ?? g} ${((c1.get(g)! - (c0.get(g) ?? 0)) / window).toFixed(3)}`).join(', ');
    result.daemonCores = daemonUsed / window;
    result.pss = allStats().filter((s) => groups.has(s.pgid)).reduce((sum, s) => sum + (pssBytes(s.pid) ?? 0), 0);
    result.machineBusy = busyBetween(sys0, systemTimes()) * MACHINE_CPUS;
    result.publisherCores = (own.user + own.system) / 1e6 / window;
    result.peakRss = peakRss;
    result.hwmSum = hwmSum;
    result.groups = groups.size;
    result.processes = (after ?? detail).processes.map((p) => p.name).join('+');
    result.nodeCores = (await node.jobs()).find((j) => j.egressId === started.egressId)?.cpu;
    log(
      `  ${started.egressId}: ${result.cores.toFixed(3)} cores over ${groups.size} group(s) (${result.byGroup}); the node's own 1 s sample ${result.nodeCores?.toFixed(3) ?? 'n/a'}; ` +
        `peak RSS ${mb(peakRss)} (Σ VmHWM ${mb(hwmSum)}, PSS ${mb(result.pss)}); request → ACTIVE ${result.activeMs} ms; ` +
        `${daemons.length ? `daemons ${result.daemonCores.toFixed(3)} cores; ` : ''}machine busy ${result.machineBusy.toFixed(2)} cores, publishers ${result.publisherCores.toFixed(2)} cores`,
    );
    const still = await getInfo(started.egressId);
    if (still?.status !== EgressStatus.EGRESS_ACTIVE) throw new Error(`ended ${still ? EgressStatus[still.status] : 'unlisted'} during the window: ${still?.error}`);

    await client.stopEgress(started.egressId);
    const end = await waitUntil(`${started.egressId} to end`, async () => {
      const info = await getInfo(started.egressId);
      return info && info.status >= EgressStatus.EGRESS_COMPLETE ? info : undefined;
    }, END_TIMEOUT_MS, 200);
    if (end.status !== EgressStatus.EGRESS_COMPLETE) throw new Error(`ended ${EgressStatus[end.status]}: ${end.error}`);
    result.location = end.fileResults[0]?.location;
    log(`  COMPLETE: ${result.location ?? '(no file result)'}`);
  } catch (err) {
    result.error = errText(err);
    log(`  FAILED: ${result.error}`);
    if (result.egressId) await client.stopEgress(result.egressId).catch(() => undefined);
  } finally {
    await Promise.all(pubs.map((p) => p.stop().catch((err: unknown) => log(`  publisher stop: ${errText(err)}`))));
    for (const p of pubs) livePublishers.delete(p);
  }
  if (spec.sync && result.location && !result.error) {
    try {
      result.sync = await avSync(result.location);
      log(`  A/V offsets (ms): ${result.sync.offsetsMs.join(' ')}`);
    } catch (err) {
      result.syncError = errText(err);
      log(`  avSync failed: ${result.syncError}`);
    }
  }
  return result;
}

const results: JobResult[] = [];
/** Publishers of the running job, stopped by the cleanups too if the bench is interrupted. */
const livePublishers = new Set<Publisher>();

function report(): void {
  console.log('');
  console.log(`egress bench:kinds: ${MACHINE_CPUS} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), ${(os.totalmem() / 1024 ** 3).toFixed(1)} GB, node ${process.version}; load average at the end: ${loadAverage()}`);
  console.log(`each job alone on the node, ${WINDOW_MS / 1000} s window after ${WARMUP_MS / 1000} s warm-up; cores = utime+stime of all the job's processes (handler, gst-launch, and for web jobs Chromium, Xvfb and the PulseAudio daemon) / window`);
  const baseline = results[0]?.cores;
  const table = [['job', 'result', 'cores / job', '× baseline', 'peak RSS (Σ VmHWM)', 'PSS', 'request → ACTIVE (polled, ±0.2 s)', 'load avg before', 'machine busy', 'publishers']];
  for (const r of results) {
    const ok = r.cores !== undefined;
    table.push([
      r.name,
      r.error ? `FAILED: ${r.error}` : 'COMPLETE',
      ok ? r.cores!.toFixed(3) : '—',
      ok && baseline ? ratioText(r.cores!, baseline) : '—',
      ok ? `${mb(r.peakRss)} (${mb(r.hwmSum)})` : '—',
      ok ? mb(r.pss) : '—',
      r.activeMs !== undefined ? `${(r.activeMs / 1000).toFixed(2)} s` : '—',
      r.loadBefore || '—',
      ok ? `${r.machineBusy!.toFixed(2)}/${MACHINE_CPUS}` : '—',
      ok ? `${r.publisherCores!.toFixed(2)} cores` : '—',
    ]);
  }
  printTable(table);
  for (const r of results) {
    const spec = JOBS.find((j) => j.name === r.name);
    const base = results.find((b) => b.name === spec?.versus);
    if (r.cores !== undefined && base?.cores) console.log(`${r.name}: ${ratioText(r.cores, base.cores)} ${spec?.remux ? 'the decoding path' : 'the same source to a file alone'}`);
    // Admission charges a job its configured cost; this is what the measured one would allow.
    if (r.cores && spec?.remux) console.log(`  at ${r.cores.toFixed(3)} cores a job, one ${MACHINE_CPUS}-core node admits ${Math.floor((MACHINE_CPUS * MAX_CPU_UTILIZATION) / r.cores)} such jobs (max_cpu_utilization ${MAX_CPU_UTILIZATION})`);
  }
  if (recovery.length) {
    console.log('');
    console.log('RTMP recovery (participant 720p30, camera-like picture):');
    for (const line of recovery) console.log(`  ${line}`);
  }
  const synced = results.filter((r) => JOBS.find((j) => j.name === r.name)?.sync);
  if (synced.length) {
    console.log('');
    console.log('A/V offset |beep − flash| of the track composite recordings (avSync):');
    const av = [['job', 'markers', 'p50', 'p95', 'max', 'signed offsets min..max', 'drift (last 5 − first 5)']];
    for (const r of synced) {
      const s = r.sync;
      if (!s) {
        av.push([r.name, r.syncError ? `avSync failed: ${r.syncError}` : r.error ? 'no recording' : 'no file', '—', '—', '—', '—', '—']);
        continue;
      }
      const ms = (v: number) => (Number.isNaN(v) ? '—' : `${v} ms`);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const drift = s.offsetsMs.length >= 10 ? `${Math.round(mean(s.offsetsMs.slice(-5)) - mean(s.offsetsMs.slice(0, 5)))} ms` : '—';
      av.push([r.name, String(s.offsetsMs.length), ms(s.p50), ms(s.p95), ms(s.max), s.offsetsMs.length ? `${Math.min(...s.offsetsMs)}..${Math.max(...s.offsetsMs)} ms` : '—', drift]);
    }
    printTable(av);
  }
  console.log('');
}

async function main(cleanups: (() => Promise<unknown> | unknown)[]): Promise<void> {
  log('starting redis-server and livekit-server');
  const d = await startLocalDeployment({});
  cleanups.push(() => d.stop());
  cleanups.push(async () => {
    await Promise.all([...livePublishers].map((p) => p.stop()));
    await disposeRtc();
  });
  // One job at a time: costs low enough that each kind is admitted on a 2-core machine (admission is
  // not what this measures; the launcher's cpu_load 0 keeps other load out of it).
  const cost = 0.5;
  const nodeConfig = (remux: boolean) => ({
    remux_tracks: remux,
    cpu_cost: {
      track_cpu_cost: cost,
      track_composite_cpu_cost: cost,
      participant_cpu_cost: cost,
      room_composite_cpu_cost: cost,
      audio_room_composite_cpu_cost: cost,
      sdk_audio_room_composite_cpu_cost: cost,
    },
    ...LOOPBACK_CHROME,
    chrome_flags: { ...LOOPBACK_CHROME.chrome_flags, ...EXTRA_CHROME_FLAGS },
  });
  let node = await startNode(d, nodeConfig(false));
  cleanups.push(() => node.stop());
  log(`node ready (pid ${node.pid}, output under ${node.node.outputDir}, log ${node.node.logPath})`);
  const client = new EgressClient(d.httpUrl, d.apiKey, d.apiSecret, { requestTimeout: 60 });
  rtmp.push(await startRtmpServer(), await startRtmpServer());
  cleanups.push(() => Promise.all(rtmp.map((r) => r.stop())));
  // The decoding jobs first, then the remuxing ones on a node of their own (two nodes on one Redis
  // would take each other's jobs).
  for (const remux of [false, true]) {
    const jobs = [...JOBS.entries()].filter(([i, spec]) => !!spec.remux === remux && (i === 0 || chosen(spec.name)));
    if (!jobs.length) continue;
    if (remux) {
      await node.stop();
      node = await startNode(d, nodeConfig(true));
      log(`remuxing node ready (pid ${node.pid}, log ${node.node.logPath})`);
    }
    for (const [i, spec] of jobs) {
      if (i > 0) await sleep(SETTLE_MS);
      results.push(await runJob(d, node, client, spec, i));
    }
  }
  if (chosen('RTMP recovery')) await measureRecovery(d, client, rtmp[0]!).catch((err: unknown) => recovery.push(`FAILED: ${errText(err)}`));
}

const recovery: string[] = [];

/** A killed server that returns, then a stalled one: how long the egress takes to notice each. */
async function measureRecovery(d: LocalDeployment, client: EgressClient, server: RtmpServer): Promise<void> {
  await sleep(SETTLE_MS);
  const room = `kinds-recovery-${Date.now()}`;
  const key = `recovery-${room}`;
  log('RTMP recovery: a participant streaming to one server');
  const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: 'cam', ...VIDEO, picture: 'camera' });
  livePublishers.add(pub);
  const getInfo = async (id: string) => (await client.listEgress({ egressId: id }))[0];
  let egressId: string | undefined;
  try {
    await sleep(1_000);
    const started = await client.startParticipantEgress(room, 'cam', { stream: new StreamOutput({ protocol: StreamProtocol.RTMP, urls: [server.url('live', key)] }) }, { encodingOptions: EncodingOptionsPreset.H264_720P_30 });
    egressId = started.egressId;
    const publishing = (what: string) => waitUntil(what, async () => ((await server.publishing(key)) ? true : undefined), 60_000, 100);
    await publishing('first publish');
    await sleep(12_000); // up (10 s): a URL that dies sooner is taken for a bad one
    await server.kill();
    await sleep(2_000);
    const restarted = performance.now();
    await server.restart();
    await publishing('publishing again');
    const back = (performance.now() - restarted) / 1000;
    recovery.push(`a killed server back after 2 s: streamed to again ${back.toFixed(1)} s after it restarted (retries back off 1, 2, 4, 8 s)`);
    log(`  ${recovery.at(-1)}`);
    await sleep(5_000);
    const pid = server.pid();
    process.kill(pid, 'SIGSTOP');
    const stalled = performance.now();
    try {
      await waitUntil('the stalled URL to be dropped', async () => (streamFailed(await getInfo(started.egressId)) ? true : undefined), 300_000, 500);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const dropped = (performance.now() - stalled) / 1000;
    recovery.push(`a stalled server (SIGSTOP): dropped ${dropped.toFixed(1)} s later (30 s without progress, after loopback's TCP buffers filled)`);
    log(`  ${recovery.at(-1)}`);
  } finally {
    if (egressId) await client.stopEgress(egressId).catch(() => undefined);
    await pub.stop();
    livePublishers.delete(pub);
  }
}

const streamFailed = (info: EgressInfo | undefined): boolean =>
  !!info && (info.status >= EgressStatus.EGRESS_COMPLETE || info.streamResults.some((s) => s.status === StreamInfo_Status.FAILED));

await runBench('bench:kinds', main, report);
