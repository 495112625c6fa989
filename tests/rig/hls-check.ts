// A strict check of an HLS media playlist as the egress writes it (egress-behaviour §14.4): parsed
// by hls-parser in strict mode (any spec violation it knows throws), then the rules it does not
// enforce: every EXTINF within the target duration, a contiguous media sequence, no discontinuity,
// program-date-time gaps equal to the EXTINF durations, and ENDLIST when the recording has ended.
import HLS from 'hls-parser';

export interface PlaylistCheck {
  type?: 'EVENT' | 'VOD';
  targetDuration: number;
  mediaSequence: number;
  endlist: boolean;
  segments: { uri: string; duration: number; programDateTime?: Date }[];
}

export function checkPlaylist(text: string, opts: { ended: boolean }): PlaylistCheck {
  HLS.setOptions({ strictMode: true });
  const p = HLS.parse(text);
  if (p.isMasterPlaylist) throw new Error('a master playlist, not a media playlist');
  const problems: string[] = [];
  const base = p.mediaSequenceBase ?? 0;
  p.segments.forEach((s, i) => {
    if (Math.round(s.duration) > p.targetDuration) problems.push(`${s.uri}: EXTINF ${s.duration} exceeds TARGETDURATION ${p.targetDuration}`);
    if (s.mediaSequenceNumber !== base + i) problems.push(`${s.uri}: media sequence ${s.mediaSequenceNumber}, expected ${base + i}`);
    if (s.discontinuity) problems.push(`${s.uri}: unexpected discontinuity`);
    if (!s.programDateTime) problems.push(`${s.uri}: no PROGRAM-DATE-TIME`);
    const prev = p.segments[i - 1];
    if (prev?.programDateTime && s.programDateTime) {
      const gap = (+s.programDateTime - +prev.programDateTime) / 1000;
      if (Math.abs(gap - prev.duration) > 0.05) problems.push(`${s.uri}: PROGRAM-DATE-TIME gap ${gap} s ≠ previous EXTINF ${prev.duration} s`);
    }
  });
  if (opts.ended !== p.endlist) problems.push(opts.ended ? 'no ENDLIST' : 'ENDLIST before the end');
  if (problems.length) throw new Error(`playlist check failed:\n  ${problems.join('\n  ')}\n${text}`);
  return {
    ...(p.playlistType ? { type: p.playlistType } : {}),
    targetDuration: p.targetDuration,
    mediaSequence: base,
    endlist: p.endlist,
    segments: p.segments.map((s) => ({ uri: s.uri, duration: s.duration, ...(s.programDateTime ? { programDateTime: s.programDateTime } : {}) })),
  };
}
