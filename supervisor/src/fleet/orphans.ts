// What a node finds in its tmp_dir at start: the scratch of egresses whose node died under them
// (SIGKILL, OOM, a reboot). Their handlers either finished as orphans (the recording finalized and
// uploaded, the final EgressInfo left in the journal) or died with it (the files on disk as they
// were). Either way nobody told livekit-server. Each is finished here: the files through the
// recovery handler when needed, then IOInfo.UpdateEgress FAILED "recovered after node restart" with
// the file results. Scratch already reported is removed once it is older than tmp_max_age.
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { EgressInfo } from '@livekit/protocol';
import type { Config } from '@egress/shared/config/types.ts';
import { decodeInfo, isTerminal, nowNs, setFailed } from '@egress/shared/egress-info.ts';
import { errors } from '@egress/shared/errors.ts';
import { markReported, ownerAlive, readJournal, supervisorAlive, type Journal } from '@egress/shared/journal.ts';
import { survivingProcesses } from '@egress/shared/scratch.ts';
import { killGroups } from './handler-process.ts';
import type { Logger } from '@egress/shared/logging.ts';
import { startingInfo } from '@egress/shared/plan/request.ts';
import { StartEgressRequest } from '@egress/shared/proto/rpc.ts';

/** Egress ids as livekit-server makes them; anything else in tmp_dir is not ours to touch. */
const EGRESS_DIR = /^EG_[A-Za-z0-9]+$/;
/** How often a still-running orphan handler is checked for, and how long it may take to finish. */
const OWNER_POLL_MS = 500;
const OWNER_WAIT_MS = 10 * 60_000;
const RECOVERING_LOCK = '.recovering';

export interface OrphanOptions {
  /** Sends the final status to livekit-server; resolves once it is delivered. */
  report(info: EgressInfo): Promise<void>;
  /** Egresses this node runs itself (never orphans, even when their scratch predates it). */
  running(egressId: string): boolean;
  log: Logger;
}

/** Finishes the report of every orphaned egress in tmp_dir; resolves when all are done. */
export async function recoverOrphans(config: Config, opts: OrphanOptions): Promise<void> {
  const entries = await readdir(config.tmpDir, { withFileTypes: true }).catch(() => []);
  const dirs = entries.filter((e) => e.isDirectory() && EGRESS_DIR.test(e.name)).map((e) => path.join(config.tmpDir, e.name));
  await Promise.all(dirs.map((dir) => recoverOne(dir, config, opts).catch((err: Error) => opts.log.error('orphaned egress not recovered', { dir, error: err.message }))));
}

async function recoverOne(dir: string, config: Config, opts: OrphanOptions): Promise<void> {
  let journal = await readJournal(dir);
  // Another node sharing this tmp_dir reports its jobs itself.
  if (!journal || opts.running(journal.egressId) || (!journal.reported && supervisorAlive(journal))) return;
  if (journal.reported) {
    const age = Date.now() - (await stat(dir)).mtimeMs;
    if (config.tmpMaxAgeMs > 0 && age > config.tmpMaxAgeMs) await rm(dir, { recursive: true, force: true });
    return;
  }
  // An orphaned handler still finalizing its recording: its journal will hold the final status.
  for (const until = Date.now() + OWNER_WAIT_MS; ownerAlive(journal) && Date.now() < until; ) {
    await new Promise((r) => setTimeout(r, OWNER_POLL_MS));
  }
  journal = await readJournal(dir);
  // Gone: it finished with nothing worth keeping, or another node got there first.
  if (!journal || journal.reported) return;
  // Two nodes started together on one tmp_dir: the first to make the lock reports it.
  if (!(await mkdir(path.join(dir, RECOVERING_LOCK)).then(() => true, () => false))) return;
  // A handler killed with its node leaves its detached Chromium, Xvfb, parec and gst running, and
  // gst would go on writing the file being recovered.
  if (!ownerAlive(journal)) {
    const left = survivingProcesses(dir);
    if (left.length) opts.log.warn('killing what an orphaned egress left running', { egressId: journal.egressId, processes: left.map((p) => `${p.name} ${p.pid}`) });
    killGroups(left);
  }
  const info = await finalInfo(journal, config, opts.log);
  opts.log.warn('reporting an egress orphaned by a node that died', { egressId: journal.egressId, files: info.fileResults.length, segments: info.segmentResults.length });
  await opts.report(info);
  await markReported(dir);
}

/** The orphan's own final status if it wrote one, else what the recovery handler saves from its files. */
async function finalInfo(journal: Journal, config: Config, log: Logger): Promise<EgressInfo> {
  const restart = errors.recoveredAfterRestart();
  if (journal.final) {
    const info = decodeInfo(journal.final);
    // It ended early because its node died: FAILED, unless it had failed on its own already.
    if (!isTerminal(info.status) || !info.error) setFailed(info, restart);
    info.details = info.details ? `${info.details}; ${restart.message}` : restart.message;
    return info;
  }
  const request = Buffer.from(journal.request, 'base64');
  const info = startingInfo(StartEgressRequest.fromBinary(request), nowNs());
  // Loaded only when there is something to recover: recovery brings execa.
  const { applyRecovery, recoverOutputs } = await import('./recovery.ts');
  const recovered = await recoverOutputs(journal.outputs, request, config);
  for (const e of recovered.errors) log.error('recovery problem', { egressId: journal.egressId, error: e });
  const count = applyRecovery(info, recovered);
  setFailed(info, restart);
  info.details = `${restart.message}; ${count} output(s) recovered`;
  return info;
}
