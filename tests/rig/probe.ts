import { execa } from 'execa';

/*
 * Output checkers built on ffprobe/ffmpeg. Times returned by beepTimes/flashTimes are
 * seconds from the start of the file (ffmpeg shifts the container start_time to 0), so
 * the two lists can be compared to measure A/V sync.
 */

export interface ProbeStream {
  codecType: 'audio' | 'video';
  codecName: string;
  width?: number;
  height?: number;
  frameRate?: number;
  sampleRate?: number;
  channels?: number;
  profile?: string;
}

export interface ProbeResult {
  formatName: string;
  /** seconds */
  duration: number;
  /** bytes */
  size: number;
  streams: ProbeStream[];
}

interface FfprobeJson {
  format?: { format_name?: string; duration?: string; size?: string };
  streams?: {
    codec_type?: string;
    codec_name?: string;
    profile?: string;
    width?: number;
    height?: number;
    avg_frame_rate?: string;
    r_frame_rate?: string;
    sample_rate?: string;
    channels?: number;
  }[];
}

function errorTail(stderr: string, lines = 15): string {
  return stderr
    .split('\n')
    .filter((l) => !l.includes('Parsed_showinfo'))
    .slice(-lines)
    .join('\n');
}

async function run(command: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const result = await execa(command, args, { reject: false, stdin: 'ignore' });
  if (result.exitCode !== 0 || result.failed) {
    throw new Error(`${command} ${args.join(' ')} failed (exit ${result.exitCode}):\n${errorTail(result.stderr)}`);
  }
  return { stdout: result.stdout, stderr: result.stderr };
}

function positive(value: string | number | undefined): number | undefined {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

function rate(fraction: string | undefined): number | undefined {
  if (!fraction) return undefined;
  const [num, den] = fraction.split('/').map(Number);
  if (num === undefined || !den) return positive(num);
  return positive(num / den);
}

// Live-written files (WebM, fragmented MP4, MPEG-TS) often have no duration in the header,
// and elementary streams (.h264, .ivf) have packet durations but no timestamps.
async function durationFromPackets(path: string): Promise<number> {
  const { stdout } = await run('ffprobe', [
    '-v', 'error',
    '-show_entries', 'packet=pts_time,duration_time',
    '-of', 'csv=p=0',
    path,
  ]);
  let end = 0;
  let total = 0;
  for (const line of stdout.split('\n')) {
    const [pts, duration] = line.split(',').map(Number);
    const d = duration !== undefined && Number.isFinite(duration) ? duration : 0;
    total += d;
    if (pts !== undefined && Number.isFinite(pts)) end = Math.max(end, pts + d);
  }
  return end || total;
}

export async function probe(path: string): Promise<ProbeResult> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_format', '-show_streams', '-of', 'json', path]);
  const json = JSON.parse(stdout) as FfprobeJson;
  const streams: ProbeStream[] = [];
  for (const s of json.streams ?? []) {
    if (s.codec_type !== 'audio' && s.codec_type !== 'video') continue;
    const stream: ProbeStream = { codecType: s.codec_type, codecName: s.codec_name ?? 'unknown' };
    if (s.profile) stream.profile = s.profile;
    if (s.codec_type === 'video') {
      if (s.width) stream.width = s.width;
      if (s.height) stream.height = s.height;
      const fps = rate(s.avg_frame_rate) ?? rate(s.r_frame_rate);
      if (fps) stream.frameRate = fps;
    } else {
      const sampleRate = positive(s.sample_rate);
      if (sampleRate) stream.sampleRate = sampleRate;
      if (s.channels) stream.channels = s.channels;
    }
    streams.push(stream);
  }
  return {
    formatName: json.format?.format_name ?? 'unknown',
    duration: positive(json.format?.duration) ?? (await durationFromPackets(path)),
    size: Number(json.format?.size ?? 0),
    streams,
  };
}

/** What ffmpeg said while decoding the whole file (empty: it decoded cleanly). */
export async function decodeErrors(path: string): Promise<string> {
  return (await run('ffmpeg', ['-v', 'error', '-i', path, '-f', 'null', '-'])).stderr.trim();
}

export interface VideoDecode {
  /** video packets in the container */
  packets: number;
  /** of those, the frames the decoder gave back */
  frames: number;
}

/** Whether every video packet the container holds decodes to a frame (a cut-short file may end mid-frame). */
export async function videoDecode(path: string): Promise<VideoDecode> {
  const { stdout } = await run('ffprobe', [
    '-v', 'error', '-select_streams', 'v:0', '-count_packets', '-count_frames',
    '-show_entries', 'stream=nb_read_packets,nb_read_frames', '-of', 'json', path,
  ]);
  const stream = (JSON.parse(stdout) as { streams?: { nb_read_packets?: string; nb_read_frames?: string }[] }).streams?.[0];
  return { packets: Number(stream?.nb_read_packets ?? 0), frames: Number(stream?.nb_read_frames ?? 0) };
}

