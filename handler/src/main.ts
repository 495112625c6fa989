// The handler process: one per egress, forked by the supervisor with a typed IPC channel.
// It exits by itself when the supervisor goes away, after finalizing what it recorded.
import { encodeInfo, setAborted, setEndReason, setFailed } from '@egress/shared/egress-info.ts';
import { HEARTBEAT_INTERVAL_MS, type HandlerMessage, type SupervisorMessage } from '@egress/shared/ipc.ts';
import { createLogger } from '@egress/shared/logging.ts';
import { startingInfo } from '@egress/shared/plan/request.ts';
import type { Config } from '@egress/shared/config/types.ts';
import type { PipelineConfig } from '@egress/shared/plan/pipeline-config.ts';
import { StartEgressRequest } from '@egress/shared/proto/rpc.ts';
import { nowNs } from '@egress/shared/psrpc/time.ts';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { EgressStatus, type EgressInfo } from '@livekit/protocol';
import { EgressError, toEgressError } from '@egress/shared/errors.ts';
import { JournalWriter } from '@egress/shared/journal.ts';
import { recordProcess } from '@egress/shared/scratch.ts';
import { Profiler, uploadBundle } from './debug/profiling.ts';
import type { Controller } from './controller/controller.ts';

/** Resolves once the message is handed to the channel, so a final message is not lost at exit. */
const send = (m: HandlerMessage): Promise<void> =>
  new Promise((resolve) => (process.connected ? process.send!(m, undefined, {}, () => resolve()) : resolve()));

let egress: Controller | undefined;
let startInfo: EgressInfo | undefined;
/** A stop that came while the media modules were still loading; applied as soon as the egress exists. */
let pendingStop: string | undefined;

function stop(reason: string): EgressInfo | undefined {
  if (egress) return egress.stop(reason);
  pendingStop ??= reason;
  if (!startInfo) return undefined;
  const info = startInfo.clone();
  setEndReason(info, reason);
  setAborted(info, 'Stop called before pipeline could start');
  return info;
}

/** Whether a job was given: a spare without one just exits when the supervisor goes away. */
let started = false;

process.on('message', (m: SupervisorMessage) => {
  switch (m.type) {
    case 'start':
      started = true;
      void run(m.request, m.plan, m.config);
      return;
    case 'stop': {
      const info = stop(m.reason);
      if (!info) return void send({ type: 'reply', id: m.id, error: { code: 'not_found', message: 'egress not found' } });
      return void send({ type: 'reply', id: m.id, info: encodeInfo(info) });
    }
    case 'inspect':
      void inspect(m.id);
      return;
    case 'prewarm':
      prewarmConfig = m.config;
      void startSpareBrowser();
      return;
    case 'updateStream':
      void updateStream(m.id, m.add, m.remove);
      return;
  }
});

async function updateStream(id: number, add: string[], remove: string[]): Promise<void> {
  try {
    if (!egress) throw new EgressError('not_found', 'egress not found');
    await send({ type: 'reply', id, info: encodeInfo(await egress.updateStream(add, remove)) });
  } catch (err) {
    const e = toEgressError(err);
    await send({ type: 'reply', id, error: { code: e.code, message: e.message } });
  }
}

async function inspect(id: number): Promise<void> {
  try {
    if (!egress) throw new EgressError('not_found', 'egress not found');
    await send({ type: 'reply', id, dot: await egress.pipelineDot() });
  } catch (err) {
    const e = toEgressError(err);
    await send({ type: 'reply', id, error: { code: e.code, message: e.message } });
  }
}

/** handler_pool.browser: the config a spare starts its browser with, once its modules are loaded. */
let prewarmConfig: Config | undefined;
/** How long a spare with no job gets to close its browser when the supervisor goes away. */
const SPARE_CLOSE_MS = 5_000;

// An orphan finalizes its recording and exits: nobody is left to report to. A spare closes what it
// started for its next job (Xvfb would outlive it).
process.on('disconnect', () => {
  if (started) return void stop('Process killed');
  setTimeout(() => process.exit(0), SPARE_CLOSE_MS).unref();
  void import('./source/web/warm.ts').then((w) => w.releaseWarm()).finally(() => process.exit(0));
});

// A spare (the supervisor's handler_pool) loads the media modules now, before any job, so that the
// job it is given starts on a warm process; then, where asked, it starts a browser for a web job.
let spareLoaded = false;
if (process.env.EGRESS_HANDLER_SPARE === '1') {
  void (async () => {
    await import('@livekit/rtc-node');
    await import('./controller/controller.ts');
    if (started) return;
    spareLoaded = true;
    await send({ type: 'warm' });
    await startSpareBrowser();
  })();
}

