// The zero-transcode source of a track egress to a file (egress-behaviour §10.5): the track's RTP,
// as the SFU sends it, goes to gst, which remuxes it (pipeline/rtp.ts). Nothing is decoded, so an
// Opus track costs a few percent of a core where decoding and encoding it cost ten.
//
// rtc-node stays the source wherever decoded frames are needed (composites, WebSocket PCM).
import { EgressError, errors } from '@egress/shared/errors.ts';
import type { Logger } from '@egress/shared/logging.ts';
import type { PipelineConfig } from '@egress/shared/plan/pipeline-config.ts';
import type { RtpCapture } from '../../pipeline/rtp.ts';
import type { CaptureSource, TrackInfo } from '../source.ts';
import { freeUdpPorts, RtpForwarder } from './forwarder.ts';
import { carriesSps, isBlankFrame, startsKeyFrame } from './frames.ts';
import { FrameGate } from './frame-gate.ts';
import { subscribeTrack, type RtpSubscription } from './subscriber.ts';

/**
 * The track a job takes the RTP of as it is: one track, written to one file, with no encoding asked
 * for; undefined for any other job.
 */
export function remuxedTrack(plan: PipelineConfig): string | undefined {
  const src = plan.source;
  const oneFile = plan.outputs.length === 1 && plan.outputs[0]!.type === 'file';
  return plan.passthrough && oneFile && src.type === 'sdk' && src.subscription.kind === 'track' ? src.subscription.trackId : undefined;
}

/** A subscribed, unmuted track that sends no key frame for this long fails the egress (as the rtc-node source). */
export const NO_KEY_FRAME_TIMEOUT_MS = 10_000;
/** How long a missing video packet is waited for (werift NACKs it every 5 ms), and how often that is checked. */
const RETRANSMISSION_WAIT_MS = 250;
const GATE_TICK_MS = 20;

/** A track published with RED is sent to this subscriber as plain Opus: RED is never negotiated. */
const gstMime = (trackMime: string): string => (trackMime.toLowerCase() === 'audio/red' ? 'audio/opus' : trackMime.toLowerCase());

export interface RtpSourceOptions {
  wsUrl: string;
  token: string;
  trackId: string;
  subscribeTimeoutMs: number;
  noKeyFrameTimeoutMs?: number;
  lossPercent?: number;
  log: Logger;
}

export class RtpSource implements CaptureSource {
  /** No start signal: recording begins as soon as gst listens. */
  readonly started = Promise.resolve();
  readonly ended: Promise<{ reason: string; error?: EgressError }>;
  private endWith!: (e: { reason: string; error?: EgressError }) => void;
  private subscription?: RtpSubscription;
  private forwarder?: RtpForwarder;
  private muted = false;
  private sawKeyFrame!: () => void;
  /** The first packet a file can begin with (any audio packet), held or sent. */
  private readonly keyFrame = new Promise<void>((r) => (this.sawKeyFrame = r));
  private keyFrameTimer?: NodeJS.Timeout;
  private gateTimer?: NodeJS.Timeout;
  private closing?: Promise<void>;

  constructor(private readonly o: RtpSourceOptions) {
    this.ended = new Promise((r) => (this.endWith = r));
  }

  /** The subscribed track, once prepare() resolved. */
  get tracks(): TrackInfo[] {
    return this.subscription ? [this.subscription.info] : [];
  }

  async prepare(): Promise<RtpCapture> {
    const [rtpPort, rtcpPort] = await freeUdpPorts(2);
    const sub = await subscribeTrack({ wsUrl: this.o.wsUrl, token: this.o.token, trackId: this.o.trackId, timeoutMs: this.o.subscribeTimeoutMs, lossPercent: this.o.lossPercent, log: this.o.log });
    this.subscription = sub;
    if (this.closing) {
      await sub.close();
      throw new EgressError('aborted', 'track source closed while starting');
    }
    const forwarder = new RtpForwarder({ rtp: rtpPort!, rtcp: rtcpPort! });
    this.forwarder = forwarder;
    // From the track's TrackInfo: gst starts while the first packets are on their way, so that none
    // has to wait for it (a burst of held packets throws off rtpbin's timing).
    const mime = gstMime(sub.info.mimeType);
    let keyed = false;
    // Until an SPS has reached gst, an H.264 IDR alone is no place to start: h264parse could not
    // describe the stream, and the file would stay empty.
    let spsSent = mime !== 'video/h264';
    const send = (p: Buffer) => {
      if (!spsSent && carriesSps(p)) spsSent = true;
      if (!keyed && startsKeyFrame(mime, p)) {
        keyed = true;
        this.sawKeyFrame();
      }
      forwarder.rtp(p);
    };
    // Audio goes as it comes: each Opus packet stands alone, and rtpbin conceals a lost one.
    const gate = mime.startsWith('video/')
      ? new FrameGate({
          giveUpMs: RETRANSMISSION_WAIT_MS,
          emit: (packets) => packets.forEach(send),
          lost: () => {
            this.o.log.debug('video packets lost for good: frames dropped up to a key frame, one requested', { trackId: this.o.trackId });
            sub.requestKeyframe();
          },
        })
      : undefined;
    if (gate) this.gateTimer = setInterval(() => gate.tick(Date.now()), GATE_TICK_MS);
    sub.onRtp((p) => {
      if (!gate) return send(p);
      const key = startsKeyFrame(mime, p) && (spsSent || carriesSps(p));
      gate.push({ seq: p.readUInt16BE(2), ts: p.readUInt32BE(4), key, skip: isBlankFrame(mime, p), data: p }, Date.now());
    });
    sub.onRtcp((c) => forwarder.rtcp(c));
    sub.onMuted((muted) => {
      this.muted = muted;
      // The SFU resumes a video track at its next key frame; asking saves waiting for it.
      if (!muted) sub.requestKeyframe();
      this.o.log.debug(muted ? 'track muted' : 'track unmuted', { trackId: this.o.trackId });
    });
    void sub.ended.then((e) => this.endWith(e));
    this.o.log.info('track subscribed for remuxing', { trackId: this.o.trackId, mimeType: mime });
    void sub.receiving.then((codec) => {
      if (gstMime(codec.mimeType) !== mime) this.endWith({ reason: 'Source failed', error: errors.notYetSupported(`${codec.mimeType} sent for a ${mime} track`) });
    }, () => undefined);
    return { type: 'rtp', mimeType: mime, rtpPort: rtpPort!, rtcpPort: rtcpPort! };
  }

  /** gst listens: the held packets go to it, then everything live; resolves once a file could begin (a key frame). */
  async capturing(): Promise<void> {
    const sub = this.subscription!;
    this.forwarder!.open();
    sub.requestKeyframe();
    const ms = this.o.noKeyFrameTimeoutMs ?? NO_KEY_FRAME_TIMEOUT_MS;
    const check = () => {
      // A muted track sends nothing: its wait starts again when it is unmuted.
      if (this.muted) this.keyFrameTimer = setTimeout(check, ms);
      else this.endWith({ reason: 'Source failed', error: errors.noDecodableFrame(this.o.trackId, gstMime(sub.info.mimeType), ms / 1000) });
    };
    this.keyFrameTimer = setTimeout(check, ms);
    await this.keyFrame;
    clearTimeout(this.keyFrameTimer);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearTimeout(this.keyFrameTimer);
      clearInterval(this.gateTimer);
      await this.subscription?.close();
      this.forwarder?.close();
    })();
    return this.closing;
  }
}
