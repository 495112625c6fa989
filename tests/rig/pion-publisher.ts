// The pion-based publisher (tests/rig/pion, server-sdk-go): publishes the marker media from files
// (VP8 in IVF, H.264 Annex B, Opus in OGG), looping, the way Go clients and ingest tools do. It
// cannot answer a PLI with a key frame: the files carry one every `keyIntervalS` seconds.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { markerFiles } from './marker-media.ts';

export const PION_PUBLISHER_BIN = fileURLToPath(new URL('../../.cache/bin/pion-publisher', import.meta.url));
export const MEDIA_CACHE_DIR = fileURLToPath(new URL('../../.cache/media', import.meta.url));

const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;

export interface PionPublisherOptions {
  wsUrl: string;
  apiKey: string;
  apiSecret: string;
  room: string;
  identity: string;
  /** Opus from OGG; default true. */
  audio?: boolean;
  /** VP8 from IVF or H.264 from Annex B; default 'vp8'. */
  video?: false | 'vp8' | 'h264';
  /** Length of the media files (they loop); default 10. */
  seconds?: number;
  /** Key frame spacing of the video files; default 1 s. */
  keyIntervalS?: number;
  /**
   * Use lksdk.NewLocalFileTrack as is (no looping, the SDK's own pacing). With server-sdk-go v2.19.0
   * and pion/webrtc v4.2.x that sends VP8 from IVF at one frame per second (see tests/rig/pion/main.go).
   */
  fileTrack?: boolean;
  /** Send every video frame but the key frames: a track that no subscriber can decode. */
  withholdKeyFrames?: boolean;
  /** SDK logs into the publisher's stderr (collected in stderr()). */
  verbose?: boolean;
}

export interface PionPublisher {
  audioTrackSid?: string;
  videoTrackSid?: string;
  /** Wall-clock ms (Date.now() scale) of media time 0: beeps/flashes start at publishedAt + k*1000. */
  publishedAt: number;
  /** What the publisher wrote on stderr so far. */
  stderr(): string;
  /** SIGTERM (it unpublishes and disconnects), SIGKILL after a grace period. */
  stop(): Promise<void>;
}

interface Line {
  kind?: 'audio' | 'video';
  sid?: string;
  codec?: string;
  event?: string;
  at?: number;
}

const live = new Set<ChildProcess>();
process.on('exit', () => live.forEach((c) => c.kill('SIGKILL')));

export async function startPionPublisher(opts: PionPublisherOptions): Promise<PionPublisher> {
  if (!existsSync(PION_PUBLISHER_BIN)) {
    throw new Error(`pion publisher not found at ${PION_PUBLISHER_BIN}: run tests/rig/setup.sh (npm run setup)`);
  }
  const withAudio = opts.audio ?? true;
  const video = opts.video ?? 'vp8';
  if (!withAudio && !video) throw new Error('pion publisher: nothing to publish');
  const files = await markerFiles(MEDIA_CACHE_DIR, { seconds: opts.seconds ?? 10, keyIntervalS: opts.keyIntervalS ?? 1 });
  const args = ['-url', opts.wsUrl, '-api-key', opts.apiKey, '-api-secret', opts.apiSecret, '-room', opts.room, '-identity', opts.identity];
  if (withAudio) args.push('-ogg', files.ogg);
  if (video === 'vp8') args.push('-ivf', files.ivf);
  if (video === 'h264') args.push('-h264', files.h264);
  if (opts.fileTrack) args.push('-file-track');
  else args.push('-period', `${opts.seconds ?? 10}s`);
  if (opts.withholdKeyFrames) args.push('-withhold-key-frames');
  if (opts.verbose) args.push('-v');

  const child = spawn(PION_PUBLISHER_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  void exited.then(() => live.delete(child));

  const result: { audioTrackSid?: string; videoTrackSid?: string; publishedAt?: number } = {};
  const expected = (withAudio ? 1 : 0) + (video ? 1 : 0);
  const ready = new Promise<void>((resolve, reject) => {
    let tracks = 0;
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (text) => {
      let line: Line;
      try {
        line = JSON.parse(text) as Line;
      } catch {
        return;
      }
      if (line.sid && line.kind) {
        result[line.kind === 'audio' ? 'audioTrackSid' : 'videoTrackSid'] = line.sid;
        tracks++;
      }
      if (line.event === 'started' && line.at) result.publishedAt = line.at;
      if (tracks === expected && result.publishedAt) resolve();
    });
    void exited.then(([code, signal]) => reject(new Error(`pion publisher exited (${code ?? signal}) before publishing:\n${stderr.trim()}`)));
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`pion publisher did not publish within ${START_TIMEOUT_MS} ms:\n${stderr.trim()}`)), START_TIMEOUT_MS);
  });

  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(kill);
  };

  try {
    await Promise.race([ready, timeout]);
  } catch (err) {
    await stop();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return { ...result, publishedAt: result.publishedAt!, stderr: () => stderr, stop };
}
