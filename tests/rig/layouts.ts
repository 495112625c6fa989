// The default template's layouts at 1280x720 with two camera publishers (templates/src/layout.ts, gap
// 4), as regions of a greyscale picture: a screenshot of the page, or a frame of its recording. The
// rig's marker picture is a flat dark grey (limited-range Y 48, ≈ 37 full range) with a moving bright
// bar, so a picture region's median is far from both the black and the white background; its flash
// (Y 235) lasts 100 ms of each second, which a caller steps over by looking again.

export const LAYOUT_WIDTH = 1280;
export const LAYOUT_HEIGHT = 720;

export type Expect = 'picture' | 'background';

export interface Region {
  name: string;
  x: number;
  y: number;
  w: number;
  h: number;
  expect: Expect;
}

export const region = (name: string, x: number, y: number, w: number, h: number, expect: Expect): Region => ({ name, x, y, w, h, expect });

/** Grid of 2: two 638x720 tiles side by side, each a 638x359 picture at y 180..539, letterboxed above and below. */
export const GRID_2 = [
  region('left picture', 64, 260, 510, 200, 'picture'),
  region('right picture', 706, 260, 510, 200, 'picture'),
  region('left top letterbox', 64, 20, 510, 120, 'background'),
  region('right bottom letterbox', 706, 580, 510, 120, 'background'),
  region('middle top', 560, 100, 160, 60, 'background'),
];

/** Speaker with 2: a 1020x720 focus (picture 1020x574 at y 73..647) and one 256x144 tile at (1024, 288) in the carousel column. */
export const SPEAKER_2 = [
  region('focus picture', 200, 260, 620, 200, 'picture'),
  region('focus middle top', 560, 100, 160, 60, 'picture'),
  region('focus top letterbox', 200, 10, 620, 50, 'background'),
  region('carousel tile', 1060, 310, 180, 100, 'picture'),
  region('carousel above', 1060, 60, 180, 190, 'background'),
  region('carousel below', 1060, 470, 180, 190, 'background'),
];

/** Single speaker: one picture fills the page. */
export const SINGLE = [
  region('top band', 100, 20, 1080, 120, 'picture'),
  region('centre', 200, 260, 880, 200, 'picture'),
  region('carousel column', 1060, 60, 180, 190, 'picture'),
];

/** The median luma of a region of a LAYOUT_WIDTH-wide greyscale picture (every other pixel). */
export function median(img: Buffer, r: Region): number {
  const values: number[] = [];
  for (let y = r.y; y < r.y + r.h; y += 2) for (let x = r.x; x < r.x + r.w; x += 2) values.push(img[y * LAYOUT_WIDTH + x]!);
  values.sort((a, b) => a - b);
  return values[values.length >> 1]!;
}

const matches = (m: number, expect: Expect, light: boolean): boolean => (expect === 'picture' ? m >= 20 && m <= 120 : light ? m >= 245 : m <= 10);

/** What is not as expected in `img` (empty when it shows the layout), each region with its median. */
export function layoutMismatches(img: Buffer, regions: Region[], light = false): string[] {
  return regions.flatMap((r) => {
    const m = median(img, r);
    return matches(m, r.expect, light) ? [] : [`${r.name}: median ${m}, expected ${r.expect}`];
  });
}

/** Every region's median, for a test's output. */
export const medians = (img: Buffer, regions: Region[]): string => regions.map((r) => `${r.name} ${median(img, r)}`).join(', ');
