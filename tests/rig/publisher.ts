import './quiet-rtc.ts';
import {
  AudioFrame,
  AudioSource,
  dispose,
  LocalAudioTrack,
  LocalVideoTrack,
  Room,
  TrackPublishOptions,
  TrackSource,
  VideoBufferType,
  VideoCodec,
  VideoFrame,
  VideoSource,
} from '@livekit/rtc-node';
import { AccessToken } from 'livekit-server-sdk';
import { randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { AUDIO_FRAME_MS, markerAudio, markerVideo, SAMPLE_RATE, TONE_HZ } from './marker-media.ts';

export { SAMPLE_RATE, MARKER_MS, TONE_HZ, BEEP_HZ } from './marker-media.ts';

// Frames are handed over this far ahead of real time: the native source drains its queue on
// a 10 ms clock, and a small lead keeps it from running dry when the event loop is late.
const AUDIO_LEAD_MS = 40;

export interface PublisherOptions {
  wsUrl: string;
  apiKey: string;
  apiSecret: string;
  room: string;
  identity: string;
  /** default true */
  audio?: boolean;
  audioChannels?: 1 | 2;
  /** default 'vp8' */
  video?: false | 'vp8' | 'h264';
  width?: number;
  height?: number;
  fps?: number;
  /** The steady tone between beeps (default 220 Hz): tells publishers apart in a mix. */
  toneHz?: number;
  /** 'camera': the marker picture under moving luma noise, closer to what a camera costs an encoder (default 'marker'). */
  picture?: 'marker' | 'camera';
  /** Publish as screen share (+ screen share audio) instead of camera + microphone. */
  screenShare?: boolean;
  /** The video encoder's ceiling (libwebrtc's own choice for the size if unset). */
  maxBitrateKbps?: number;
  /** The participant kind its token carries (DUAL_CHANNEL_AGENT puts `agent` on the left). */
  kind?: 'standard' | 'agent';
}

export interface Publisher {
  room: Room;
  audioTrackSid?: string;
  videoTrackSid?: string;
  /** Wall-clock ms (Date.now() scale) of media time 0: beeps/flashes start at publishedAt + k*1000. */
  publishedAt: number;
  unpublish(kind: 'audio' | 'video'): Promise<void>;
  /** Publishes a track of that kind now (a late track, or a republish after unpublish); resolves with its sid. */
  publish(kind: 'audio' | 'video', codec?: 'vp8' | 'h264'): Promise<string>;
  /** Stops (or resumes) sending frames without unpublishing: a stalled sender, or a muted one. */
  pause(kind: 'audio' | 'video', paused: boolean): void;
  /** Video frames are sent at this size from now on. */
  setResolution(width: number, height: number): void;
  stop(): Promise<void>;
}

/** Releases rtc-node's native runtime; without it the test process never exits. */
export async function disposeRtc(): Promise<void> {
  // A room disconnected just before may still have native callbacks in flight; once (in ~30 suite
  // runs) the test process aborted with heap corruption inside dispose() right after a disconnect.
  await sleep(500);
  await dispose();
}

export async function mintToken(opts: {
  apiKey: string;
  apiSecret: string;
  room: string;
  identity: string;
  canPublish?: boolean;
  kind?: 'standard' | 'agent';
}): Promise<string> {
  const token = new AccessToken(opts.apiKey, opts.apiSecret, { identity: opts.identity });
  if (opts.kind) token.kind = opts.kind;
  token.addGrant({
    roomJoin: true,
    room: opts.room,
    canPublish: opts.canPublish ?? true,
    canSubscribe: true,
  });
  return token.toJwt();
}

function audioFrame(index: number, channels: number, toneHz: number): AudioFrame {
  const data = markerAudio(index, channels, toneHz);
  return new AudioFrame(data, SAMPLE_RATE, channels, data.length / channels);
}

// 'camera' pictures: a cycle of precomputed noise planes (signed luma offsets, ±32) per size, so a
// noisy frame costs one add per pixel. The flash stays far above FLASH_LUMA once averaged.
const NOISE_PLANES = 30;
const noisePlanes = new Map<string, Int8Array[]>();
function noisePlane(index: number, width: number, height: number): Int8Array {
  const key = `${width}x${height}`;
  let planes = noisePlanes.get(key);
  if (!planes) {
    planes = Array.from({ length: NOISE_PLANES }, () => randomFillSync(new Int8Array(width * height)).map((v) => v >> 2));
    noisePlanes.set(key, planes);
  }
  return planes[index % NOISE_PLANES]!;
}

function videoFrame(index: number, fps: number, width: number, height: number, picture: 'marker' | 'camera'): VideoFrame {
  // rtc-node reads the frame through data.buffer, so each frame needs its own ArrayBuffer
  const data = markerVideo(index, fps, width, height);
  if (picture === 'camera') {
    const luma = new Uint8ClampedArray(data.buffer, 0, width * height);
    const noise = noisePlane(index, width, height);
    for (let i = 0; i < luma.length; i++) luma[i] = luma[i]! + noise[i]!;
  }
  return new VideoFrame(data, width, height, VideoBufferType.I420);
}

/** A media loop that can be stopped and awaited. Errors end the loop and are reported once. */
class Generator {
  private stopped = false;
  /** Paused generators keep their clock but send nothing. */
  paused = false;
  private readonly done: Promise<void>;

  constructor(name: string, body: (isStopped: () => boolean, isPaused: () => boolean) => Promise<void>) {
    this.done = body(() => this.stopped, () => this.paused).catch((err: unknown) => {
      if (!this.stopped) console.error(`publisher: ${name} generator failed:`, err);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  pause(paused: boolean): void {
    this.paused = paused;
  }
}

function startAudio(source: AudioSource, t0: number, channels: number, toneHz: number): Generator {
  return new Generator('audio', async (isStopped, isPaused) => {
    for (let n = 0; !isStopped(); n++) {
      const wait = t0 + n * AUDIO_FRAME_MS - AUDIO_LEAD_MS - performance.now();
      if (wait > 0) await sleep(wait);
      if (isStopped()) break;
      // Media time runs on while paused, so markers stay on the publisher's clock.
      if (!isPaused()) await source.captureFrame(audioFrame(n, channels, toneHz));
    }
  });
}

function startVideo(source: VideoSource, t0: number, fps: number, size: { width: number; height: number }, picture: 'marker' | 'camera'): Generator {
  const periodMs = 1000 / fps;
  return new Generator('video', async (isStopped, isPaused) => {
    let k = 0;
    while (!isStopped()) {
      const wait = t0 + k * periodMs - performance.now();
      if (wait > 0) await sleep(wait);
      if (isStopped()) break;
      if (!isPaused()) source.captureFrame(videoFrame(k, fps, size.width, size.height, picture));
      // after a stall, skip to the current frame rather than bursting the missed ones
      k = Math.max(k + 1, Math.floor((performance.now() - t0) / periodMs));
    }
  });
}

/**
 * Joins `room` as `identity` and publishes synthetic audio and/or video. Resolves once
 * the tracks are published (their sids known) and the generators are running.
 */
export async function startPublisher(opts: PublisherOptions): Promise<Publisher> {
  const withAudio = opts.audio ?? true;
  const videoCodec = opts.video ?? 'vp8';
  const size = { width: opts.width ?? 640, height: opts.height ?? 360 };
  const fps = opts.fps ?? 30;
  const channels = opts.audioChannels ?? 1;
  const evenSize = (w: number, h: number) => {
    if (w % 2 !== 0 || h % 2 !== 0) throw new Error('publisher: width and height must be even (I420)');
  };
  evenSize(size.width, size.height);

  const room = new Room();
  await room.connect(opts.wsUrl, await mintToken(opts), { autoSubscribe: false, dynacast: false });
  const local = room.localParticipant;
  if (!local) throw new Error('publisher: connected without a local participant');

  const tracks: { audio?: LocalAudioTrack; video?: LocalVideoTrack } = {};
  const generators: { audio?: Generator; video?: Generator } = {};
  const sids: { audio?: string; video?: string } = {};
  const t0 = performance.now();
  const publishedAt = Date.now();

  const publish = async (kind: 'audio' | 'video', codec: 'vp8' | 'h264' = 'vp8'): Promise<string> => {
    if (kind === 'audio') {
      const source = new AudioSource(SAMPLE_RATE, channels);
      tracks.audio = LocalAudioTrack.createAudioTrack('audio', source);
      const pub = await local.publishTrack(
        tracks.audio,
        new TrackPublishOptions({ source: opts.screenShare ? TrackSource.SOURCE_SCREENSHARE_AUDIO : TrackSource.SOURCE_MICROPHONE }),
      );
      generators.audio = startAudio(source, t0, channels, opts.toneHz ?? TONE_HZ);
      return (sids.audio = pub.sid!);
    }
    const source = new VideoSource(size.width, size.height);
    tracks.video = LocalVideoTrack.createVideoTrack('video', source);
    const pub = await local.publishTrack(
      tracks.video,
      new TrackPublishOptions({
        source: opts.screenShare ? TrackSource.SOURCE_SCREENSHARE : TrackSource.SOURCE_CAMERA,
        videoCodec: codec === 'h264' ? VideoCodec.H264 : VideoCodec.VP8,
        simulcast: false,
        ...(opts.maxBitrateKbps ? { videoEncoding: { maxBitrate: BigInt(opts.maxBitrateKbps * 1000), maxFramerate: fps } } : {}),
      }),
    );
    generators.video = startVideo(source, t0, fps, size, opts.picture ?? 'marker');
    return (sids.video = pub.sid!);
  };

  try {
    if (withAudio) await publish('audio');
    if (videoCodec) await publish('video', videoCodec);
  } catch (err) {
    await room.disconnect();
    await Promise.all([tracks.audio?.close(), tracks.video?.close()]);
    throw err;
  }

  const stopKind = async (kind: 'audio' | 'video', unpublish: boolean) => {
    const generator = generators[kind];
    const track = tracks[kind];
    delete generators[kind];
    delete tracks[kind];
    await generator?.stop();
    const sid = sids[kind];
    if (unpublish && track && sid) await local.unpublishTrack(sid);
    await track?.close();
  };

  let stopping: Promise<void> | undefined;
  return {
    room,
    // Getters: a track published later (publish()) has its sid here too.
    get audioTrackSid() {
      return sids.audio;
    },
    get videoTrackSid() {
      return sids.video;
    },
    publishedAt,
    unpublish: (kind) => stopKind(kind, true),
    publish,
    pause: (kind, paused) => generators[kind]?.pause(paused),
    setResolution: (width, height) => {
      evenSize(width, height);
      Object.assign(size, { width, height });
    },
    stop: () => {
      stopping ??= (async () => {
        await Promise.all([generators.audio?.stop(), generators.video?.stop()]);
        await room.disconnect();
        await Promise.all([stopKind('audio', false), stopKind('video', false)]);
      })();
      return stopping;
    },
  };
}
