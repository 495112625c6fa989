// How the CLI shows egresses: a key/value summary of one EgressInfo, a compact table of many,
// progress lines, and protobuf JSON for --json.
import { EgressInfo, EgressStatus } from '@livekit/protocol';

export const statusName = (status: EgressStatus | number): string => EgressStatus[status] ?? `STATUS_${status}`;

/** COMPLETE, FAILED, ABORTED, LIMIT_REACHED: the egress will not change any more. */
export const isEnded = (status: EgressStatus): boolean =>
  status === EgressStatus.EGRESS_COMPLETE ||
  status === EgressStatus.EGRESS_FAILED ||
  status === EgressStatus.EGRESS_ABORTED ||
  status === EgressStatus.EGRESS_LIMIT_REACHED;

const KINDS: Record<string, string> = {
  roomComposite: 'room-composite',
  web: 'web',
  participant: 'participant',
  trackComposite: 'track-composite',
  track: 'track',
};

/** `track`, `room-composite`, … (the `egress start` kind of the stored request). */
export const requestKind = (info: EgressInfo): string => (info.request.case ? (KINDS[info.request.case] ?? info.request.case) : '-');

/** What the egress records: the track id, participant identity, URL or tracks. */
export function requestSource(info: EgressInfo): string {
  const r = info.request;
  switch (r.case) {
    case 'track':
      return r.value.trackId;
    case 'participant':
      return r.value.identity + (r.value.screenShare ? ' (screen share)' : '');
    case 'web':
      return r.value.url;
    case 'trackComposite':
      return [r.value.audioTrackId && `audio ${r.value.audioTrackId}`, r.value.videoTrackId && `video ${r.value.videoTrackId}`].filter(Boolean).join(', ');
    case 'roomComposite':
      return r.value.layout ? `layout ${r.value.layout}` : '';
    default:
      return '';
  }
}

/** 1234567 → `1.2 MB` (decimal units). */
export function formatBytes(bytes: number | bigint): string {
  const n = Number(bytes);
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = -1;
  do {
    v /= 1000;
    u++;
  } while (v >= 1000 && u < units.length - 1);
  return `${v.toFixed(1)} ${units[u]}`;
}

/** 8200 → `8.2s`, 65000 → `1m05s`, 3723000 → `1h02m03s`. */
export function formatDuration(ms: number): string {
  if (ms < 0) ms = 0;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const total = Math.floor(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (x: number) => String(x).padStart(2, '0');
  return h > 0 ? `${h}h${pad(m)}m${pad(s)}s` : `${m}m${pad(s)}s`;
}

const nsToMs = (ns: bigint): number => Number(ns / 1_000_000n);
const isoOf = (ns: bigint): string => new Date(nsToMs(ns)).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** How long the egress ran (or has run so far), from its started/ended times. */
export function egressDurationMs(info: EgressInfo, nowMs = Date.now()): number | undefined {
  if (info.startedAt <= 0n) return undefined;
  const end = info.endedAt > 0n ? nsToMs(info.endedAt) : nowMs;
  return end - nsToMs(info.startedAt);
}

/** What the outputs hold so far: `file 12.3 kB, 5.8s; 3 segments 40.1 kB, 6.0s`; '' while unknown. */
export function outputProgress(info: EgressInfo): string {
  const parts: string[] = [];
  for (const f of info.fileResults) {
    const bits = [f.size > 0n && formatBytes(f.size), f.duration > 0n && formatDuration(nsToMs(f.duration))].filter(Boolean);
    if (bits.length) parts.push(`file ${bits.join(', ')}`);
  }
  for (const s of info.segmentResults) {
    const bits = [
      s.segmentCount > 0n && `${s.segmentCount} segments`,
      s.size > 0n && formatBytes(s.size),
      s.duration > 0n && formatDuration(nsToMs(s.duration)),
    ].filter(Boolean);
    if (bits.length) parts.push(`segments ${bits.join(', ')}`);
  }
  return parts.join('; ');
}

/** The EgressInfo summary printed by start, stop, update-*: one `key  value` pair a line. */
export function formatInfo(info: EgressInfo): string {
  const rows: [string, string][] = [
    ['egress_id', info.egressId],
    ['status', statusName(info.status)],
    ['type', requestKind(info)],
  ];
  if (info.roomName) rows.push(['room', info.roomName]);
  const source = requestSource(info);
  if (source) rows.push(['source', source]);
  if (info.startedAt > 0n) rows.push(['started', isoOf(info.startedAt)]);
  if (info.endedAt > 0n) rows.push(['ended', isoOf(info.endedAt)]);
  const duration = egressDurationMs(info);
  if (duration !== undefined && info.endedAt > 0n) rows.push(['duration', formatDuration(duration)]);
  for (const f of info.fileResults) {
    const bits = [f.filename, f.size > 0n && formatBytes(f.size), f.duration > 0n && formatDuration(nsToMs(f.duration)), f.location && f.location !== f.filename && f.location];
    rows.push(['file', bits.filter(Boolean).join('  ')]);
  }
  for (const s of info.streamResults) rows.push(['stream', `${s.url}  ${s.status === 0 ? 'ACTIVE' : s.status === 1 ? 'FINISHED' : 'FAILED'}${s.error ? `  ${s.error}` : ''}`]);
  for (const s of info.segmentResults) {
    const bits = [s.playlistName || s.playlistLocation, s.segmentCount > 0n && `${s.segmentCount} segments`, s.size > 0n && formatBytes(s.size), s.duration > 0n && formatDuration(nsToMs(s.duration))];
    rows.push(['segments', bits.filter(Boolean).join('  ')]);
  }
  if (info.error) rows.push(['error', info.errorCode ? `${info.error} (${info.errorCode})` : info.error]);
  if (info.details) rows.push(['details', info.details]);
  return formatRows(rows);
}

function formatRows(rows: [string, string][]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

/** Left-aligned columns, two spaces apart; the first row is the header. */
export function formatTable(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

/** `egress list`: one egress a line. */
export function egressTable(infos: EgressInfo[], nowMs = Date.now()): string {
  const rows = [['EGRESS ID', 'STATUS', 'TYPE', 'ROOM', 'SOURCE', 'STARTED', 'DURATION', 'ERROR']];
  for (const info of infos) {
    const duration = egressDurationMs(info, nowMs);
    rows.push([
      info.egressId,
      statusName(info.status),
      requestKind(info),
      info.roomName || '-',
      requestSource(info) || '-',
      info.startedAt > 0n ? isoOf(info.startedAt) : '-',
      duration === undefined ? '-' : formatDuration(duration),
      info.error || '',
    ]);
  }
  return formatTable(rows);
}

/** protobuf JSON of one EgressInfo or a list of them, for --json. */
export function infoJson(info: EgressInfo | EgressInfo[]): string {
  const value = Array.isArray(info) ? info.map((i) => i.toJson()) : info.toJson();
  return JSON.stringify(value, null, 2);
}
