// Pure: which published tracks an SDK egress takes, and in what role (egress-behaviour §10.1).
// The room wrapper asks this for every publication it sees, at join and later.
import { errors } from '@egress/shared/errors.ts';
import type { AudioChannel, AudioRoute, ParticipantKindName, SdkSubscription } from '@egress/shared/plan/pipeline-config.ts';

export type TrackSourceName = 'camera' | 'microphone' | 'screen_share' | 'screen_share_audio' | 'unknown';

export interface PublicationView {
  sid: string;
  kind: 'audio' | 'video';
  source: TrackSourceName;
}

export interface ParticipantView {
  identity: string;
  kind: ParticipantKindName;
}

export type Role = { kind: 'audio'; channel: AudioChannel } | { kind: 'video' };

export interface SelectionState {
  /** Audio tracks given a channel so far (DUAL_CHANNEL_ALTERNATE alternates per added track). */
  audioTracksAdded: number;
}

/** The channel a route-less room mix gives a new track. */
function mixingChannel(mixing: Extract<SdkSubscription, { kind: 'room_audio' }>['mixing'], participant: ParticipantView, state: SelectionState): AudioChannel {
  switch (mixing) {
    case 'default':
      return 'both';
    case 'dual_channel_agent':
      return participant.kind === 'agent' ? 'left' : 'right';
    case 'dual_channel_alternate':
      return state.audioTracksAdded % 2 === 0 ? 'left' : 'right';
  }
}

function routeFor(routes: AudioRoute[], pub: PublicationView, participant: ParticipantView): AudioRoute | undefined {
  return routes.find((r) =>
    'trackId' in r.match ? r.match.trackId === pub.sid : 'identity' in r.match ? r.match.identity === participant.identity : r.match.participantKind === participant.kind,
  );
}

/**
 * The role of `pub` in this egress, or undefined to leave it alone. Throws the request's own
 * field error when a track named by id has the wrong kind (an audio id in the video slot).
 * `state` is updated when an audio role is handed out.
 */
export function roleFor(sub: SdkSubscription, pub: PublicationView, participant: ParticipantView, state: SelectionState): Role | undefined {
  const audio = (channel: AudioChannel): Role => {
    state.audioTracksAdded++;
    return { kind: 'audio', channel };
  };
  switch (sub.kind) {
    case 'track':
      if (pub.sid !== sub.trackId) return undefined;
      return pub.kind === 'audio' ? audio('both') : { kind: 'video' };
    case 'track_composite':
      if (pub.sid === sub.audioTrackId) {
        if (pub.kind !== 'audio') throw errors.invalidField('audio_track_id');
        return audio('both');
      }
      if (pub.sid === sub.videoTrackId) {
        if (pub.kind !== 'video') throw errors.invalidField('video_track_id');
        return { kind: 'video' };
      }
      return undefined;
    case 'participant': {
      if (participant.identity !== sub.identity) return undefined;
      const wanted = sub.screenShare ? { video: 'screen_share', audio: 'screen_share_audio' } : { video: 'camera', audio: 'microphone' };
      if (pub.kind === 'video' && pub.source === wanted.video) return { kind: 'video' };
      if (pub.kind === 'audio' && pub.source === wanted.audio) return audio('both');
      return undefined;
    }
    case 'room_audio':
      return pub.kind === 'audio' ? audio(mixingChannel(sub.mixing, participant, state)) : undefined;
    case 'media': {
      if (pub.kind === 'video') {
        const v = sub.video;
        if (!v) return undefined;
        if ('trackId' in v) return v.trackId === pub.sid ? { kind: 'video' } : undefined;
        const source = v.preferScreenShare ? 'screen_share' : 'camera';
        return v.identity === participant.identity && pub.source === source ? { kind: 'video' } : undefined;
      }
      const a = sub.audio;
      if (!a) return undefined;
      // The Go quirk (§1.8): capture_all ignores the routes and takes everything to both channels.
      if (a.captureAll) return audio('both');
      const route = routeFor(a.routes, pub, participant);
      return route ? audio(route.channel) : undefined;
    }
  }
}

/** Track ids an egress cannot start without: waited for up to the subscribe timeout (`track <id> not found`). */
export function requiredTracks(sub: SdkSubscription): string[] {
  switch (sub.kind) {
    case 'track':
      return [sub.trackId];
    case 'track_composite':
      return [sub.audioTrackId, sub.videoTrackId].filter((t): t is string => !!t);
    case 'media': {
      const ids = sub.video && 'trackId' in sub.video ? [sub.video.trackId] : [];
      if (sub.audio && !sub.audio.captureAll) for (const r of sub.audio.routes) if ('trackId' in r.match) ids.push(r.match.trackId);
      return ids;
    }
    default:
      return [];
  }
}

/** Participants an egress cannot start without (`participant <identity> not found`). */
export function requiredParticipants(sub: SdkSubscription): string[] {
  switch (sub.kind) {
    case 'participant':
      return [sub.identity];
    case 'media': {
      const ids = sub.video && 'identity' in sub.video ? [sub.video.identity] : [];
      if (sub.audio && !sub.audio.captureAll) for (const r of sub.audio.routes) if ('identity' in r.match) ids.push(r.match.identity);
      return [...new Set(ids)];
    }
    default:
      return [];
  }
}

/**
 * When the source ends by itself: track-based kinds once every track they took has gone, a
 * participant egress when its participant leaves, room and media mixes only with the room.
 */
export function endsWhenTracksGone(sub: SdkSubscription): boolean {
  return sub.kind === 'track' || sub.kind === 'track_composite';
}

/** Track-based kinds take no new subscriptions once started (a republished track is a new id). */
export function takesLateTracks(sub: SdkSubscription): boolean {
  return sub.kind !== 'track' && sub.kind !== 'track_composite';
}
