// One track's encoded RTP, not decoded: a werift peer connection answers LiveKit's subscriber
// offers, and the track's plain RTP and sender reports are handed out for a gst
// `udpsrc ! rtpbin ! depay ! mux` pipeline (webrtc-passthrough §2, §5, §6).
import {
  DisconnectReason,
  LeaveRequest_Action,
  ParticipantInfo_State,
  ParticipantTracks,
  SessionDescription,
  SignalTarget,
  SubscriptionError,
  TrackSource,
  TrackType,
  TrickleRequest,
  UpdateSubscription,
  UpdateTrackSettings,
  VideoQuality,
  type ParticipantInfo,
  type TrackInfo as LkTrackInfo,
} from '@livekit/protocol';
import {
  RTCPeerConnection,
  RTCRtpCodecParameters,
  RtcpSrPacket,
  useAV1,
  useDependencyDescriptor,
  useFIR,
  useH264,
  useNACK,
  useOPUS,
  usePLI,
  useTransportWideCC,
  useTWCC,
  useVP8,
  useVP9,
  type RTCIceCandidateInit,
  type RTCPeerConnectionConfig,
  type RTCRtpTransceiver,
  type RtcpPacket,
  type RtpPacket,
} from 'werift';
import { errors, type EgressError } from '@egress/shared/errors.ts';
import type { Logger } from '@egress/shared/logging.ts';
import type { TrackInfo } from '../source.ts';
import type { TrackSourceName } from '../sdk/selection.ts';
import { candidateHost, h264PayloadTypes, onlyLoopbackCandidates, trackSsrcs } from './sdp.ts';
import { connectSignal, type Signal, type SignalMessage } from './signal.ts';
import { enlargeUdpReceiveBuffers, fixNackWrap, missedPackets } from './werift-fixes.ts';

export interface RtpCodec {
  /** Lower-case, e.g. 'video/vp8', 'video/h264', 'audio/opus'. */
  mimeType: string;
  payloadType: number;
  clockRate: number;
  channels?: number;
  /**
   * The answered entry's. LiveKit binds a downtrack to the entry whose fmtp string equals the
   * publisher's, else to the first of that MIME type, so for H.264 this may not describe the stream
   * (seen: a packetization-mode=1 stream on the answer's packetization-mode=0 entry). Depayloaders
   * do not need it.
   */
  fmtp?: string;
}

export interface RtpSubscription {
  info: TrackInfo;
  /**
   * Settles with the codec negotiated for the payload type the track arrives with, at its first RTP
   * packet. Rejects if none comes in time; the subscription has then ended (`ended`) too.
   */
  readonly receiving: Promise<RtpCodec>;
  /** The downtrack SSRC. */
  readonly ssrc: number;
  /** Plain RTP packets, serialized; padding-only probes dropped, RTX already unwrapped. The first listener also gets what arrived before it. */
  onRtp(cb: (packet: Buffer) => void): void;
  /** Each sender report for this SSRC followed by an SDES CNAME chunk, ready for rtpbin's RTCP port. */
  onRtcp(cb: (compound: Buffer) => void): void;
  /** A PLI for this SSRC (LiveKit ignores feedback whose media SSRC is not the downtrack's). */
  requestKeyframe(): void;
  /** Called at once if the track is muted when registered. */
  onMuted(cb: (muted: boolean) => void): void;
  /** 'Source closed' when the track or its publisher goes or the room closes; 'Failure' when the connection is lost. Pending after close(). */
  readonly ended: Promise<{ reason: string; error?: EgressError }>;
  /** Leaves, closes the signal connection and the peer connection; idempotent. */
  close(): Promise<void>;
}

export interface SubscribeOptions {
  wsUrl: string;
  token: string;
  trackId: string;
  /** How long the track may take to be published. */
  timeoutMs: number;
  /** test_overrides.rtp_loss_percent: this share of the media packets that reach werift is dropped. */
  lossPercent?: number;
  log: Logger;
}

