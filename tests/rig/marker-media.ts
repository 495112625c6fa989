// The rig's synthetic media, shared by every publisher (rtc-node, pion, browser) so that any output
// can be checked for A/V sync: every second of media time starts with a 100 ms 1 kHz beep and a
// 100 ms full-white flash. In between: a tone (220 Hz unless a publisher picks its own, which tells
// publishers apart in a mix) and a bar moving every frame, through the flash too, so consecutive frames differ.
import { spawn } from 'node:child_process';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import type { Writable } from 'node:stream';

export const SAMPLE_RATE = 48_000;
export const MARKER_MS = 100;
export const TONE_HZ = 220;
export const BEEP_HZ = 1000;
const TONE_AMPLITUDE = 0.1 * 32767; // -20 dBFS
const BEEP_AMPLITUDE = 0.25 * 32767; // -12 dBFS
export const AUDIO_FRAME_MS = 10;

// Limited-range luma (what I420 carries): 16 black .. 235 white
const Y_BACKGROUND = 48;
const Y_BAR = 180;
const Y_FLASH = 235;
const BAR_WIDTH = 40;
const BAR_STEP = 8;

/** Samples of 10 ms audio frame `index` (interleaved S16, 48 kHz). */
export function markerAudio(index: number, channels: number, toneHz = TONE_HZ): Int16Array {
  const samples = (SAMPLE_RATE * AUDIO_FRAME_MS) / 1000;
  const data = new Int16Array(samples * channels);
  const first = index * samples;
  for (let i = 0; i < samples; i++) {
    const n = first + i;
    const t = n / SAMPLE_RATE;
    let v = TONE_AMPLITUDE * Math.sin(2 * Math.PI * toneHz * t);
    if (n % SAMPLE_RATE < (SAMPLE_RATE * MARKER_MS) / 1000) v += BEEP_AMPLITUDE * Math.sin(2 * Math.PI * BEEP_HZ * t);
    const s = Math.round(v);
    for (let c = 0; c < channels; c++) data[i * channels + c] = s;
  }
  return data;
}

/** I420 picture of video frame `index`; each call returns its own buffer. */
export function markerVideo(index: number, fps: number, width: number, height: number): Uint8Array {
  const lumaSize = width * height;
  const data = new Uint8Array(lumaSize + 2 * ((width / 2) * (height / 2)));
  data.fill(128, lumaSize);
  const msInSecond = ((index * 1000) / fps) % 1000;
  // The bar moves through the flash too, so that pictures sampled on the flash still differ.
  data.fill(msInSecond < MARKER_MS ? Y_FLASH : Y_BACKGROUND, 0, lumaSize);
  const x0 = (index * BAR_STEP) % width;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = x0; x < x0 + BAR_WIDTH; x++) data[row + (x % width)] = Y_BAR;
  }
  return data;
}

export interface MarkerFiles {
  /** Raw pictures for Chromium's fake camera. */
  y4m: string;
  /** 48 kHz stereo PCM for Chromium's fake microphone. */
  wav: string;
  /** VP8 in IVF, H.264 Annex B (baseline, no B-frames) and Opus in OGG, for file publishers (pion). */
  ivf: string;
  h264: string;
  ogg: string;
}

export interface MarkerFileOptions {
  seconds: number;
  width?: number;
  height?: number;
  fps?: number;
  toneHz?: number;
  /** Key frame every this many seconds in the encoded files (file publishers cannot answer a PLI). */
  keyIntervalS?: number;
}

async function pipeInto(ffmpegArgs: string[], produce: (w: Writable) => Promise<void>): Promise<void> {
  const child = spawn('ffmpeg', ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', ...ffmpegArgs], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'close') as Promise<[number | null]>;
  await produce(child.stdin);
  child.stdin.end();
  const [code] = await exited;
  if (code !== 0) throw new Error(`ffmpeg ${ffmpegArgs.at(-1)} failed (${code}): ${stderr.trim()}`);
}

async function writeAll(w: Writable, count: number, chunk: (i: number) => Uint8Array): Promise<void> {
  for (let i = 0; i < count; i++) {
    if (!w.write(chunk(i))) await once(w, 'drain');
  }
}

const exists = (p: string) => stat(p).then((s) => s.size > 0, () => false);

/**
 * Writes the marker media as files under `dir` (once per option set: the names carry the options)
 * and returns their paths. Encoded with ffmpeg from the same pictures and samples the rtc-node
 * publisher sends, so every publisher's output is checked by the same probes.
 */
export async function markerFiles(dir: string, opts: MarkerFileOptions): Promise<MarkerFiles> {
  const { seconds, width = 640, height = 360, fps = 30, toneHz = TONE_HZ, keyIntervalS = 1 } = opts;
  const tag = `marker-${seconds}s-${width}x${height}-${fps}fps-${toneHz}hz-k${keyIntervalS}`;
  await mkdir(dir, { recursive: true });
  const files: MarkerFiles = {
    y4m: path.join(dir, `${tag}.y4m`),
    wav: path.join(dir, `${tag}.wav`),
    ivf: path.join(dir, `${tag}.ivf`),
    h264: path.join(dir, `${tag}.h264`),
    ogg: path.join(dir, `${tag}.ogg`),
  };
  const frames = seconds * fps;
  const audioFrames = (seconds * 1000) / AUDIO_FRAME_MS;
  const gop = String(Math.max(1, Math.round(keyIntervalS * fps)));
  const rawVideo = ['-f', 'rawvideo', '-pix_fmt', 'yuv420p', '-s', `${width}x${height}`, '-r', String(fps), '-i', '-'];
  const rawAudio = ['-f', 's16le', '-ar', String(SAMPLE_RATE), '-ac', '2', '-i', '-'];
  const video = (i: number) => markerVideo(i, fps, width, height);
  const audio = (i: number) => new Uint8Array(markerAudio(i, 2, toneHz).buffer);

  if (!(await exists(files.y4m))) await pipeInto([...rawVideo, files.y4m], (w) => writeAll(w, frames, video));
  if (!(await exists(files.ivf))) {
    await pipeInto([...rawVideo, '-c:v', 'libvpx', '-b:v', '1M', '-g', gop, '-keyint_min', gop, '-deadline', 'realtime', '-cpu-used', '8', '-auto-alt-ref', '0', files.ivf], (w) => writeAll(w, frames, video));
  }
  if (!(await exists(files.h264))) {
    await pipeInto([...rawVideo, '-c:v', 'libx264', '-profile:v', 'baseline', '-preset', 'veryfast', '-tune', 'zerolatency', '-g', gop, '-keyint_min', gop, '-sc_threshold', '0', '-bsf:v', 'h264_mp4toannexb', '-f', 'h264', files.h264], (w) => writeAll(w, frames, video));
  }
  if (!(await exists(files.wav))) await pipeInto([...rawAudio, '-c:a', 'pcm_s16le', files.wav], (w) => writeAll(w, audioFrames, audio));
  if (!(await exists(files.ogg))) {
    await pipeInto([...rawAudio, '-c:a', 'libopus', '-b:a', '64k', '-frame_duration', '20', '-page_duration', '20000', files.ogg], (w) => writeAll(w, audioFrames, audio));
  }
  return files;
}
