// Runs the recovery handler (handler/src/recover.ts) for a dead handler's outputs: media work stays
// out of the supervisor, and a crash while recovering costs nothing but that attempt.
import { FileInfo, SegmentsInfo, type EgressInfo } from '@livekit/protocol';
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

const isText = (v: unknown): v is string => typeof v === 'string';
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
/** Nanoseconds travel as decimal strings: they outgrow a double's integers. */
const isNs = (v: unknown): v is string => typeof v === 'string' && /^\d+$/.test(v);

/** Every field the supervisor reads, with the type it reads it as: nothing below may throw. */
function isRecovered(r: unknown): r is Recovered {
  if (typeof r !== 'object' || r === null) return false;
  const o = r as Record<string, unknown>;
  const common = isCount(o.size) && isNs(o.durationNs) && typeof o.backupUsed === 'boolean';
  if (o.type === 'file') return common && isText(o.filename) && isText(o.location) && (o.error === undefined || isText(o.error));
  if (o.type === 'segments') {
    return common && isText(o.playlistName) && isText(o.livePlaylistName) && isText(o.playlistLocation) &&
      isText(o.livePlaylistLocation) && isCount(o.segmentCount) && isNs(o.startedAtNs) &&
      Array.isArray(o.errors) && o.errors.every(isText);
  }
  return false;
}

/**
 * A line of the recovery handler's output; undefined (and said in `errors`) for one that is not.
 * A line cut short (the handler killed by the timeout) may not parse, or parse as something else.
 */
function parseLine(line: string, errors: string[]): Recovered | undefined {
  let r: unknown;
  try {
    r = JSON.parse(line);
  } catch {
    r = undefined;
  }
  if (isRecovered(r)) return r;
  errors.push(`recovery handler printed an unreadable line: ${line.slice(0, 200)}`);
  return undefined;
}

/**
 * `request` is the job's rpc.StartEgressRequest (it names the storage); both go over stdin, never argv.
 * `entry` is the recovery handler's module; tests name one of their own.
 */
export async function recoverOutputs(outputs: OutputReport[], request: Uint8Array, config: Config, entry = RECOVER_MAIN): Promise<RecoveryResult> {
  if (outputs.length === 0) return { files: [], segments: [], errors: [], backupUsed: false };
  const input = JSON.stringify({ outputs, request: Buffer.from(request).toString('base64'), config });
  const run = await execa(process.execPath, [...TSX_EXEC_ARGV, entry], { input, reject: false, timeout: RECOVERY_TIMEOUT_MS });
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
  if (run.exitCode !== 0) errors.push(`recovery handler failed: ${run.stderr.trim().split('\n').pop() || `exit ${run.exitCode}`}`);
  return { files, segments, errors, backupUsed };
}

/** Puts what the recovery handler saved into the job's EgressInfo; returns how many outputs it saved. */
export function applyRecovery(info: EgressInfo, recovered: RecoveryResult): number {
  if (recovered.backupUsed) info.backupStorageUsed = true;
  if (recovered.files.length) info.fileResults = recovered.files;
  if (recovered.segments.length) info.segmentResults = recovered.segments;
  if (recovered.files.length && !recovered.segments.length) info.result = { case: 'file', value: recovered.files[0]! };
  if (recovered.segments.length && !recovered.files.length) info.result = { case: 'segments', value: recovered.segments[0]! };
  return recovered.files.length + recovered.segments.length;
}
