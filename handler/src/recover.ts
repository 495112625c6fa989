// The recovery handler: a short process that finalizes what a dead handler left on disk and uploads
// it like the handler would have, so the FAILED EgressInfo still lists playable files.
// Input (stdin, so that credentials never show in a process list): { outputs, request, config }.
// Output: one JSON line per output on stdout: a file { type: 'file', filename, location, size,
// durationNs, backupUsed, error? }, or a segments output (RecoveredSegments).
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { execa } from 'execa';
import type { Config } from '@egress/shared/config/types.ts';
import type { OutputReport } from '@egress/shared/ipc.ts';
import type { StorageTarget } from '@egress/shared/plan/pipeline-config.ts';
import { planPipeline } from '@egress/shared/plan/plan.ts';
import { StartEgressRequest } from '@egress/shared/proto/rpc.ts';
import { recoverSegments } from './sink/segments-recovery.ts';
import { contentTypeFor, createUploader, UploadFailedError } from './upload/uploader.ts';

export interface RecoveryInput {
  outputs: OutputReport[];
  /** rpc.StartEgressRequest, base64 protobuf. */
  request: string;
  config: Config;
}

async function durationSeconds(file: string): Promise<number> {
  const { stdout } = await execa('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file], { reject: false });
  return Number(stdout.trim()) || 0;
}

/** Remuxes without re-encoding (MP4 gets its index up front). A file ffmpeg cannot read is kept as it is. */
async function finalize(localPath: string): Promise<{ file: string; error?: string }> {
  const out = path.join(path.dirname(localPath), `recovered-${path.basename(localPath)}`);
  const mp4 = out.endsWith('.mp4') ? ['-movflags', '+faststart'] : [];
  const remux = await execa('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', localPath, '-c', 'copy', ...mp4, out], { reject: false });
  if (remux.exitCode === 0) return { file: out };
  return { file: localPath, error: `could not finalize: ${remux.stderr.trim().split('\n').pop()}` };
}

const input = JSON.parse(await text(process.stdin)) as RecoveryInput;
const req = StartEgressRequest.fromBinary(Buffer.from(input.request, 'base64'));
// The request planned again, for its outputs' storage only: the file names come from the OutputReports
// (the plan's {time} would differ). Storage is a pure function of request and config, so it matches the start's.
const plan = planPipeline(req, input.config, new Date());
const stored = plan.outputs.filter((o): o is Extract<typeof o, { storage: StorageTarget }> => 'storage' in o);
const storage = (stored.find((o) => o.type === 'file') ?? stored[0])?.storage;
const emit = (line: object) => process.stdout.write(JSON.stringify(line) + '\n');

for (const o of input.outputs) {
  if (o.type === 'segments') {
    const uploader = await createUploader(o.plan.storage, input.config.backup);
    emit({ ...(await recoverSegments(o, uploader, durationSeconds)), backupUsed: uploader.backupUsed });
    await uploader.close();
    continue;
  }
  if (!storage || !(await stat(o.localPath).then((s) => s.size > 0, () => false))) continue;
  const uploader = await createUploader(storage, input.config.backup);
  const { file, error } = await finalize(o.localPath);
  const durationNs = String(Math.round((await durationSeconds(file)) * 1e9));
  const size = (await stat(file)).size;
  try {
    const up = await uploader.enqueue(file, o.filename, contentTypeFor(o.filename));
    emit({ type: 'file', filename: o.filename, location: up.location, size, durationNs, backupUsed: up.backupUsed, error });
  } catch (err) {
    const location = err instanceof UploadFailedError ? err.location : file;
    emit({ type: 'file', filename: o.filename, location, size, durationNs, backupUsed: false, error: (err as Error).message });
  }
  await uploader.close();
}
