// Runs the recovery handler (handler/src/recover.ts) for a dead handler's outputs: media work stays
// out of the supervisor, and a crash while recovering costs nothing but that attempt.
import { fileURLToPath } from 'node:url';
import { FileInfo } from '@livekit/protocol';
import { execa } from 'execa';
import type { OutputReport } from '@egress/shared/ipc.ts';
import { nowNs } from '@egress/shared/egress-info.ts';

const RECOVER_MAIN = fileURLToPath(new URL('../../../handler/src/recover.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
const RECOVERY_TIMEOUT_MS = 120_000;

interface Recovered {
  filename: string;
  location: string;
  size: number;
  durationNs?: string;
  error?: string;
}

export async function recoverOutputs(outputs: OutputReport[]): Promise<{ files: FileInfo[]; errors: string[] }> {
  if (outputs.length === 0) return { files: [], errors: [] };
  const run = await execa(process.execPath, ['--import', TSX, RECOVER_MAIN, JSON.stringify(outputs)], {
    reject: false,
    timeout: RECOVERY_TIMEOUT_MS,
  });
  const endedAt = nowNs();
  const files: FileInfo[] = [];
  const errors: string[] = [];
  for (const line of run.stdout.split('\n').filter(Boolean)) {
    const r = JSON.parse(line) as Recovered;
    const duration = BigInt(r.durationNs ?? 0);
    files.push(new FileInfo({ filename: r.filename, location: r.location, size: BigInt(r.size), duration, startedAt: endedAt - duration, endedAt }));
    if (r.error) errors.push(`${r.filename}: ${r.error}`);
  }
  if (run.exitCode !== 0) errors.push(`recovery handler failed: ${run.stderr.trim().split('\n').pop() ?? `exit ${run.exitCode}`}`);
  return { files, errors };
}
