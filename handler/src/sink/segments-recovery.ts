// Closing a dead handler's HLS output (run by the recovery handler, handler/src/recover.ts): the
// segments it stored are in its journal; the ones gst closed but nobody uploaded, and the last one it
// was writing when it died (MPEG-TS stays readable up to the last packet), are still on disk. They
// are uploaded in order, and both playlists are closed with every stored segment.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { SegmentsOutputPlan } from '@egress/shared/plan/pipeline-config.ts';
import type { Uploader } from '../upload/uploader.ts';
import { eventPlaylist, livePlaylist, type StoredSegment } from './hls-playlist.ts';
import { segmentName } from './output-names.ts';
import { JOURNAL, type JournalLine } from './segments.ts';

export interface RecoveredSegments {
  type: 'segments';
  playlistName: string;
  livePlaylistName: string;
  playlistLocation: string;
  livePlaylistLocation: string;
  segmentCount: number;
  size: number;
  /** Decimal strings: JSON has no bigint. */
  startedAtNs: string;
  durationNs: string;
  errors: string[];
}

const LOCAL_SEGMENT = /^seg_(\d{5})\.ts$/;

/** The journal's lines; a line cut short by the kill is left out. */
async function readJournal(dir: string): Promise<JournalLine[]> {
  const text = await readFile(path.join(dir, JOURNAL), 'utf8').catch(() => '');
  return text.split('\n').flatMap((l) => {
    try {
      return l ? [JSON.parse(l) as JournalLine] : [];
    } catch {
      return [];
    }
  });
}

export async function recoverSegments(
  report: { dir: string; plan: SegmentsOutputPlan },
  uploader: Uploader,
  durationSeconds: (file: string) => Promise<number>,
): Promise<RecoveredSegments> {
  const { dir, plan } = report;
  const lines = await readJournal(dir);
  const start = lines.find((l): l is Extract<JournalLine, { startedAtNs: string }> => 'startedAtNs' in l);
  const stored: (StoredSegment & { size: number })[] = lines.flatMap((l) =>
    'uri' in l ? [{ uri: l.uri, durationS: l.durationS, programDateTime: new Date(l.pdtMs), size: l.size }] : [],
  );
  const errors: string[] = [];
  const leftovers = (await readdir(dir)).filter((f) => LOCAL_SEGMENT.test(f)).sort();
  for (const f of leftovers) {
    const local = path.join(dir, f);
    const durationS = await durationSeconds(local);
    if (!(durationS > 0)) continue;
    const last = stored.at(-1);
    const pdtMs = last ? +last.programDateTime + last.durationS * 1000 : Number(BigInt(start?.startedAtNs ?? '0') / 1_000_000n);
    const uri = segmentName(plan.segmentPrefix, plan.suffix, Number(LOCAL_SEGMENT.exec(f)![1]), pdtMs);
    try {
      const up = await uploader.enqueue(local, plan.storageDir + uri, 'video/mp2t');
      stored.push({ uri, durationS, programDateTime: new Date(pdtMs), size: up.size });
    } catch (err) {
      errors.push(`${uri}: ${(err as Error).message}`);
    }
  }
  const publish = async (name: string, text: string): Promise<string> => {
    const local = path.join(dir, `recovered-${name.replace(/[^\w.-]/g, '_')}`);
    await writeFile(local, text);
    try {
      return (await uploader.enqueue(local, plan.storageDir + name, 'application/x-mpegurl')).location;
    } catch (err) {
      errors.push(`${name}: ${(err as Error).message}`);
      return '';
    }
  };
  const playlistLocation = await publish(plan.playlistName, eventPlaylist(stored, plan.segmentDurationS, true));
  const livePlaylistLocation = plan.livePlaylistName ? await publish(plan.livePlaylistName, livePlaylist(stored, plan.segmentDurationS, true)) : '';
  const durationS = stored.reduce((sum, s) => sum + s.durationS, 0);
  return {
    type: 'segments',
    playlistName: plan.storageDir + plan.playlistName,
    livePlaylistName: plan.livePlaylistName ? plan.storageDir + plan.livePlaylistName : '',
    playlistLocation,
    livePlaylistLocation,
    segmentCount: stored.length,
    size: stored.reduce((sum, s) => sum + s.size, 0),
    startedAtNs: start?.startedAtNs ?? '0',
    durationNs: String(Math.round(durationS * 1e9)),
    errors,
  };
}
