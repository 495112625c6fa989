// The SDK source: joins the room with @livekit/rtc-node as a hidden recorder, takes the tracks
// the plan's subscription selects (at join and, for participant / room / media egress, later),
// and hands their decoded frames to the job's media timeline.
import {
  AudioStream,
  Room,
  RoomEvent,
  TrackKind,
  TrackSource,
  VideoBufferType,
  VideoStream,
  type RemoteParticipant,
  type RemoteTrack,
  type RemoteTrackPublication,
  type TrackPublication,
  type Participant,
} from '@livekit/rtc-node';
import { DisconnectReason, ParticipantKind } from '@livekit/rtc-node';
import { disconnectEnding } from './disconnect.ts';
import { errors, type EgressError } from '@egress/shared/errors.ts';
import type { Logger } from '@egress/shared/logging.ts';
import type { ParticipantKindName, SdkSubscription } from '@egress/shared/plan/pipeline-config.ts';
import { MIX_CHANNELS, MIX_RATE } from '../../media/mixer.ts';
import type { Source, SourceSink, TrackInfo } from '../source.ts';
import { endsWhenTracksGone, requiredParticipants, requiredTracks, roleFor, takesLateTracks, type PublicationView, type Role, type SelectionState, type TrackSourceName } from './selection.ts';

/** Waits re-check at least this often; room events wake them at once. */
const POLL_MS = 100;
/** After join, how long publications already there may take to subscribe before recording starts anyway (Go: 3 s). */
const SOFT_WAIT_MS = 3_000;
/** How often the receive-side delays are read for A/V alignment. */
const STATS_MS = 2_000;
const FIRST_STATS_MS = 250;
/** A subscribed, unmuted track that yields no decodable frame for this long fails the egress. */
export const NO_FRAME_TIMEOUT_MS = 10_000;

export interface RoomSourceOptions {
  wsUrl: string;
  token: string;
  subscription: SdkSubscription;
  /** How long named participants and tracks are waited for (Go: 30 s). */
  subscribeTimeoutMs: number;
  noFrameTimeoutMs?: number;
  log: Logger;
}

interface Taken {
  info: TrackInfo;
  role: Role;
  track?: RemoteTrack;
  reader?: { cancel(): Promise<void> };
  gotFrame: boolean;
  noFrameTimer?: NodeJS.Timeout;
}

export class RoomSource implements Source {
  private readonly room = new Room();
  private readonly taken = new Map<string, Taken>();
  /** Tracks unsubscribed because this egress does not take them. */
  private readonly declined = new Set<string>();
  private readonly selection: SelectionState = { audioTracksAdded: 0 };
  private sink?: SourceSink;
  /** Initial publications taken: later ones are new tracks. */
  private joined = false;
  /** Start-up done: from now on, losing every track ends a track-based egress. */
  private started = false;
  private closed = false;
  private statsTimer?: NodeJS.Timeout;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Last cumulative jitter-buffer figures per inbound stream, for per-window averages. */
  private readonly lastDelays = new Map<string, { delay: number; emitted: number }>();
  /** Wakes a pending `until`: the room changed. */
  private wake?: () => void;
  private endedWith?: (r: { reason: string; error?: EgressError }) => void;
  readonly ended = new Promise<{ reason: string; error?: EgressError }>((r) => (this.endedWith = r));

  constructor(private readonly opts: RoomSourceOptions) {}

  private get log(): Logger {
    return this.opts.log;
  }

  async start(sink: SourceSink): Promise<TrackInfo[]> {
    this.sink = sink;
    const sub = this.opts.subscription;
    this.room.on(RoomEvent.Disconnected, (reason: DisconnectReason) => {
      if (this.closed) return;
      const e = disconnectEnding(reason);
      this.log.info('disconnected from the room', { reason: DisconnectReason[reason] ?? reason });
      this.end(e.reason, e.error);
    });
    this.room.on(RoomEvent.TrackPublished, (pub, p) => {
      this.wake?.();
      if (!this.joined) this.declineUnwanted(pub, p);
      else if (takesLateTracks(sub)) this.consider(pub, p);
      else this.decline(pub);
    });
    this.room.on(RoomEvent.ParticipantConnected, () => this.wake?.());
    this.room.on(RoomEvent.TrackSubscribed, (track, pub, p) => {
      this.wake?.();
      this.onSubscribed(track, pub, p);
    });
    this.room.on(RoomEvent.TrackUnpublished, (pub) => this.drop(pub.sid ?? ''));
    this.room.on(RoomEvent.TrackUnsubscribed, (_t, pub) => this.drop(pub.sid ?? ''));
    this.room.on(RoomEvent.TrackMuted, (pub) => this.onMuted(pub, true));
    this.room.on(RoomEvent.TrackUnmuted, (pub) => this.onMuted(pub, false));
    this.room.on(RoomEvent.ParticipantDisconnected, (p) => {
      if (sub.kind === 'participant' && p.identity === sub.identity) this.end('Source closed');
    });
    // Subscribed by livekit-server as it joins us, in the join's own negotiation: a subscription asked
    // for after the join took another ~350 ms here (measured, audio track). What the egress never
    // takes is unsubscribed as soon as it is seen (declineUnwanted, consider).
    await this.room.connect(this.opts.wsUrl, this.opts.token, { autoSubscribe: true, dynacast: false });
    for (const p of this.room.remoteParticipants.values()) for (const pub of p.trackPublications.values()) this.declineUnwanted(pub, p);
    this.log.debug('joined room', { room: this.room.name });

    const deadline = Date.now() + this.opts.subscribeTimeoutMs;
    await this.until(deadline, () => {
      const missing = requiredParticipants(sub).find((id) => !this.participant(id));
      if (missing) throw errors.participantNotFound(missing);
      const track = requiredTracks(sub).find((id) => !this.publication(id));
      if (track) throw errors.trackNotFound(track);
    });
    this.joined = true;
    for (const p of this.room.remoteParticipants.values()) for (const pub of p.trackPublications.values()) this.consider(pub, p);
    // Named tracks must be subscribed within the same deadline; anything else gets a soft wait.
    const named = requiredTracks(sub);
    await this.until(deadline, () => {
      const pending = named.find((sid) => !this.taken.get(sid)?.track);
      if (pending) throw errors.trackNotFound(pending);
    });
    await this.until(Date.now() + SOFT_WAIT_MS, () => {
      if ([...this.taken.values()].some((t) => !t.track)) throw new Error('pending');
    }).catch(() => undefined);
    this.started = true;
    this.statsTimer = setInterval(() => void this.readDelays(), STATS_MS);
    this.timers.push(setTimeout(() => void this.readDelays(), FIRST_STATS_MS));
    return [...this.taken.values()].map((t) => t.info);
  }

