// File naming: placeholders and path cleaning as the Go egress does them (egress-behaviour §4).
import path from 'node:path/posix';

export interface NamingContext {
  roomName?: string;
  roomId?: string;
  publisherIdentity?: string;
  trackId?: string;
  trackType?: 'audio' | 'video';
  trackSource?: string;
  retryCount?: number;
  now: Date;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** Go layout `2006-01-02T150405`, process-local time. */
export function formatTime(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}${pad(d.getMinutes())}${pad(d.getSeconds())}`;
}

/** `YYYYMMDDHHMMSSmmm`; process-local time like the Go egress (containers run in UTC). */
export function formatUtc(d: Date): string {
  return `${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}${pad(d.getHours())}${pad(d.getMinutes())}${pad(d.getSeconds())}${pad(d.getMilliseconds(), 3)}`;
}

export function applyPlaceholders(template: string, ctx: NamingContext): string {
  const values: Record<string, string | undefined> = {
    '{room_name}': ctx.roomName || undefined,
    '{room_id}': ctx.roomName ? ctx.roomId : undefined,
    '{time}': formatTime(ctx.now),
    '{utc}': formatUtc(ctx.now),
    '{publisher_identity}': ctx.publisherIdentity,
    '{track_id}': ctx.trackId,
    '{track_type}': ctx.trackType,
    '{track_source}': ctx.trackSource,
    '{retry}': ctx.retryCount ? String(ctx.retryCount) : undefined,
  };
  let out = template;
  for (const [key, value] of Object.entries(values)) if (value !== undefined) out = out.split(key).join(value);
  return out;
}

/** POSIX-normalise, strip leading `../`, keep a trailing `/`; `.`/`..` become empty. */
export function cleanPath(p: string): string {
  if (p === '') return '';
  const trailing = p.endsWith('/');
  let out = path.normalize(p);
  while (out.startsWith('../')) out = out.slice(3);
  if (out === '.' || out === '..' || out === './') out = '';
  if (trailing && out !== '' && !out.endsWith('/')) out += '/';
  return out;
}

export const KNOWN_EXTENSIONS = ['.raw', '.ogg', '.mp3', '.ivf', '.mp4', '.ts', '.webm', '.m3u8', '.jpeg'];

/**
 * A file output's storage path: an empty path or a directory gets `<identifier>-<time>`; a known wrong
 * extension is replaced, anything else gets the extension appended.
 */
export function fileOutputPath(requested: string, ext: string, identifier: string, ctx: NamingContext): string {
  let p = cleanPath(applyPlaceholders(requested, ctx));
  if (p === '' || p.endsWith('/')) {
    p += `${identifier}-${formatTime(ctx.now)}${ctx.retryCount ? `-${ctx.retryCount}` : ''}`;
  }
  if (p.endsWith(ext)) return p;
  const dot = p.lastIndexOf('.');
  if (dot >= 0 && KNOWN_EXTENSIONS.includes(p.slice(dot))) p = p.slice(0, dot);
  return p + ext;
}

/** The SDK-derived values of the second naming pass (§4.1), known once the tracks are subscribed. */
export type SdkNamingContext = Pick<NamingContext, 'publisherIdentity' | 'trackId' | 'trackType' | 'trackSource'>;

/** Only the SDK placeholders: the first pass already replaced the rest (and `{time}` must not move). */
export function applySdkPlaceholders(template: string, ctx: SdkNamingContext): string {
  const values: [string, string | undefined][] = [
    ['{publisher_identity}', ctx.publisherIdentity],
    ['{track_id}', ctx.trackId],
    ['{track_type}', ctx.trackType],
    ['{track_source}', ctx.trackSource],
  ];
  let out = template;
  for (const [key, value] of values) if (value !== undefined) out = out.split(key).join(value);
  return out;
}

/** Splits a cleaned path into (dir with trailing `/` or empty, base), as Go's path.Split. */
export function splitPath(p: string): [string, string] {
  const i = p.lastIndexOf('/');
  return i < 0 ? ['', p] : [p.slice(0, i + 1), p.slice(i + 1)];
}