/** Once subscribed, the first packet must come within this (a muted track still gets padding: sdk=go). */
const FIRST_RTP_TIMEOUT_MS = 10_000;
/** Offers have listed 3 H.264 variants, 5 with the server's strict ones; werift answers one per entry. */
const MIN_H264_ENTRIES = 8;
/** What is kept for a listener that is not there yet (~10 s of 2.5 Mbps video). */
const MAX_BACKLOG = 10_000;
const LOOPBACK = '127.0.0.1';

/** Joins, subscribes to `trackId`, and resolves once its first RTP packet arrived. */
export async function subscribeTrack(o: SubscribeOptions): Promise<RtpSubscription> {
  enlargeUdpReceiveBuffers();
  const startedAt = Date.now();
  const signal = await connectSignal({ wsUrl: o.wsUrl, token: o.token, log: o.log });
  const sub = new Subscription(signal, o, isLoopback(o.wsUrl));
  try {
    await sub.start(startedAt);
    return sub;
  } catch (err) {
    await sub.close();
    throw err;
  }
}

type Ending = { reason: string; error?: EgressError };

class Subscription implements RtpSubscription {
  info!: TrackInfo;
  receiving!: Promise<RtpCodec>;
  private codec?: RtpCodec;
  private targetSsrc?: number;
  private publisherSid?: string;
  private transceiver?: RTCRtpTransceiver;
  private pc?: RTCPeerConnection;
  private readonly earlyCandidates: RTCIceCandidateInit[] = [];
  private negotiation = Promise.resolve();
  private readonly hooked = new WeakSet<object>();
  private readonly rtp = new Fanout<Buffer>((err) => this.log.error('an RTP listener failed', { error: String(err) }));
  private readonly rtcp = new Fanout<Buffer>((err) => this.log.error('an RTCP listener failed', { error: String(err) }));
  private readonly mutedListeners: ((muted: boolean) => void)[] = [];
  private muted = false;
  private otherPayloadType = false;
  private found?: () => void;
  private gotRtp?: () => void;
  private closing?: Promise<void>;
  private endWith?: (e: Ending) => void;
  readonly ended = new Promise<Ending>((r) => (this.endWith = r));

  constructor(
    private readonly signal: Signal,
    private readonly o: SubscribeOptions,
    private readonly loopback: boolean,
  ) {}

  get ssrc(): number {
    return this.targetSsrc ?? 0;
  }

  private get log(): Logger {
    return this.o.log;
  }

  async start(startedAt: number): Promise<void> {
    const { trackId } = this.o;
    const joinedAt = Date.now();
    // Until the track is found, anything that ends the subscription fails the start.
    const gone = this.ended.then((e) => Promise.reject(e.error ?? errors.trackNotFound(trackId)));
    gone.catch(() => undefined);
    const found = new Promise<void>((r) => (this.found = r));
    // The join's snapshot first: the updates queued behind it are newer.
    this.onParticipants(this.signal.join.otherParticipants);
    this.signal.onMessage((m) => {
      try {
        this.onSignal(m);
      } catch (err) {
        this.log.error('could not handle a signal message', { case: m.case, error: String(err) });
        this.end('Failure', errors.connectionFailed());
      }
    });
    void this.signal.lost.then((why) => {
      this.log.warn('signal connection lost', { why });
      this.end('Failure', errors.connectionFailed());
    });
    await race(found, gone, this.o.timeoutMs - (Date.now() - startedAt), () => errors.trackNotFound(trackId));

    // Resolved here, before the first packet: a consumer gets ready (gst starts) while it comes.
    const gotRtp = new Promise<void>((r) => (this.gotRtp = r));
    this.subscribe();
    const subscribedAt = Date.now();
    this.receiving = race(gotRtp, gone, FIRST_RTP_TIMEOUT_MS, () => errors.noDecodableFrame(trackId, this.info.mimeType || this.info.kind, FIRST_RTP_TIMEOUT_MS / 1000)).then(
      () => {
        if (this.info.kind === 'video') this.requestKeyframe();
        this.log.info('receiving track RTP', {
          trackId,
          codec: this.codec?.mimeType,
          payloadType: this.codec?.payloadType,
          ssrc: this.targetSsrc,
          joinMs: joinedAt - startedAt,
          firstRtpMs: Date.now() - subscribedAt,
        });
        return this.codec!;
      },
      (err: EgressError) => {
        this.end('Source failed', err);
        throw err;
      },
    );
    this.receiving.catch(() => undefined);
  }

