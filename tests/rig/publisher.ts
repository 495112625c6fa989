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
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/*
 * Synthetic media, shared by audio and video so outputs can be checked for A/V sync:
 * every second (counted from Publisher.publishedAt) starts with a 100 ms 1 kHz beep and
 * a 100 ms full-white flash. In between: a 220 Hz tone and a bar moving every frame.
 */
export const SAMPLE_RATE = 48_000;
export const MARKER_MS = 100;
export const TONE_HZ = 220;
export const BEEP_HZ = 1000;
const TONE_AMPLITUDE = 0.1 * 32767; // -20 dBFS
const BEEP_AMPLITUDE = 0.25 * 32767; // -12 dBFS
const AUDIO_FRAME_MS = 10;
// Frames are handed over this far ahead of real time: the native source drains its queue on
// a 10 ms clock, and a small lead keeps it from running dry when the event loop is late.
const AUDIO_LEAD_MS = 40;

// Limited-range luma (what I420 carries): 16 black .. 235 white
const Y_BACKGROUND = 48;
const Y_BAR = 180;
const Y_FLASH = 235;
const BAR_WIDTH = 40;
const BAR_STEP = 8;

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
}

export interface Publisher {
  room: Room;
  audioTrackSid?: string;
  videoTrackSid?: string;
  /** Wall-clock ms (Date.now() scale) of media time 0: beeps/flashes start at publishedAt + k*1000. */
  publishedAt: number;
  unpublish(kind: 'audio' | 'video'): Promise<void>;
  stop(): Promise<void>;
}

/** Releases rtc-node's native runtime; without it the test process never exits. */
export async function disposeRtc(): Promise<void> {
  await dispose();
}

export async function mintToken(opts: {
  apiKey: string;
  apiSecret: string;
  room: string;
  identity: string;
  canPublish?: boolean;
}): Promise<string> {
  const token = new AccessToken(opts.apiKey, opts.apiSecret, { identity: opts.identity });
  token.addGrant({
    roomJoin: true,
    room: opts.room,
    canPublish: opts.canPublish ?? true,
    canSubscribe: true,
  });
  return token.toJwt();
}

function audioFrame(index: number, channels: number): AudioFrame {
  const samples = (SAMPLE_RATE * AUDIO_FRAME_MS) / 1000;
  const data = new Int16Array(samples * channels);
  const first = index * samples;
  for (let i = 0; i < samples; i++) {
    const n = first + i;
    const t = n / SAMPLE_RATE;
    let v = TONE_AMPLITUDE * Math.sin(2 * Math.PI * TONE_HZ * t);
    if (n % SAMPLE_RATE < (SAMPLE_RATE * MARKER_MS) / 1000) {
      v += BEEP_AMPLITUDE * Math.sin(2 * Math.PI * BEEP_HZ * t);
    }
    const s = Math.round(v);
    for (let c = 0; c < channels; c++) data[i * channels + c] = s;
  }
  return new AudioFrame(data, SAMPLE_RATE, channels, samples);
}

function videoFrame(index: number, fps: number, width: number, height: number): VideoFrame {
  const lumaSize = width * height;
  // rtc-node reads the frame through data.buffer, so each frame needs its own ArrayBuffer
  const data = new Uint8Array(lumaSize + 2 * ((width / 2) * (height / 2)));
  data.fill(128, lumaSize);
  const msInSecond = ((index * 1000) / fps) % 1000;
  if (msInSecond < MARKER_MS) {
    data.fill(Y_FLASH, 0, lumaSize);
  } else {
    data.fill(Y_BACKGROUND, 0, lumaSize);
    const x0 = (index * BAR_STEP) % width;
    for (let y = 0; y < height; y++) {
      const row = y * width;
      for (let x = x0; x < x0 + BAR_WIDTH; x++) data[row + (x % width)] = Y_BAR;
    }
  }
  return new VideoFrame(data, width, height, VideoBufferType.I420);
}

