import { useEffect } from 'react';
import { Track, type RemoteTrack, type Room } from 'livekit-client';
import { EgressHelper } from './egress-helper.ts';

const POLL_MS = 100;
/** With only audio tracks, start this long after mount. */
const AUDIO_ONLY_AFTER_MS = 500;
/** With tracks that never show a decoded frame, start anyway this long after mount. */
const ANY_TRACK_AFTER_MS = 5000;

function subscribedTracks(room: Room): RemoteTrack[] {
  const tracks: RemoteTrack[] = [];
  for (const p of room.remoteParticipants.values()) {
    for (const pub of p.trackPublications.values()) {
      if (pub.isSubscribed && pub.track) tracks.push(pub.track);
    }
  }
  return tracks;
}

// Decoded is not yet painted: the clock starts once a tile has a picture, so a recording does not
// open on black tiles.
async function showsPicture(track: RemoteTrack): Promise<boolean> {
  if (!track.attachedElements.some((el) => el instanceof HTMLVideoElement && el.videoWidth > 0)) return false;
  const report = await track.getRTCStatsReport();
  let decoded = false;
  report?.forEach((s: { type?: string; framesDecoded?: number }) => {
    if (s.type === 'inbound-rtp' && (s.framesDecoded ?? 0) > 0) decoded = true;
  });
  return decoded;
}

async function shouldStart(room: Room, elapsedMs: number): Promise<boolean> {
  const tracks = subscribedTracks(room);
  if (tracks.length === 0) return false;
  const videos = tracks.filter((t) => t.kind === Track.Kind.Video);
  for (const video of videos) {
    if (await showsPicture(video)) return true;
  }
  if (videos.length === 0) return elapsedMs > AUDIO_ONLY_AFTER_MS;
  return elapsedMs > ANY_TRACK_AFTER_MS;
}

/**
 * Logs START_RECORDING once (egress-behaviour §9.3): when a remote video shows decoded frames, or with
 * audio only after 500 ms, or with any subscribed track after 5 s. An empty room never starts.
 */
export function useStartSignal(room: Room): void {
  useEffect(() => {
    const mountedAt = performance.now();
    let started = false;
    let polling = false;
    const timer = window.setInterval(() => {
      if (started || polling) return;
      polling = true;
      shouldStart(room, performance.now() - mountedAt)
        .then((start) => {
          if (!start || started) return;
          started = true;
          window.clearInterval(timer);
          EgressHelper.startRecording();
        })
        // a track that went away mid-poll: the next poll looks again
        .catch(() => {})
        .finally(() => {
          polling = false;
        });
    }, POLL_MS);
    return () => window.clearInterval(timer);
  }, [room]);
}