/** Once both the modules are loaded and `prewarm` came (which may be after: loading keeps the process busy). */
async function startSpareBrowser(): Promise<void> {
  const config = prewarmConfig;
  if (!spareLoaded || !config || started) return;
  prewarmConfig = undefined;
  const { prewarm } = await import('./source/web/warm.ts');
  if (started) return;
  const log = createLogger({ level: config.logging.level, json: config.logging.json, fields: { spare: String(process.pid) } });
  prewarm(config, log, (p) => void send({ type: 'process', process: p }));
}
process.on('SIGINT', () => stop('Process killed'));

const heartbeat = setInterval(() => void send({ type: 'heartbeat' }), HEARTBEAT_INTERVAL_MS);

/**
 * Hands the final EgressInfo to the supervisor. An orphan has nobody to hand it to: it stays in the
 * journal, and the next node started on this machine reports it (supervisor/src/fleet/orphans.ts).
 * A FAILED job's scratch may hold the only copy of its recording (an upload that failed everywhere).
 */
async function finishJob(final: EgressInfo, scratch: string, journal: JournalWriter): Promise<void> {
  if (!process.connected) return journal.finish(encodeInfo(final));
  if (final.status !== EgressStatus.EGRESS_FAILED) await rm(scratch, { recursive: true, force: true });
  await send({ type: 'finished', info: encodeInfo(final) });
}

async function run(requestB64: string, plan: PipelineConfig, config: Extract<SupervisorMessage, { type: 'start' }>['config']): Promise<void> {
  const req = StartEgressRequest.fromBinary(Buffer.from(requestB64, 'base64'));
  // A spare's browser serves web jobs only: any other job frees it at once.
  if (process.env.EGRESS_HANDLER_SPARE === '1' && plan.source.type !== 'web') void import('./source/web/warm.ts').then((w) => w.releaseWarm());
  // Before any await: StartEgress is answered without waiting for this process, so a StopEgress may
  // come at once, and stop() answers it from this.
  const info = startingInfo(req, nowNs());
  startInfo = info;
  const profiling = config.debug.enableProfiling;
  const debugDir = path.join(config.tmpDir, 'debug', req.egressId);
  if (profiling) await mkdir(debugDir, { recursive: true });
  const logPath = profiling ? path.join(debugDir, 'handler-live.log') : undefined;
  const log = createLogger({ level: config.logging.level, json: config.logging.json, fields: { egressId: req.egressId }, file: logPath });
  const scratch = path.join(config.tmpDir, req.egressId);
  await mkdir(scratch, { recursive: true });
  const journal = JournalWriter.start(scratch, req.egressId, requestB64);
  const finish = (final: EgressInfo) => finishJob(final, scratch, journal);
  void send({ type: 'ready' });
  const profiler = profiling ? new Profiler() : undefined;
  await profiler?.start();
  // The media modules (rtc-node's native addon, gst) load after `ready`: the readiness limit measures
  // whether the process is alive and listening, not how busy the machine is.
  let dispose = async () => undefined as void;
  try {
    ({ dispose } = await import('@livekit/rtc-node'));
    const { Controller } = await import('./controller/controller.ts');
    egress = new Controller(plan, config, log, {
      status: (i) => send({ type: 'status', info: encodeInfo(i) }),
      process: (p) => {
        // In the scratch too: if the node dies with this handler, the next one kills what is left.
        recordProcess(scratch, p, log);
        void send({ type: 'process', process: p });
      },
      output: (o) => {
        journal.addOutput(o);
        void send({ type: 'output', output: o });
      },
      ending: () => void send({ type: 'ending' }),
      finalized: () => void send({ type: 'finalized' }),
    }, info);
    if (pendingStop) egress.stop(pendingStop);
    const final = await egress.run();
    if (profiler && final.status === EgressStatus.EGRESS_FAILED) {
      const dir = await profiler.saveBundle(debugDir, { ...(await egress.debugArtifacts()), logPath });
      final.details += `; debug files: ${dir}`;
      const storage = config.debug.storage;
      if (storage) {
        // A bundle that cannot be stored never changes what the job itself reports.
        final.details += await uploadBundle(dir, req.egressId, storage, log).then(
          (where) => `; debug files uploaded to ${where}`,
          (err: Error) => `; debug files not uploaded: ${err.message}`,
        );
      }
    }
    await finish(final);
  } catch (err) {
    log.error('handler failed', { error: toEgressError(err).message });
    setFailed(info, toEgressError(err));
    await finish(info);
  }
  clearInterval(heartbeat);
  await dispose();
  if (process.connected) process.disconnect();
  process.exit(0);
}
