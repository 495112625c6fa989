// The SDK source: joins the room with @livekit/rtc-node as a hidden recorder and yields decoded frames.
import {
  AudioStream,
  Room,
  RoomEvent,
  TrackKind,
  TrackSource,
  VideoStream,
  type RemoteParticipant,
  type RemoteTrack,
  type RemoteTrackPublication,
} from '@livekit/rtc-node';
import { errors } from '@egress/shared/errors.ts';
import type { Logger } from '@egress/shared/logging.ts';

export const AUDIO_RATE = 48_000;
export const AUDIO_CHANNELS = 2;
const POLL_MS = 100;

export interface SubscribedTrack {
  trackId: string;
  kind: 'audio' | 'video';
  /** Lower-cased, e.g. `audio/opus`, `video/vp8`. */
  mimeType: string;
  /** Lower-cased TrackSource name, e.g. `microphone`. */
  source: string;
  publisherIdentity: string;
  track: RemoteTrack;
}

export class SdkSource {
  private readonly room = new Room();
  private ended?: (reason: string) => void;

  constructor(private readonly log: Logger) {}

  async connect(wsUrl: string, token: string): Promise<void> {
    this.room.on(RoomEvent.Disconnected, () => this.ended?.('Source closed'));
    await this.room.connect(wsUrl, token, { autoSubscribe: false, dynacast: false });
    this.log.debug('joined room', { room: this.room.name });
  }

  get roomName(): string {
    return this.room.name ?? '';
  }

  /** Resolves with the reason when the source ends on its own (track gone, room closed). */
  onEnded(cb: (reason: string) => void): void {
    this.ended = cb;
  }

  /** Waits up to `timeoutMs` for the track to be published, then subscribes to it. */
  async subscribeTrack(trackId: string, timeoutMs: number): Promise<SubscribedTrack> {
    const deadline = Date.now() + timeoutMs;
    let found: [RemoteTrackPublication, RemoteParticipant] | undefined;
    while (!(found = this.findPublication(trackId))) {
      if (Date.now() >= deadline) throw errors.trackNotFound(trackId);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    const [publication, participant] = found;
    const subscribed = new Promise<RemoteTrack>((resolve, reject) => {
      const timer = setTimeout(() => reject(errors.trackNotFound(trackId)), Math.max(0, deadline - Date.now()));
      this.room.on(RoomEvent.TrackSubscribed, (track, pub) => {
        if (pub.sid !== trackId) return;
        clearTimeout(timer);
        resolve(track);
      });
    });
    publication.setSubscribed(true);
    const track = await subscribed;
    for (const ev of [RoomEvent.TrackUnpublished, RoomEvent.TrackUnsubscribed] as const) {
      this.room.on(ev, (...args: unknown[]) => {
        const pub = args.find((a): a is RemoteTrackPublication => (a as RemoteTrackPublication)?.sid === trackId);
        if (pub) this.ended?.('Source closed');
      });
    }
    return {
      trackId,
      kind: publication.kind === TrackKind.KIND_AUDIO ? 'audio' : 'video',
      mimeType: (publication.mimeType ?? '').toLowerCase(),
      source: sourceName(publication.source),
      publisherIdentity: participant.identity,
      track,
    };
  }

  audioFrames(track: RemoteTrack): AudioStream {
    return new AudioStream(track, { sampleRate: AUDIO_RATE, numChannels: AUDIO_CHANNELS });
  }

  videoFrames(track: RemoteTrack): VideoStream {
    return new VideoStream(track);
  }

  private findPublication(trackId: string): [RemoteTrackPublication, RemoteParticipant] | undefined {
    for (const participant of this.room.remoteParticipants.values()) {
      const pub = participant.trackPublications.get(trackId);
      if (pub) return [pub, participant];
    }
    return undefined;
  }

  async close(): Promise<void> {
    this.ended = undefined;
    await this.room.disconnect();
  }
}

function sourceName(source: TrackSource | undefined): string {
  switch (source) {
    case TrackSource.SOURCE_CAMERA: return 'camera';
    case TrackSource.SOURCE_MICROPHONE: return 'microphone';
    case TrackSource.SOURCE_SCREENSHARE: return 'screen_share';
    case TrackSource.SOURCE_SCREENSHARE_AUDIO: return 'screen_share_audio';
    default: return 'unknown';
  }
}