/** A media loop that can be stopped and awaited. Errors end the loop and are reported once. */
class Generator {
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(name: string, body: (isStopped: () => boolean) => Promise<void>) {
    this.done = body(() => this.stopped).catch((err: unknown) => {
      if (!this.stopped) console.error(`publisher: ${name} generator failed:`, err);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

function startAudio(source: AudioSource, t0: number, channels: number): Generator {
  return new Generator('audio', async (isStopped) => {
    for (let n = 0; !isStopped(); n++) {
      const wait = t0 + n * AUDIO_FRAME_MS - AUDIO_LEAD_MS - performance.now();
      if (wait > 0) await sleep(wait);
      if (isStopped()) break;
      await source.captureFrame(audioFrame(n, channels));
    }
  });
}

function startVideo(source: VideoSource, t0: number, fps: number, width: number, height: number): Generator {
  const periodMs = 1000 / fps;
  return new Generator('video', async (isStopped) => {
    let k = 0;
    while (!isStopped()) {
      const wait = t0 + k * periodMs - performance.now();
      if (wait > 0) await sleep(wait);
      if (isStopped()) break;
      source.captureFrame(videoFrame(k, fps, width, height));
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
  const width = opts.width ?? 640;
  const height = opts.height ?? 360;
  const fps = opts.fps ?? 30;
  const channels = opts.audioChannels ?? 1;
  if (width % 2 !== 0 || height % 2 !== 0) throw new Error('publisher: width and height must be even (I420)');

  const room = new Room();
  await room.connect(opts.wsUrl, await mintToken(opts), { autoSubscribe: false, dynacast: false });
  const local = room.localParticipant;
  if (!local) throw new Error('publisher: connected without a local participant');

  const tracks: { audio?: LocalAudioTrack; video?: LocalVideoTrack } = {};
  const generators: { audio?: Generator; video?: Generator } = {};
  let audioTrackSid: string | undefined;
  let videoTrackSid: string | undefined;
  let audioSource: AudioSource | undefined;
  let videoSource: VideoSource | undefined;

  try {
    if (withAudio) {
      audioSource = new AudioSource(SAMPLE_RATE, channels);
      tracks.audio = LocalAudioTrack.createAudioTrack('audio', audioSource);
      const pub = await local.publishTrack(
        tracks.audio,
        new TrackPublishOptions({ source: TrackSource.SOURCE_MICROPHONE }),
      );
      audioTrackSid = pub.sid;
    }
    if (videoCodec) {
      videoSource = new VideoSource(width, height);
      tracks.video = LocalVideoTrack.createVideoTrack('video', videoSource);
      const pub = await local.publishTrack(
        tracks.video,
        new TrackPublishOptions({
          source: TrackSource.SOURCE_CAMERA,
          videoCodec: videoCodec === 'h264' ? VideoCodec.H264 : VideoCodec.VP8,
          simulcast: false,
        }),
      );
      videoTrackSid = pub.sid;
    }
  } catch (err) {
    await room.disconnect();
    await Promise.all([tracks.audio?.close(), tracks.video?.close()]);
    throw err;
  }

  const t0 = performance.now();
  const publishedAt = Date.now();
  if (audioSource) generators.audio = startAudio(audioSource, t0, channels);
  if (videoSource) generators.video = startVideo(videoSource, t0, fps, width, height);

  const stopKind = async (kind: 'audio' | 'video', unpublish: boolean) => {
    const generator = generators[kind];
    const track = tracks[kind];
    delete generators[kind];
    delete tracks[kind];
    await generator?.stop();
    const sid = kind === 'audio' ? audioTrackSid : videoTrackSid;
    if (unpublish && track && sid) await local.unpublishTrack(sid);
    await track?.close();
  };

  let stopping: Promise<void> | undefined;
  return {
    room,
    audioTrackSid,
    videoTrackSid,
    publishedAt,
    unpublish: (kind) => stopKind(kind, true),
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