export interface AudioLevel {
  meanDb: number;
  maxDb: number;
}

export async function audioLevel(path: string): Promise<AudioLevel> {
  const { stderr } = await run('ffmpeg', [
    '-nostdin', '-hide_banner', '-nostats',
    '-i', path,
    '-map', '0:a:0',
    '-af', 'volumedetect',
    '-f', 'null', '-',
  ]);
  const mean = /mean_volume:\s*(-?[\d.]+|-inf) dB/.exec(stderr);
  const max = /max_volume:\s*(-?[\d.]+|-inf) dB/.exec(stderr);
  if (!mean?.[1] || !max?.[1]) throw new Error(`audioLevel: no volumedetect output for ${path}:\n${errorTail(stderr)}`);
  const db = (s: string) => (s === '-inf' ? -Infinity : Number(s));
  return { meanDb: db(mean[1]), maxDb: db(max[1]) };
}

export const SILENCE_DB = -60;

export async function isSilent(path: string): Promise<boolean> {
  return (await audioLevel(path)).meanDb < SILENCE_DB;
}

// Video is analysed as tiny grayscale frames: enough to see motion and flashes, cheap to decode.
const GRAY_W = 64;
const GRAY_H = 36;
const GRAY_SIZE = GRAY_W * GRAY_H;
// Two frames differ visibly when a few of their gray pixels changed clearly. Not a mean over the
// frame: a grid tile's marker bar moving one step changes ~0.9 luma levels of the whole frame's
// mean, under any threshold above codec noise, so a moving grid counted as half frozen.
/** Luma levels (0..255) by which a gray pixel must change to count. */
const PIXEL_CHANGE = 10;
/** Gray pixels that must change for two frames to differ. */
const CHANGED_PIXELS = 4;
/** Mean luma (full-range 0..255 gray) of a "white" frame. */
const FLASH_LUMA = 200;
// The publisher's markers are 100 ms long, once a second.
const MARKER_DEBOUNCE_S = 0.5;
const MARKER_MAX_S = 0.3;

interface GrayFrameStats {
  time: number;
  meanLuma: number;
  /** gray pixels changed by more than PIXEL_CHANGE since the previous frame; Infinity for the first */
  changed: number;
}

async function grayFrameStats(path: string): Promise<GrayFrameStats[]> {
  const subprocess = execa(
    'ffmpeg',
    [
      '-nostdin', '-hide_banner', '-nostats',
      '-i', path,
      '-map', '0:v:0',
      // showinfo logs each frame's pts_time, matched to the raw frames by order
      '-vf', `scale=${GRAY_W}:${GRAY_H}:flags=area,format=gray,showinfo`,
      '-fps_mode', 'passthrough',
      '-f', 'rawvideo', 'pipe:1',
    ],
    { reject: false, stdin: 'ignore', buffer: { stdout: false }, encoding: 'buffer' },
  );

  const stats: Omit<GrayFrameStats, 'time'>[] = [];
  let previous: Buffer | undefined;
  let pending: Buffer = Buffer.alloc(0);
  subprocess.stdout.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= GRAY_SIZE) {
      const frame = pending.subarray(0, GRAY_SIZE);
      pending = pending.subarray(GRAY_SIZE);
      let sum = 0;
      let changed = 0;
      for (let i = 0; i < GRAY_SIZE; i++) {
        const v = frame[i]!;
        sum += v;
        if (previous && Math.abs(v - previous[i]!) > PIXEL_CHANGE) changed++;
      }
      stats.push({ meanLuma: sum / GRAY_SIZE, changed: previous ? changed : Infinity });
      previous = Buffer.from(frame);
    }
  });

  const result = await subprocess;
  const stderr = new TextDecoder().decode(result.stderr);
  if (result.exitCode !== 0 || result.failed) {
    throw new Error(`ffmpeg (gray frames of ${path}) failed (exit ${result.exitCode}):\n${errorTail(stderr)}`);
  }
  const times = [...stderr.matchAll(/Parsed_showinfo.*? n:\s*\d+ .*?pts_time:(\S+)/g)].map((m) => Number(m[1]));
  if (times.length !== stats.length) {
    throw new Error(`ffmpeg (gray frames of ${path}): ${stats.length} frames but ${times.length} timestamps`);
  }
  return stats.map((s, i) => ({ ...s, time: times[i]! }));
}

export interface VideoChanges {
  frames: number;
  /** frames that differ visibly from the previous one (the first frame counts); 1 for a frozen video */
  distinctFrames: number;
  /** distinct frames in each whole second of the video, to tell a slow picture from one that stalls */
  perSecond: number[];
}

