import { useEffect, useRef, useState } from 'react';
import { useTracks, VideoTrack, type TrackReference } from '@livekit/components-react';
import { Track } from 'livekit-client';
import { parseLayout, pickTop, placeTiles, type Candidate } from './layout.ts';

const VIDEO_SOURCES = [Track.Source.Camera, Track.Source.ScreenShare, Track.Source.Unknown];

const keyOf = (ref: TrackReference): string => `${ref.participant.identity}/${ref.publication.trackSid}`;

function useViewport(): { width: number; height: number } {
  const [size, setSize] = useState(() => ({ width: window.innerWidth, height: window.innerHeight }));
  useEffect(() => {
    const onResize = () => setSize({ width: window.innerWidth, height: window.innerHeight });
    window.addEventListener('resize', onResize);
    return () => window.removeEventListener('resize', onResize);
  }, []);
  return size;
}

/**
 * The room's remote videos in the requested layout. Tiles are absolutely placed and rendered in a
 * stable order under one parent, so a layout change (UpdateLayout, a screen share, a new speaker) only
 * moves boxes: a video that stays on screen keeps its element and never blinks.
 */
export function Stage({ layout }: { layout: string }) {
  const choice = parseLayout(layout);
  const { width, height } = useViewport();
  // The egress's own participant is left out: a recorder publishes nothing, but a page opened with
  // another token might.
  const refs = useTracks(VIDEO_SOURCES, { onlySubscribed: true }).filter(
    (ref) => ref.publication.kind === Track.Kind.Video && !ref.participant.isLocal,
  );
  const candidates: Candidate[] = refs.map((ref) => ({
    key: keyOf(ref),
    screenShare: ref.source === Track.Source.ScreenShare,
    speaking: ref.participant.isSpeaking,
    audioLevel: ref.participant.audioLevel,
    lastSpokeAt: ref.participant.lastSpokeAt?.getTime() ?? 0,
  }));
  const previousTop = useRef<string | undefined>(undefined);
  const top = pickTop(candidates, previousTop.current);
  useEffect(() => {
    previousTop.current = top;
  }, [top]);

  const keys = candidates.map((c) => c.key);
  const placed = new Map(
    placeTiles(choice.kind, keys, top, candidates.some((c) => c.screenShare), width, height).map((p) => [p.key, p]),
  );
  return (
    <div className={choice.light ? 'stage light' : 'stage'}>
      {refs.map((ref) => {
        const p = placed.get(keyOf(ref));
        if (!p) return null;
        return (
          <div key={keyOf(ref)} className="tile" style={{ left: p.x, top: p.y, width: p.w, height: p.h }}>
            {/* a muted camera leaves its tile empty: the layout does not jump when it comes back */}
            {!ref.publication.isMuted && <VideoTrack trackRef={ref} />}
          </div>
        );
      })}
    </div>
  );
}
