// Runs the recovery handler (handler/src/recover.ts) for a dead handler's outputs: media work stays
// out of the supervisor, and a crash while recovering costs nothing but that attempt.
import { FileInfo, SegmentsInfo } from '@livekit/protocol';
import { execa } from 'execa';
import type { Config } from '@egress/shared/config/types.ts';
import type { OutputReport } from '@egress/shared/ipc.ts';
import { nowNs } from '@egress/shared/egress-info.ts';
import { handlerEntry, TSX_EXEC_ARGV } from './tsx.ts';

const RECOVER_MAIN = handlerEntry('recover');
const RECOVERY_TIMEOUT_MS = 120_000;

/** What handler/src/recover.ts prints, a line per output (its RecoveredSegments for segments). */
type Recovered =
  | { type: 'file'; filename: string; location: string; size: number; durationNs: string; backupUsed: boolean; error?: string }
  | {
      type: 'segments';
      playlistName: string;
      livePlaylistName: string;
      playlistLocation: string;
      livePlaylistLocation: string;
      segmentCount: number;
      size: number;
      startedAtNs: string;
      durationNs: string;
      backupUsed: boolean;
      errors: string[];
    };

export interface RecoveryResult {
  files: FileInfo[];
  segments: SegmentsInfo[];
  errors: string[];
  backupUsed: boolean;
}

/** A line of the recovery handler's output; undefined (and said in `errors`) for one that is not. */
function parseLine(line: string, errors: string[]): Recovered | undefined {
  try {
    const r = JSON.parse(line) as Recovered;
    if (r && (r.type === 'file' || r.type === 'segments')) return r;
  } catch {
    // A line cut short (the recovery handler killed by the timeout) is reported, never thrown.
  }
  errors.push(`recovery handler printed an unreadable line: ${line.slice(0, 200)}`);
  return undefined;
}

/** `request` is the job's rpc.StartEgressRequest (it names the storage); both go over stdin, never argv. */
export async function recoverOutputs(outputs: OutputReport[], request: Uint8Array, config: Config): Promise<RecoveryResult> {
  if (outputs.length === 0) return { files: [], segments: [], errors: [], backupUsed: false };
  const input = JSON.stringify({ outputs, request: Buffer.from(request).toString('base64'), config });
  const run = await execa(process.execPath, [...TSX_EXEC_ARGV, RECOVER_MAIN], { input, reject: false, timeout: RECOVERY_TIMEOUT_MS });
  const endedAt = nowNs();
  const files: FileInfo[] = [];
  const segments: SegmentsInfo[] = [];
  const errors: string[] = [];
  let backupUsed = false;
  for (const line of run.stdout.split('\n').filter(Boolean)) {
    const r = parseLine(line, errors);
    if (!r) continue;
    const duration = BigInt(r.durationNs);
    backupUsed ||= r.backupUsed;
    if (r.type === 'file') {
      files.push(new FileInfo({ filename: r.filename, location: r.location, size: BigInt(r.size), duration, startedAt: endedAt - duration, endedAt }));
      if (r.error) errors.push(`${r.filename}: ${r.error}`);
    } else {
      const startedAt = BigInt(r.startedAtNs) || endedAt - duration;
      segments.push(
        new SegmentsInfo({
          playlistName: r.playlistName,
          livePlaylistName: r.livePlaylistName,
          playlistLocation: r.playlistLocation,
          livePlaylistLocation: r.livePlaylistLocation,
          segmentCount: BigInt(r.segmentCount),
          size: BigInt(r.size),
          duration,
          startedAt,
          endedAt: startedAt + duration,
        }),
      );
      errors.push(...r.errors.map((e) => `${r.playlistName}: ${e}`));
    }
  }
  if (run.exitCode !== 0) errors.push(`recovery handler failed: ${run.stderr.trim().split('\n').pop() ?? `exit ${run.exitCode}`}`);
  return { files, segments, errors, backupUsed };
}