  /** Polls `check` until it stops throwing; rethrows its last error at the deadline or on close. */
  private async until(deadline: number, check: () => void): Promise<void> {
    for (;;) {
      try {
        return check();
      } catch (err) {
        if (this.closed || Date.now() >= deadline) throw err;
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          this.wake = undefined;
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(done, POLL_MS);
        this.wake = done;
      });
    }
  }

  private participant(identity: string): RemoteParticipant | undefined {
    for (const p of this.room.remoteParticipants.values()) if (p.identity === identity) return p;
    return undefined;
  }

  private publication(sid: string): RemoteTrackPublication | undefined {
    for (const p of this.room.remoteParticipants.values()) {
      const pub = p.trackPublications.get(sid);
      if (pub) return pub;
    }
    return undefined;
  }

  /** Unsubscribes (once) a track the join's autoSubscribe gave us that this egress does not take. */
  private decline(pub: RemoteTrackPublication): void {
    const sid = pub.sid;
    if (!sid || this.declined.has(sid)) return;
    this.declined.add(sid);
    pub.setSubscribed(false);
  }

  /** Before the initial tracks are taken: declines what the plan would never take (its channel aside). */
  private declineUnwanted(pub: RemoteTrackPublication, p: RemoteParticipant): void {
    try {
      if (!roleFor(this.opts.subscription, publicationView(pub), { identity: p.identity, kind: kindName(p) }, { audioTracksAdded: 0 })) this.decline(pub);
    } catch {
      // A track of the wrong kind: consider() fails the egress with the request's error.
    }
  }

  private consider(pub: RemoteTrackPublication, p: RemoteParticipant): void {
    const sid = pub.sid;
    if (!sid || this.taken.has(sid) || this.closed) return;
    const view = publicationView(pub);
    const info: TrackInfo = {
      trackId: sid,
      kind: view.kind,
      mimeType: (pub.mimeType ?? '').toLowerCase(),
      source: view.source,
      publisherIdentity: p.identity,
      width: pub.width ?? 0,
      height: pub.height ?? 0,
    };
    let role: Role | undefined;
    try {
      role = roleFor(this.opts.subscription, view, { identity: p.identity, kind: kindName(p) }, this.selection);
    } catch (err) {
      this.end('Source failed', err as EgressError);
      return;
    }
    if (!role) return this.decline(pub);
    this.taken.set(sid, { info, role, gotFrame: false });
    this.log.info('subscribing', { trackId: sid, kind: info.kind, mimeType: info.mimeType, publisher: p.identity, role });
    // Subscribed at the join already: its TrackSubscribed came before it was taken.
    if (pub.track) return this.onSubscribed(pub.track as RemoteTrack, pub, p);
    pub.setSubscribed(true);
  }

  private onSubscribed(track: RemoteTrack, pub: RemoteTrackPublication, _p: RemoteParticipant): void {
    const t = this.taken.get(pub.sid ?? '');
    if (!t || t.track || this.closed) return;
    t.track = track;
    t.info.mimeType ||= (pub.mimeType ?? '').toLowerCase();
    this.sink!.trackAdded(t.info, t.role);
    if (pub.muted) this.sink!.trackMuted(t.info.trackId, true);
    this.armNoFrame(t, pub);
    void (t.role.kind === 'audio' ? this.readAudio(t, track) : this.readVideo(t, track));
  }

  /** A track that never decodes would keep the egress in STARTING (or black) for ever: fail it, naming it. */
  private armNoFrame(t: Taken, pub: TrackPublication): void {
    const ms = this.opts.noFrameTimeoutMs ?? NO_FRAME_TIMEOUT_MS;
    t.noFrameTimer = setTimeout(() => {
      if (t.gotFrame || pub.muted || this.closed || !this.taken.has(t.info.trackId)) return;
      this.end('Source failed', errors.noDecodableFrame(t.info.trackId, t.info.mimeType || t.info.kind, ms / 1000));
    }, ms);
  }

  private async readAudio(t: Taken, track: RemoteTrack): Promise<void> {
    const reader = new AudioStream(track, { sampleRate: MIX_RATE, numChannels: MIX_CHANNELS }).getReader();
    t.reader = reader;
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (done || !value || this.closed) break;
      t.gotFrame = true;
      this.sink?.audioFrame(t.info.trackId, value.data, value.samplesPerChannel, value.sampleRate, value.channels);
    }
  }

  private async readVideo(t: Taken, track: RemoteTrack): Promise<void> {
    const reader = new VideoStream(track).getReader();
    t.reader = reader;
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (done || !value || this.closed) break;
      t.gotFrame = true;
      const frame = value.frame.type === VideoBufferType.I420 ? value.frame : value.frame.convert(VideoBufferType.I420);
      this.sink?.videoFrame(t.info.trackId, { data: frame.data, width: frame.width, height: frame.height }, value.timestampUs);
    }
  }

  private onMuted(pub: TrackPublication, muted: boolean): void {
    const t = this.taken.get(pub.sid ?? '');
    if (!t?.track) return;
    this.log.info(muted ? 'track muted' : 'track unmuted', { trackId: t.info.trackId });
    this.sink?.trackMuted(t.info.trackId, muted);
  }

  private drop(sid: string): void {
    const t = this.taken.get(sid);
    if (!t) return;
    this.taken.delete(sid);
    clearTimeout(t.noFrameTimer);
    void t.reader?.cancel().catch(() => undefined);
    if (t.track) this.sink?.trackRemoved(sid);
    this.log.info('track gone', { trackId: sid });
    if (this.started && endsWhenTracksGone(this.opts.subscription) && this.taken.size === 0) this.end('Source closed');
  }

  private end(reason: string, error?: EgressError): void {
    this.endedWith?.({ reason, ...(error ? { error } : {}) });
    this.endedWith = undefined;
  }

  /**
   * The average jitter-buffer delay of each kind over the last window, from WebRTC stats
   * (jitterBufferDelay / jitterBufferEmittedCount of every inbound stream). Stats name streams by
   * a track identifier that is not the track sid, so the figures are per kind.
   */
  private async readDelays(): Promise<void> {
    const stats = await this.room.getRtcStats().catch(() => undefined);
    if (!stats || this.closed) return;
    const perKind: Record<string, number[]> = { audio: [], video: [] };
    for (const entry of [...stats.subscriberStats, ...stats.publisherStats]) {
      if (entry.stats.case !== 'inboundRtp') continue;
      const { stream, inbound } = entry.stats.value;
      const id = `${stream?.ssrc}`;
      const delay = inbound?.jitterBufferDelay ?? 0;
      const emitted = Number(inbound?.jitterBufferEmittedCount ?? 0n);
      // The first reading averages since the stream began, so the estimate is there from the start.
      const last = this.lastDelays.get(id) ?? { delay: 0, emitted: 0 };
      this.lastDelays.set(id, { delay, emitted });
      if (emitted > last.emitted && stream?.kind) perKind[stream.kind]?.push(((delay - last.delay) / (emitted - last.emitted)) * 1000);
    }
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    if (perKind.audio!.length && perKind.video!.length) this.sink?.receiveDelays?.(mean(perKind.audio!), mean(perKind.video!));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.statsTimer);
    this.timers.forEach(clearTimeout);
    for (const t of this.taken.values()) {
      clearTimeout(t.noFrameTimer);
      await t.reader?.cancel().catch(() => undefined);
    }
    this.taken.clear();
    await this.room.disconnect().catch(() => undefined);
  }
}

function publicationView(pub: TrackPublication): PublicationView {
  return { sid: pub.sid ?? '', kind: pub.kind === TrackKind.KIND_AUDIO ? 'audio' : 'video', source: sourceName(pub.source) };
}

function kindName(p: Participant): ParticipantKindName {
  switch (p.kind) {
    case ParticipantKind.AGENT: return 'agent';
    case ParticipantKind.INGRESS: return 'ingress';
    case ParticipantKind.EGRESS: return 'egress';
    case ParticipantKind.SIP: return 'sip';
    default: return 'standard';
  }
}

function sourceName(source: TrackSource | undefined): TrackSourceName {
  switch (source) {
    case TrackSource.SOURCE_CAMERA: return 'camera';
    case TrackSource.SOURCE_MICROPHONE: return 'microphone';
    case TrackSource.SOURCE_SCREENSHARE: return 'screen_share';
    case TrackSource.SOURCE_SCREENSHARE_AUDIO: return 'screen_share_audio';
    default: return 'unknown';
  }
}
