// The second naming pass (egress-behaviour §4.1): the handler calls this once the SDK source knows its
// publisher and track, then every path is checked again, because a publisher identity such as
// `../../etc` comes from a room participant, not from the request.
import { FILE_EXTENSION } from '../codecs.ts';
import { applySdkPlaceholders, cleanPath, fileOutputPath, type SdkNamingContext } from '../naming.ts';
import { checkOutputPath } from '../path-safety.ts';
import type { FileType, OutputPlan, SegmentsOutputPlan } from '../pipeline-config.ts';
import { checkSegmentsPaths } from './segments.ts';

export interface SdkResolveContext extends SdkNamingContext {
  /** Track egress / passthrough: the container the track's codec picked; names the file (default name, extension). */
  fileType?: FileType;
  /** The plan's identifier (for a default name) and the time of the first pass. */
  identifier?: string;
  now?: Date;
  retryCount?: number;
}

/** A copy of `output` with the SDK placeholders applied and its paths re-checked (throws invalid_argument). */
export function resolveSdkPlaceholders<T extends OutputPlan>(plan: T, ctx: SdkResolveContext): T {
  return resolve(plan, ctx) as T;
}

function resolve(output: OutputPlan, ctx: SdkResolveContext): OutputPlan {
  const sub = (s: string) => applySdkPlaceholders(s, ctx);
  switch (output.type) {
    case 'file': {
      let filepath = sub(output.filepath);
      checkOutputPath(filepath, output.storage, 'filepath');
      const fileType = output.fileType ?? ctx.fileType;
      if (!output.fileType && fileType) {
        filepath = fileOutputPath(filepath, FILE_EXTENSION[fileType], ctx.identifier ?? ctx.trackId ?? '', { now: ctx.now ?? new Date(), retryCount: ctx.retryCount ?? 0 });
      } else {
        filepath = cleanPath(filepath);
      }
      checkOutputPath(filepath, output.storage, 'filepath');
      return { ...output, filepath, ...(fileType ? { fileType } : {}) };
    }
    case 'segments': {
      const raw = { storageDir: sub(output.storageDir), playlistName: sub(output.playlistName), segmentPrefix: sub(output.segmentPrefix), live: output.livePlaylistName && sub(output.livePlaylistName) };
      checkOutputPath(raw.storageDir + raw.playlistName, output.storage, 'playlist_name');
      checkOutputPath(raw.storageDir + raw.segmentPrefix, output.storage, 'filename_prefix');
      const next: SegmentsOutputPlan = { ...output, storageDir: raw.storageDir, playlistName: raw.playlistName, segmentPrefix: raw.segmentPrefix, ...(raw.live ? { livePlaylistName: raw.live } : {}) };
      checkSegmentsPaths(next);
      return next;
    }
    case 'images': {
      const next = { ...output, storageDir: sub(output.storageDir), prefix: sub(output.prefix), filenamePrefix: sub(output.filenamePrefix) };
      checkOutputPath(next.storageDir + next.prefix, output.storage, 'filename_prefix');
      return next;
    }
    default:
      return output;
  }
}
