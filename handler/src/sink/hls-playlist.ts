// Pure: the HLS playlists of a segments output (egress-behaviour §11.4), written with hls-parser.
// The EVENT playlist lists every segment; the live one a sliding window of the last 5. Both end with
// ENDLIST when the recording has. They only ever list segments that are already stored.
import HLS from 'hls-parser';

export interface StoredSegment {
  /** Relative to the playlist's directory. */
  uri: string;
  durationS: number;
  /** Wall time of the segment's first frame. */
  programDateTime: Date;
}

export const LIVE_WINDOW = 5;

function playlist(segments: StoredSegment[], opts: { targetDurationS: number; ended: boolean; event: boolean; firstSequence: number }): string {
  const { MediaPlaylist, Segment } = HLS.types;
  // TARGETDURATION must be at least every EXTINF rounded to the nearest integer (RFC 8216 §4.3.3.1).
  const target = Math.max(opts.targetDurationS, ...segments.map((s) => Math.round(s.durationS)));
  const p = new MediaPlaylist({
    version: 4,
    targetDuration: target,
    mediaSequenceBase: opts.firstSequence,
    endlist: opts.ended,
    ...(opts.event ? { playlistType: 'EVENT' as const } : {}),
    segments: segments.map(
      (s, i) =>
        new Segment({
          uri: s.uri,
          duration: Math.round(s.durationS * 1000) / 1000,
          mediaSequenceNumber: opts.firstSequence + i,
          discontinuitySequence: 0,
          programDateTime: s.programDateTime,
        }),
    ),
  });
  return HLS.stringify(p);
}

export function eventPlaylist(segments: StoredSegment[], targetDurationS: number, ended: boolean): string {
  return playlist(segments, { targetDurationS, ended, event: true, firstSequence: 0 });
}

export function livePlaylist(segments: StoredSegment[], targetDurationS: number, ended: boolean): string {
  const first = Math.max(0, segments.length - LIVE_WINDOW);
  return playlist(segments.slice(first), { targetDurationS, ended, event: false, firstSequence: first });
}