  private subscribe(): void {
    const { trackId } = this.o;
    this.signal.send({
      case: 'subscription',
      value: new UpdateSubscription({ trackSids: [trackId], subscribe: true, participantTracks: [new ParticipantTracks({ participantSid: this.publisherSid, trackSids: [trackId] })] }),
    });
    if (this.info.kind === 'video') {
      // Pinned to the top layer: a layer switch would change the resolution inside the recording.
      this.signal.send({
        case: 'trackSetting',
        value: new UpdateTrackSettings({ trackSids: [trackId], disabled: false, quality: VideoQuality.HIGH, width: this.info.width, height: this.info.height }),
      });
    }
  }

  private onSignal(m: SignalMessage): void {
    switch (m.case) {
      case 'offer': {
        const offer = m.value;
        this.negotiation = this.negotiation.then(() => this.answer(offer)).catch((err: unknown) => {
          this.log.error('subscriber negotiation failed', { error: String(err) });
          this.end('Failure', errors.connectionFailed());
        });
        return;
      }
      case 'trickle':
        if (m.value.target === SignalTarget.SUBSCRIBER) this.addCandidate(JSON.parse(m.value.candidateInit) as RTCIceCandidateInit);
        return;
      case 'update':
        return this.onParticipants(m.value.participants);
      case 'mute':
        if (m.value.sid === this.o.trackId) this.setMuted(m.value.muted);
        return;
      case 'trackUnpublished':
        if (m.value.trackSid === this.o.trackId) this.end('Source closed');
        return;
      case 'leave': {
        const { reason, action } = m.value;
        this.log.info('the server ended the session', { reason: DisconnectReason[reason], action: LeaveRequest_Action[action] });
        // Resume / reconnect is not attempted: the recording ends early instead.
        const normal = action === LeaveRequest_Action.DISCONNECT && [DisconnectReason.CLIENT_INITIATED, DisconnectReason.ROOM_DELETED, DisconnectReason.ROOM_CLOSED, DisconnectReason.PARTICIPANT_REMOVED].includes(reason);
        return normal ? this.end('Source closed') : this.end('Failure', errors.connectionFailed());
      }
      case 'subscriptionResponse':
        if (m.value.trackSid !== this.o.trackId || m.value.err === SubscriptionError.SE_UNKNOWN) return;
        this.log.warn('subscription refused', { trackId: this.o.trackId, err: SubscriptionError[m.value.err] });
        return this.end('Failure', m.value.err === SubscriptionError.SE_CODEC_UNSUPPORTED ? errors.notYetSupported(this.info.mimeType) : errors.trackNotFound(this.o.trackId));
      case 'subscriptionPermissionUpdate':
        if (m.value.trackSid === this.o.trackId && !m.value.allowed) this.log.warn('the publisher does not allow this subscription', { trackId: this.o.trackId });
        return;
      default:
        return;
    }
  }

  /** Finds the track, then follows its publisher: leaving, unpublishing and muting. */
  private onParticipants(participants: ParticipantInfo[]): void {
    for (const p of participants) {
      if (this.publisherSid === undefined) {
        const t = p.state !== ParticipantInfo_State.DISCONNECTED ? p.tracks.find((t) => t.sid === this.o.trackId) : undefined;
        if (!t) continue;
        this.publisherSid = p.sid;
        this.info = trackInfo(p, t);
        this.muted = t.muted;
        this.found?.();
      } else if (p.sid === this.publisherSid) {
        const t = p.tracks.find((t) => t.sid === this.o.trackId);
        if (p.state === ParticipantInfo_State.DISCONNECTED || !t) return this.end('Source closed');
        this.setMuted(t.muted);
      }
    }
  }