/** Mean luma (full-range gray) below which a frame counts as black. */
const BLACK_LUMA = 24;

export interface Spell {
  start: number;
  end: number;
}

/**
 * Spells of black video (what the egress shows for a muted or absent camera), at least minSeconds
 * long, in file time. The first frame's time is returned too: a file's video may begin after 0.
 */
export async function blackSpells(path: string, minSeconds = 0.3): Promise<{ firstFrame: number; spells: Spell[] }> {
  const stats = await grayFrameStats(path);
  const spells: Spell[] = [];
  let open: number | undefined;
  for (let i = 0; i < stats.length; i++) {
    const black = stats[i]!.meanLuma < BLACK_LUMA;
    if (black && open === undefined) open = stats[i]!.time;
    if ((!black || i === stats.length - 1) && open !== undefined) {
      if (stats[i]!.time - open >= minSeconds) spells.push({ start: open, end: stats[i]!.time });
      open = undefined;
    }
  }
  return { firstFrame: stats[0]?.time ?? NaN, spells };
}

/**
 * Spells of at least minSeconds in which no frame differs visibly from the one before: a stall or a
 * gap in a picture that always moves (the publishers' marker bar), in file time.
 */
export async function frozenSpells(path: string, minSeconds = 0.5): Promise<Spell[]> {
  const stats = await grayFrameStats(path);
  const spells: Spell[] = [];
  let since = stats[0]?.time ?? 0;
  for (const s of stats) {
    if (s.changed < CHANGED_PIXELS) continue;
    if (s.time - since >= minSeconds) spells.push({ start: since, end: s.time });
    since = s.time;
  }
  const last = stats.at(-1)?.time ?? since;
  if (last - since >= minSeconds) spells.push({ start: since, end: last });
  return spells;
}

export async function videoChanges(path: string): Promise<VideoChanges> {
  const stats = await grayFrameStats(path);
  const distinct = stats.filter((s) => s.changed >= CHANGED_PIXELS);
  const perSecond: number[] = [];
  for (const s of distinct) {
    const second = Math.max(0, Math.floor(s.time - (stats[0]?.time ?? 0)));
    while (perSecond.length <= second) perSecond.push(0);
    perSecond[second]!++;
  }
  return { frames: stats.length, distinctFrames: distinct.length, perSecond };
}

/**
 * Start times of short pulses in a sampled on/off signal. "on" samples less than
 * MARKER_DEBOUNCE_S apart form one pulse (codec artifacts can break a marker up); pulses
 * longer than MARKER_MAX_S are content (a steady tone, a white slide), not markers.
 */
function pulseStarts(samples: { time: number; on: boolean }[]): number[] {
  const starts: number[] = [];
  let first = NaN;
  let last = NaN;
  const close = () => {
    if (last - first <= MARKER_MAX_S) starts.push(first);
  };
  for (const { time, on } of samples) {
    if (!on) continue;
    if (!(time - last <= MARKER_DEBOUNCE_S)) {
      close();
      first = time;
    }
    last = time;
  }
  close();
  return starts;
}

/** Start times (s) of full-white frames, i.e. the publisher's once-a-second flash. */
export async function flashTimes(path: string): Promise<number[]> {
  const stats = await grayFrameStats(path);
  return pulseStarts(stats.map((s) => ({ time: s.time, on: s.meanLuma >= FLASH_LUMA })));
}

const BEEP_RATE = 8000;
const BEEP_WINDOW = 40; // 5 ms at 8 kHz, five periods of 1 kHz
/** Beeps quieter than this (after the band-pass) are not looked for. */
const BEEP_MIN_RMS = 32767 * 10 ** (-40 / 20);

