// HLS segment naming (egress-behaviour §4.4, the Go egress's TestSegmentNaming).
import { SegmentedFileSuffix, type SegmentedFileOutput } from '@livekit/protocol';
import { errors } from '../../errors.ts';
import { applyPlaceholders, cleanPath, formatTime, splitPath, type NamingContext } from '../naming.ts';
import { checkOutputPath } from '../path-safety.ts';
import type { SegmentsOutputPlan, StorageTarget } from '../pipeline-config.ts';

const DEFAULT_SEGMENT_DURATION_S = 4;

const stripExt = (base: string) => (base.lastIndexOf('.') >= 0 ? base.slice(0, base.lastIndexOf('.')) : base);

export function planSegments(s: SegmentedFileOutput, identifier: string, ctx: NamingContext, storage: StorageTarget): SegmentsOutputPlan {
  const retry = ctx.retryCount ?? 0;
  if (retry > 0) {
    if (s.filenamePrefix ? !s.filenamePrefix.includes('{retry}') : s.playlistName !== '' && !s.playlistName.includes('{retry}')) {
      throw errors.retryUnsupported();
    }
  }
  if (s.filenameSuffix !== SegmentedFileSuffix.INDEX && s.filenameSuffix !== SegmentedFileSuffix.TIMESTAMP) throw errors.invalidField('filename_suffix');
  const fields: [string, string][] = [['filename_prefix', s.filenamePrefix], ['playlist_name', s.playlistName], ['live_playlist_name', s.livePlaylistName]];
  const [prefix, playlist, live] = fields.map(([field, raw]) => {
    const templated = applyPlaceholders(raw, ctx);
    checkOutputPath(templated, storage, field);
    return cleanPath(templated);
  }) as [string, string, string];

  let [segmentDir, segmentBase] = splitPath(prefix);
  let [playlistDir, playlistBase] = splitPath(playlist);
  const [liveDir, liveBaseRaw] = splitPath(live);
  if (liveDir !== '' && liveDir !== playlistDir) throw errors.invalidField('live_playlist_name must be in same directory as playlist_name');
  // QUIRK: whatever follows the last dot goes, known extension or not.
  playlistBase = stripExt(playlistBase);
  const liveBase = stripExt(liveBaseRaw);
  if (segmentDir !== '') {
    if (segmentDir === playlistDir) segmentDir = '';
    else if (playlistDir === '') [playlistDir, segmentDir] = [segmentDir, ''];
  }
  if (playlistBase === '') playlistBase = segmentBase || `${identifier}-${formatTime(ctx.now)}${retry ? `-${retry}` : ''}`;
  if (segmentBase === '') segmentBase = playlistBase;
  const playlistName = `${playlistBase}.m3u8`;
  const livePlaylistName = liveBase ? `${liveBase}.m3u8` : undefined;
  if (livePlaylistName === playlistName) throw errors.invalidField('live_playlist_name cannot be identical to playlist_name');
  const plan: SegmentsOutputPlan = {
    type: 'segments',
    storageDir: playlistDir,
    playlistName,
    ...(livePlaylistName ? { livePlaylistName } : {}),
    segmentPrefix: segmentDir + segmentBase,
    suffix: s.filenameSuffix === SegmentedFileSuffix.TIMESTAMP ? 'timestamp' : 'index',
    segmentDurationS: s.segmentDuration > 0 ? s.segmentDuration : DEFAULT_SEGMENT_DURATION_S,
    disableManifest: s.disableManifest,
    storage,
  };
  checkSegmentsPaths(plan);
  return plan;
}

/** The final storage paths of a segments output, checked (again after the SDK placeholders). */
export function checkSegmentsPaths(p: SegmentsOutputPlan): void {
  checkOutputPath(p.storageDir + p.playlistName, p.storage, 'playlist_name');
  if (p.livePlaylistName) checkOutputPath(p.storageDir + p.livePlaylistName, p.storage, 'live_playlist_name');
  checkOutputPath(p.storageDir + p.segmentPrefix, p.storage, 'filename_prefix');
}