  private setMuted(muted: boolean): void {
    if (muted === this.muted) return;
    this.muted = muted;
    this.mutedListeners.forEach((cb) => cb(muted));
  }

  private async answer(offer: SessionDescription): Promise<void> {
    if (this.closing) return;
    const pc = (this.pc ??= this.createPeerConnection(offer.sdp));
    await pc.setRemoteDescription({ type: 'offer', sdp: offer.sdp });
    this.followSsrc(offer);
    for (const t of pc.getTransceivers()) this.hook(t);
    await pc.setLocalDescription(await pc.createAnswer());
    const sdp = this.loopback ? onlyLoopbackCandidates(pc.localDescription!.sdp) : pc.localDescription!.sdp;
    this.signal.send({ case: 'answer', value: new SessionDescription({ type: 'answer', sdp, id: offer.id }) });
    this.log.debug('answered subscriber offer', { id: offer.id, ssrc: this.targetSsrc });
    for (const c of this.earlyCandidates.splice(0)) this.addCandidate(c);
  }

  private createPeerConnection(firstOffer: string): RTCPeerConnection {
    const video = [useVP8(), useVP9(), useVP9(), ...Array.from({ length: Math.max(h264PayloadTypes(firstOffer), MIN_H264_ENTRIES) }, () => useH264()), useAV1()];
    for (const c of video) c.rtcpFeedback = [useNACK(), usePLI(), useFIR(), useTWCC()];
    const config: RTCPeerConnectionConfig = {
      codecs: {
        // No RED: the SFU then sends plain Opus to this subscriber.
        audio: [useOPUS({ rtcpFeedback: [useTWCC()] })],
        // One RTX entry right behind each codec (werift pairs them by position).
        video: video.flatMap((c) => [c, new RTCRtpCodecParameters({ mimeType: 'video/rtx', clockRate: 90000 })]),
      },
      headerExtensions: { audio: [useTransportWideCC()], video: [useTransportWideCC(), useDependencyDescriptor()] },
      iceServers: this.signal.join.iceServers.map((s) => ({ urls: s.urls, username: s.username, credential: s.credential })),
    };
    if (this.loopback) {
      // werift skips loopback interfaces, and would otherwise pair the machine's other addresses too.
      Object.assign(config, {
        iceServers: [],
        iceUseIpv6: false,
        iceAdditionalHostAddresses: [LOOPBACK],
        // Its sockets bind to 0.0.0.0 unless told; the other addresses' candidates are dropped below.
        iceInterfaceAddresses: { udp4: LOOPBACK },
        iceFilterCandidatePair: (pair) => pair.protocol.localCandidate?.host === LOOPBACK && pair.remoteCandidate.host === LOOPBACK,
        iceFilterStunResponse: (_message, addr) => addr[0] === LOOPBACK,
      } satisfies RTCPeerConnectionConfig);
    }
    if (this.o.lossPercent) {
      // werift's own debug hook, which keeps (not drops) the given percentage of what comes in.
      config.debug = { inboundPacketLoss: 100 - this.o.lossPercent };
      this.log.warn('test override: dropping inbound media packets', { percent: this.o.lossPercent });
    }
    const pc = new RTCPeerConnection(config);
    pc.onIceCandidate.subscribe((candidate) => {
      if (!candidate) return;
      const init = candidate.toJSON();
      if (this.loopback && candidateHost(init.candidate) !== LOOPBACK) return;
      this.signal.send({ case: 'trickle', value: new TrickleRequest({ candidateInit: JSON.stringify(init), target: SignalTarget.SUBSCRIBER }) });
    });
    pc.connectionStateChange.subscribe((state) => {
      this.log.debug('subscriber connection state', { state });
      if (state === 'failed') this.end('Failure', errors.connectionFailed());
    });
    return pc;
  }