/** Start times (s) of 1 kHz beeps, i.e. the publisher's once-a-second marker. */
export async function beepTimes(path: string): Promise<number[]> {
  const result = await execa(
    'ffmpeg',
    [
      '-nostdin', '-hide_banner', '-nostats', '-v', 'error',
      '-i', path,
      '-map', '0:a:0',
      // async+first_pts pads the start and fills gaps with silence so that sample
      // positions stay on the file's timeline
      '-af', 'aresample=async=1:first_pts=0,bandpass=f=1000:width_type=h:w=200',
      '-ac', '1', '-ar', String(BEEP_RATE),
      '-f', 's16le', 'pipe:1',
    ],
    { reject: false, stdin: 'ignore', encoding: 'buffer' },
  );
  if (result.exitCode !== 0 || result.failed) {
    const stderr = new TextDecoder().decode(result.stderr);
    throw new Error(`ffmpeg (beeps of ${path}) failed (exit ${result.exitCode}):\n${errorTail(stderr)}`);
  }
  // copied so that the samples start on an even byte offset
  const bytes = Uint8Array.from(result.stdout);
  const pcm = new Int16Array(bytes.buffer, 0, Math.floor(bytes.byteLength / 2));
  const rms: number[] = [];
  for (let start = 0; start + BEEP_WINDOW <= pcm.length; start += BEEP_WINDOW) {
    let energy = 0;
    for (let i = start; i < start + BEEP_WINDOW; i++) energy += pcm[i]! * pcm[i]!;
    rms.push(Math.sqrt(energy / BEEP_WINDOW));
  }
  const peak = rms.reduce((a, b) => Math.max(a, b), 0);
  if (peak < BEEP_MIN_RMS) return [];
  // relative threshold: the beep level depends on the codecs in between, the tone leaks ~-27 dB
  const threshold = peak / 4;
  return pulseStarts(rms.map((r, i) => ({ time: (i * BEEP_WINDOW) / BEEP_RATE, on: r >= threshold })));
}

/**
 * Mean level (dB) of one frequency band of one channel: tells the publishers of a mix apart
 * (each sends its own tone) and shows which channel each landed on.
 */
export async function toneLevel(path: string, hz: number, channel: 'left' | 'right'): Promise<number> {
  const c = channel === 'left' ? 'c0' : 'c1';
  const { stderr } = await run('ffmpeg', [
    '-nostdin', '-hide_banner', '-nostats',
    '-i', path,
    '-map', '0:a:0',
    // Two band-passes in a row: one alone lets a neighbouring tone through at only ~12 dB down.
    '-af', `pan=mono|c0=${c},${Array(2).fill(`bandpass=f=${hz}:width_type=h:w=${Math.max(20, hz * 0.1)}`).join(',')},volumedetect`,
    '-f', 'null', '-',
  ]);
  const mean = /mean_volume:\s*(-?[\d.]+|-inf) dB/.exec(stderr);
  if (!mean?.[1]) throw new Error(`toneLevel: no volumedetect output for ${path}:\n${errorTail(stderr)}`);
  return mean[1] === '-inf' ? -Infinity : Number(mean[1]);
}

export interface AvSync {
  /** beep − flash per marker, in ms (positive: audio late). */
  offsetsMs: number[];
  p50: number;
  p95: number;
  max: number;
}

/** Pairs each flash with the nearest beep (within 500 ms) and summarises |offset|. */
export async function avSync(path: string): Promise<AvSync> {
  const [flashes, beeps] = await Promise.all([flashTimes(path), beepTimes(path)]);
  const offsetsMs: number[] = [];
  for (const f of flashes) {
    const nearest = beeps.reduce((best, b) => (Math.abs(b - f) < Math.abs(best - f) ? b : best), Infinity);
    if (Math.abs(nearest - f) <= 0.5) offsetsMs.push(Math.round((nearest - f) * 1000));
  }
  const abs = offsetsMs.map(Math.abs).sort((a, b) => a - b);
  const pct = (p: number) => (abs.length ? abs[Math.min(abs.length - 1, Math.ceil(p * abs.length) - 1)]! : NaN);
  return { offsetsMs, p50: pct(0.5), p95: pct(0.95), max: abs.at(-1) ?? NaN };
}

/** The mean colour (0-255 per channel) of the frame shown at `seconds` (0: the first frame). */
export async function frameColor(path: string, seconds: number): Promise<{ r: number; g: number; b: number }> {
  const result = await execa('ffmpeg', ['-nostdin', '-v', 'error', '-ss', String(seconds), '-i', path, '-frames:v', '1', '-vf', 'scale=1:1:flags=area', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], {
    reject: false,
    encoding: 'buffer',
  });
  const px = result.stdout as Uint8Array;
  if (result.exitCode !== 0 || px.length < 3) throw new Error(`ffmpeg (frame of ${path} at ${seconds} s) failed (exit ${result.exitCode})`);
  return { r: px[0]!, g: px[1]!, b: px[2]! };
}

/** The frame shown at `seconds` as full-range grey, one byte a pixel, at its own `width` x `height`. */
export async function grayFrame(path: string, seconds: number, width: number, height: number): Promise<Buffer> {
  const result = await execa('ffmpeg', ['-nostdin', '-v', 'error', '-ss', String(seconds), '-i', path, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'gray', '-'], {
    reject: false,
    encoding: 'buffer',
  });
  const px = result.stdout as Uint8Array;
  if (result.exitCode !== 0 || px.length !== width * height) throw new Error(`ffmpeg (grey frame of ${path} at ${seconds} s): ${px.length} bytes, exit ${result.exitCode}`);
  return Buffer.from(px);
}
