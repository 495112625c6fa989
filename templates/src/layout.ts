// Pure layout logic of the default template: which layout a name means, which track takes the stage,
// and where each tile goes. No DOM and no livekit-client here, so it can be unit-tested from Node.

export type LayoutKind = 'grid' | 'speaker' | 'single-speaker';

export interface LayoutChoice {
  kind: LayoutKind;
  light: boolean;
}

/**
 * The layout a request's name means (egress-behaviour §9.3): only the prefix and the `-light` suffix
 * count, and anything unrecognised (including '') is a grid, as in the Go template.
 */
export function parseLayout(name: string): LayoutChoice {
  const light = name.endsWith('-light');
  if (name.startsWith('single-speaker')) return { kind: 'single-speaker', light };
  if (name.startsWith('speaker')) return { kind: 'speaker', light };
  return { kind: 'grid', light };
}

export interface Candidate {
  key: string;
  screenShare: boolean;
  speaking: boolean;
  audioLevel: number;
  /** ms since the epoch, 0 when never heard */
  lastSpokeAt: number;
}

/**
 * The track on the stage: the newest screen share; else the previous top while it still speaks or nobody
 * else does (two people talking at once must not make the focus flap from frame to frame); else the
 * loudest speaker, the latest one heard, or the first.
 */
export function pickTop(candidates: readonly Candidate[], previousTop?: string): string | undefined {
  const shares = candidates.filter((c) => c.screenShare);
  if (shares.length > 0) return shares[shares.length - 1]!.key;
  const previous = candidates.find((c) => c.key === previousTop);
  const speaking = candidates.filter((c) => c.speaking);
  if (previous && (previous.speaking || speaking.length === 0)) return previous.key;
  if (speaking.length > 0) return speaking.reduce((a, b) => (b.audioLevel > a.audioLevel ? b : a)).key;
  const heard = candidates.filter((c) => c.lastSpokeAt > 0);
  if (heard.length > 0) return heard.reduce((a, b) => (b.lastSpokeAt > a.lastSpokeAt ? b : a)).key;
  return candidates[0]?.key;
}

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Placement extends Rect {
  key: string;
}

/** Gap between tiles, px. */
export const GAP = 4;
/** Carousel of the speaker layout: at most this many tiles, on a strip this share of the page. */
export const CAROUSEL_TILES = 3;
export const CAROUSEL_SHARE = 0.2;
// Tiles are sized for the usual camera shape; the video is letterboxed inside (object-fit: contain).
const ASPECT = 16 / 9;

/** The columns for n tiles that show the largest 16:9 picture in width x height (ties: more columns). */
export function gridColumns(n: number, width: number, height: number): number {
  let best = 1;
  let bestScale = -1;
  for (let cols = n; cols >= 1; cols--) {
    const rows = Math.ceil(n / cols);
    const w = (width - GAP * (cols - 1)) / cols;
    const h = (height - GAP * (rows - 1)) / rows;
    const scale = Math.min(w / ASPECT, h);
    if (scale > bestScale + 1e-9) {
      best = cols;
      bestScale = scale;
    }
  }
  return best;
}

function grid(keys: readonly string[], width: number, height: number): Placement[] {
  if (keys.length === 0) return [];
  const cols = gridColumns(keys.length, width, height);
  const rows = Math.ceil(keys.length / cols);
  const w = (width - GAP * (cols - 1)) / cols;
  const h = (height - GAP * (rows - 1)) / rows;
  return keys.map((key, i) => {
    const row = Math.floor(i / cols);
    // the last row, when short, is centred
    const inRow = row === rows - 1 ? keys.length - row * cols : cols;
    const offset = ((cols - inRow) * (w + GAP)) / 2;
    return { key, x: offset + (i % cols) * (w + GAP), y: row * (h + GAP), w, h };
  });
}

/** Focus on the left and a column of small tiles on the right; on a portrait page, a row below. */
function speaker(top: string, others: readonly string[], width: number, height: number): Placement[] {
  const strip = others.slice(0, CAROUSEL_TILES);
  if (strip.length === 0) return [{ key: top, x: 0, y: 0, w: width, h: height }];
  const n = CAROUSEL_TILES;
  if (width >= height) {
    const stripW = Math.round(width * CAROUSEL_SHARE);
    const tileH = Math.min(stripW / ASPECT, (height - GAP * (n - 1)) / n);
    const top0 = (height - (strip.length * tileH + GAP * (strip.length - 1))) / 2;
    return [
      { key: top, x: 0, y: 0, w: width - stripW - GAP, h: height },
      ...strip.map((key, i) => ({ key, x: width - stripW, y: top0 + i * (tileH + GAP), w: stripW, h: tileH })),
    ];
  }
  const stripH = Math.round(height * CAROUSEL_SHARE);
  const tileW = Math.min(stripH * ASPECT, (width - GAP * (n - 1)) / n);
  const left0 = (width - (strip.length * tileW + GAP * (strip.length - 1))) / 2;
  return [
    { key: top, x: 0, y: 0, w: width, h: height - stripH - GAP },
    ...strip.map((key, i) => ({ key, x: left0 + i * (tileW + GAP), y: height - stripH, w: tileW, h: stripH })),
  ];
}

/**
 * Where each tile goes, in page pixels. `keys` is the stable (join) order; `top` is pickTop's choice.
 * A grid becomes a speaker layout while a screen share is on, so the share is readable. Tiles left out
 * (beyond the carousel, or all but the top in single-speaker) are not placed, so they are not rendered.
 */
export function placeTiles(
  kind: LayoutKind,
  keys: readonly string[],
  top: string | undefined,
  hasScreenShare: boolean,
  width: number,
  height: number,
): Placement[] {
  if (keys.length === 0) return [];
  const stage = top !== undefined && keys.includes(top) ? top : keys[0]!;
  const effective = kind === 'grid' && hasScreenShare ? 'speaker' : kind;
  if (effective === 'grid') return grid(keys, width, height);
  if (effective === 'single-speaker') return [{ key: stage, x: 0, y: 0, w: width, h: height }];
  return speaker(stage, keys.filter((k) => k !== stage), width, height);
}