  private addCandidate(c: RTCIceCandidateInit): void {
    if (this.loopback && candidateHost(c.candidate ?? '') !== LOOPBACK) return;
    if (!this.pc) return void this.earlyCandidates.push(c);
    this.pc.addIceCandidate(c).catch((err: unknown) => void this.log.debug('remote candidate refused', { error: String(err) }));
  }

  /** The track's SSRC, from every offer: a reused transceiver may carry it under a new SSRC. */
  private followSsrc(offer: SessionDescription): void {
    for (const [ssrc, track] of trackSsrcs(offer.sdp, offer.midToTrackId)) {
      if (track !== this.o.trackId || ssrc === this.targetSsrc) continue;
      if (this.targetSsrc !== undefined) this.log.info('track moved to another SSRC', { trackId: track, from: this.targetSsrc, to: ssrc });
      this.targetSsrc = ssrc;
    }
  }

  /** Listens to every remote stream once; packets are filtered by SSRC (see followSsrc). */
  private hook(t: RTCRtpTransceiver): void {
    const { receiver } = t;
    fixNackWrap(receiver);
    if (!this.hooked.has(receiver)) {
      this.hooked.add(receiver);
      receiver.onRtcp.subscribe((packet) => this.onRtcpPacket(packet));
    }
    for (const track of receiver.tracks) {
      if (this.hooked.has(track)) continue;
      this.hooked.add(track);
      track.onReceiveRtp.subscribe((packet) => this.onRtpPacket(packet, t));
    }
  }

  private onRtpPacket(packet: RtpPacket, t: RTCRtpTransceiver): void {
    if (packet.header.ssrc !== this.targetSsrc || this.closing) return;
    if (this.transceiver !== t) {
      const codec = t.codecs.find((c) => c.payloadType === packet.header.payloadType);
      if (!codec) return;
      this.transceiver = t;
      this.codec ??= rtpCodec(codec);
      this.gotRtp?.();
    }
    if (packet.header.payloadType !== this.codec?.payloadType) {
      // Cannot happen with sdk=go (no codec change); gst's caps would no longer fit.
      if (!this.otherPayloadType) this.log.warn('payload type changed: packets dropped', { expected: this.codec?.payloadType, got: packet.header.payloadType });
      this.otherPayloadType = true;
      return;
    }
    // Probe padding (werift strips the padding from the payload): nothing for the depayloader.
    if (packet.payload.length === 0) return;
    this.rtp.push(packet.serialize());
  }

  private onRtcpPacket(packet: RtcpPacket): void {
    if (packet.type !== RtcpSrPacket.type || this.closing) return;
    const sr = packet as RtcpSrPacket;
    if (sr.ssrc !== this.targetSsrc || !this.publisherSid) return;
    // rtpbin lip-syncs the streams whose SDES CNAME match; tracks of one publisher share its SR clock.
    this.rtcp.push(Buffer.concat([sr.serialize(), sdesCname(sr.ssrc, this.publisherSid)]));
  }

  onRtp(cb: (packet: Buffer) => void): void {
    this.rtp.listen(cb);
  }

  onRtcp(cb: (compound: Buffer) => void): void {
    this.rtcp.listen(cb);
  }

  requestKeyframe(): void {
    if (this.targetSsrc === undefined || !this.transceiver) return;
    void this.transceiver.receiver.sendRtcpPLI(this.targetSsrc);
  }

  onMuted(cb: (muted: boolean) => void): void {
    this.mutedListeners.push(cb);
    if (this.muted) cb(true);
  }

