// Runs the recovery handler (handler/src/recover.ts) for a dead handler's outputs: media work stays
// out of the supervisor, and a crash while recovering costs nothing but that attempt.
import { fileURLToPath } from 'node:url';
import { FileInfo } from '@livekit/protocol';
import { execa } from 'execa';
import type { Config } from '@egress/shared/config/types.ts';
import type { OutputReport } from '@egress/shared/ipc.ts';
import { nowNs } from '@egress/shared/egress-info.ts';
import { TSX_EXEC_ARGV } from './tsx.ts';

const RECOVER_MAIN = fileURLToPath(new URL('../../../handler/src/recover.ts', import.meta.url));
const RECOVERY_TIMEOUT_MS = 120_000;

interface Recovered {
  filename: string;
  location: string;
  size: number;
  durationNs: string;
  backupUsed: boolean;
  error?: string;
}

export interface RecoveryResult {
  files: FileInfo[];
  errors: string[];
  backupUsed: boolean;
}

/** `request` is the job's rpc.StartEgressRequest (it names the storage); both go over stdin, never argv. */
export async function recoverOutputs(outputs: OutputReport[], request: Uint8Array, config: Config): Promise<RecoveryResult> {
  if (outputs.length === 0) return { files: [], errors: [], backupUsed: false };
  const input = JSON.stringify({ outputs, request: Buffer.from(request).toString('base64'), config });
  const run = await execa(process.execPath, [...TSX_EXEC_ARGV, RECOVER_MAIN], { input, reject: false, timeout: RECOVERY_TIMEOUT_MS });
  const endedAt = nowNs();
  const files: FileInfo[] = [];
  const errors: string[] = [];
  let backupUsed = false;
  for (const line of run.stdout.split('\n').filter(Boolean)) {
    const r = JSON.parse(line) as Recovered;
    const duration = BigInt(r.durationNs);
    backupUsed ||= r.backupUsed;
    files.push(new FileInfo({ filename: r.filename, location: r.location, size: BigInt(r.size), duration, startedAt: endedAt - duration, endedAt }));
    if (r.error) errors.push(`${r.filename}: ${r.error}`);
  }
  if (run.exitCode !== 0) errors.push(`recovery handler failed: ${run.stderr.trim().split('\n').pop() ?? `exit ${run.exitCode}`}`);
  return { files, errors, backupUsed };
}
