// Pure: the stored names of segments and thumbnails (egress-behaviour §4.4, §4.5). Locally, gst writes
// them under names of our own (no user text reaches a gst property); they are renamed on upload.
import type { ImageSuffix, SegmentSuffix } from '@egress/shared/plan/pipeline-config.ts';

/** `YYYYMMDDHHMMSS` + milliseconds, in UTC: Go's `20060102150405` and 3 digits of ms. */
export function stamp(wallMs: number): string {
  const d = new Date(wallMs);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}${p(d.getUTCMilliseconds(), 3)}`;
}

/** A segment's name relative to the playlist's directory: INDEX `<prefix>_00000.ts`, TIMESTAMP `<prefix>_<stamp>.ts`. */
export function segmentName(prefix: string, suffix: SegmentSuffix, index: number, wallMs: number): string {
  return `${prefix}_${suffix === 'timestamp' ? stamp(wallMs) : String(index).padStart(5, '0')}.ts`;
}

/** A thumbnail's name inside its storage directory. NONE_OVERWRITE keeps one object, overwritten. */
export function imageName(prefix: string, suffix: ImageSuffix, index: number, wallMs: number): string {
  switch (suffix) {
    case 'index':
      return `${prefix}_${String(index).padStart(5, '0')}.jpeg`;
    case 'timestamp':
      return `${prefix}_${stamp(wallMs)}.jpeg`;
    case 'none_overwrite':
      return `${prefix}.jpeg`;
  }
}