  private end(reason: string, error?: EgressError): void {
    if (this.closing) return;
    this.endWith?.({ reason, ...(error ? { error } : {}) });
    this.endWith = undefined;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.info?.kind === 'video') this.log.info('video packets found missing and asked for again', { trackId: this.o.trackId, missed: missedPackets() });
      await this.signal.close();
      await this.pc?.close().catch((err: unknown) => void this.log.debug('closing the peer connection failed', { error: String(err) }));
    })();
    return this.closing;
  }
}

/** Hands packets to listeners; until the first one registers, keeps them (the start of a stream is its keyframe). */
class Fanout<T> {
  private readonly listeners: ((v: T) => void)[] = [];
  private backlog: T[] = [];
  private failed = false;

  constructor(private readonly onError: (err: unknown) => void) {}

  push(v: T): void {
    if (!this.listeners.length) {
      if (this.backlog.length < MAX_BACKLOG) this.backlog.push(v);
      return;
    }
    for (const cb of this.listeners) {
      try {
        cb(v);
      } catch (err) {
        // werift's socket handler would swallow it silently: say so, once.
        if (!this.failed) this.onError(err);
        this.failed = true;
      }
    }
  }

  listen(cb: (v: T) => void): void {
    this.listeners.push(cb);
    const backlog = this.backlog;
    this.backlog = [];
    backlog.forEach((v) => this.push(v));
  }
}

/** Settles with `p`, or rejects with `gone`'s error, or with `timeout()` after `ms`. */
async function race<T>(p: Promise<T>, gone: Promise<never>, ms: number, timeout: () => EgressError): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(timeout()), Math.max(0, ms))));
  try {
    return await Promise.race([p, gone, expired]);
  } finally {
    clearTimeout(timer);
  }
}

function isLoopback(wsUrl: string): boolean {
  const host = new URL(wsUrl).hostname;
  return host === LOOPBACK || host === 'localhost';
}

function rtpCodec(c: RTCRtpCodecParameters): RtpCodec {
  return {
    mimeType: c.mimeType.toLowerCase(),
    payloadType: c.payloadType,
    clockRate: c.clockRate,
    ...(c.channels !== undefined ? { channels: c.channels } : {}),
    ...(c.parameters ? { fmtp: c.parameters } : {}),
  };
}

function trackInfo(p: ParticipantInfo, t: LkTrackInfo): TrackInfo {
  // A simulcast track's TrackInfo size may be a lower layer's: the top layer is what is pinned.
  const top = t.layers.reduce((a, l) => (l.width * l.height > a.width * a.height ? l : a), { width: t.width, height: t.height });
  return {
    trackId: t.sid,
    kind: t.type === TrackType.AUDIO ? 'audio' : 'video',
    mimeType: (t.mimeType || t.codecs[0]?.mimeType || '').toLowerCase(),
    source: sourceName(t.source),
    publisherIdentity: p.identity,
    width: top.width,
    height: top.height,
  };
}

function sourceName(source: TrackSource): TrackSourceName {
  switch (source) {
    case TrackSource.CAMERA: return 'camera';
    case TrackSource.MICROPHONE: return 'microphone';
    case TrackSource.SCREEN_SHARE: return 'screen_share';
    case TrackSource.SCREEN_SHARE_AUDIO: return 'screen_share_audio';
    default: return 'unknown';
  }
}

/** RTCP SDES with one chunk: this SSRC's CNAME, END, padded to 32 bits. */
export function sdesCname(ssrc: number, cname: string): Buffer {
  const text = Buffer.from(cname).subarray(0, 255);
  const chunk = Math.ceil((4 + 2 + text.length + 1) / 4) * 4;
  const b = Buffer.alloc(4 + chunk);
  b[0] = 0x81; // V=2, one chunk
  b[1] = 202;
  b.writeUInt16BE(chunk / 4, 2);
  b.writeUInt32BE(ssrc >>> 0, 4);
  b[8] = 1; // CNAME
  b[9] = text.length;
  text.copy(b, 10);
  return b;
}
