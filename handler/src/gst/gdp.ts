/**
 * GStreamer Data Protocol (GDP 1.0) encoding, so Node can feed raw media into
 * `gst-launch-1.0 ... fdsrc fd=N ! gdpdepay ! ...`.
 *
 * Why GDP and not raw bytes: a raw byte stream carries no timestamps, so gst would
 * have to invent them from byte counts, and any stall upstream would silently shift
 * audio against video. GDP frames every buffer with its own PTS and duration.
 *
 * Every packet is a 62-byte big-endian header followed by a payload. A stream must
 * begin with stream-start, caps and segment packets; with caps alone gdpdepay floods
 * CRITICALs and muxers produce empty files.
 */
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';

export const GDP_HEADER_LENGTH = 62;

/** GST_CLOCK_TIME_NONE / GST_BUFFER_OFFSET_NONE. */
export const GST_NONE = 0xffff_ffff_ffff_ffffn;

const PAYLOAD_BUFFER = 1;
const PAYLOAD_CAPS = 2;
// Event packets use 64 + GstEventType; the type encodes (number << 8) | flags,
// here downstream | serialized | sticky (0x0e).
const PAYLOAD_EVENT_BASE = 64;
const EVENT_STREAM_START = 0x280e;
const EVENT_SEGMENT = 0x460e;

const SEGMENT_STRUCTURE =
  'GstEventSegment, segment=(GstSegment)"segment, flags=(GstSegmentFlags)GST_SEGMENT_FLAG_NONE, ' +
  'rate=(double)1, applied-rate=(double)1, format=(GstFormat)time, base=(guint64)0, offset=(guint64)0, ' +
  'start=(guint64)0, stop=(guint64)18446744073709551615, time=(guint64)0, position=(guint64)0, ' +
  'duration=(guint64)18446744073709551615;";';

function header(payloadType: number, payloadLength: number): Buffer {
  const h = Buffer.alloc(GDP_HEADER_LENGTH); // CRC fields stay 0 = "not checked"
  h[0] = 1; // major version
  h[1] = 0; // minor version
  h[2] = 0; // flags: no header/payload CRC
  h.writeUInt16BE(payloadType, 4);
  h.writeUInt32BE(payloadLength, 6);
  return h;
}

/** Caps and event payloads are C strings: the NUL terminator is part of the length. */
function stringPacket(payloadType: number, text: string): Buffer {
  const payload = Buffer.from(text + '\0', 'utf8');
  return Buffer.concat([header(payloadType, payload.length), payload]);
}

/** Stream-start packet (header + payload). */
export function gdpStreamStart(streamId: string): Buffer {
  return stringPacket(
    PAYLOAD_EVENT_BASE + EVENT_STREAM_START,
    `GstEventStreamStart, stream-id=(string)${streamId}, flags=(GstStreamFlags)GST_STREAM_FLAG_NONE, group-id=(uint)1;`,
  );
}

/** Caps packet, e.g. `gdpCaps('audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=2')`. */
export function gdpCaps(caps: string): Buffer {
  return stringPacket(PAYLOAD_CAPS, caps);
}

/** An open-ended TIME segment starting at 0, so buffer PTS are running times. */
export function gdpSegment(): Buffer {
  return stringPacket(PAYLOAD_EVENT_BASE + EVENT_SEGMENT, SEGMENT_STRUCTURE);
}

/** The three packets every GDP stream must start with. */
export function gdpPreamble(streamId: string, caps: string): Buffer {
  return Buffer.concat([gdpStreamStart(streamId), gdpCaps(caps), gdpSegment()]);
}

/** Header of a buffer packet; the payload bytes follow it on the wire. */
export function gdpBufferHeader(payloadLength: number, ptsNs: bigint, durationNs: bigint | null): Buffer {
  const h = header(PAYLOAD_BUFFER, payloadLength);
  h.writeBigUInt64BE(ptsNs, 10);
  h.writeBigUInt64BE(durationNs ?? GST_NONE, 18);
  h.writeBigUInt64BE(GST_NONE, 26); // offset
  h.writeBigUInt64BE(GST_NONE, 34); // offset_end
  // [42..43] buffer flags stay 0
  h.writeBigUInt64BE(GST_NONE, 44); // DTS: raw media has no decode order
  return h;
}

export interface GdpWriterOptions {
  /** Identifies the stream inside gst (stream-start event); unique per branch. */
  streamId: string;
  /** Caps string of the raw media, e.g. `video/x-raw,format=I420,width=640,height=360,framerate=0/1`. */
  caps: string;
  /**
   * Frames are dropped while more than this many bytes wait in the socket.
   * gst may fall behind (slow encoder, loaded host); queuing every raw frame in
   * Node would grow memory without bound. Use Infinity for streams that must not
   * lose data (audio), a few frames' worth for video.
   */
  maxBacklogBytes: number;
}

/**
 * Writes one timestamped media stream into one gst input fd.
 *
 * The preamble is written at construction, so create the writer once the caps are
 * known (for video: at the first frame). Payloads are referenced, not copied, until
 * the socket has flushed them: do not reuse a payload's memory after `write`.
 */
export class GdpWriter {
  /** Frames not written: backlog over `maxBacklogBytes`, or the stream already ended or broken. */
  dropped = 0;
  private readonly stream: Writable;
  private readonly maxBacklogBytes: number;
  private ending: Promise<void> | undefined;
  /**
   * The newest frame dropped for backlog since the last one written. It goes out before the end: a
   * stream that fell behind would otherwise stop at its last accepted frame, seconds before the
   * recording did (measured: 1.2 s short at 720p on a loaded machine).
   */
  private held: { payload: Uint8Array; ptsNs: bigint; durationNs: bigint | null } | undefined;

  constructor(stream: Writable, opts: GdpWriterOptions) {
    this.stream = stream;
    this.maxBacklogBytes = opts.maxBacklogBytes;
    // When gst exits first, writes fail with EPIPE; without a listener that error
    // would crash the process. The runner reports why gst exited.
    stream.on('error', () => {});
    stream.write(gdpPreamble(opts.streamId, opts.caps));
  }

  /** New caps for the frames that follow (gdpdepay pushes them downstream, which renegotiates). */
  setCaps(caps: string): void {
    if (!this.stream.destroyed && !this.stream.writableEnded) this.stream.write(gdpCaps(caps));
  }

  /** Queues one frame; returns false if it was dropped instead. */
  write(payload: Uint8Array, ptsNs: bigint, durationNs: bigint | null): boolean {
    const s = this.stream;
    if (s.destroyed || s.writableEnded || s.writableLength > this.maxBacklogBytes) {
      this.dropped++;
      if (!s.destroyed && !s.writableEnded) this.held = { payload, ptsNs, durationNs };
      return false;
    }
    this.held = undefined;
    this.send(payload, ptsNs, durationNs);
    return true;
  }

  private send(payload: Uint8Array, ptsNs: bigint, durationNs: bigint | null): void {
    const s = this.stream;
    // Corked, header and payload leave in one writev without copying the payload.
    s.cork();
    s.write(gdpBufferHeader(payload.byteLength, ptsNs, durationNs));
    s.write(payload);
    s.uncork();
  }

  /**
   * Ends the stream: gst sees end-of-file on this fd, which gdpdepay turns into EOS
   * for this branch. Resolves once everything queued is flushed, or the stream is
   * gone (gst exited); never rejects. Safe to call more than once.
   */
  end(): Promise<void> {
    this.ending ??= (() => {
      const held = this.held;
      this.held = undefined;
      if (held && !this.stream.destroyed && !this.stream.writableEnded) {
        this.send(held.payload, held.ptsNs, held.durationNs);
        this.dropped--;
      }
      const done = finished(this.stream, { readable: false }).catch(() => {});
      this.stream.end();
      return done;
    })();
    return this.ending;
  }
}

/** GST_BUFFER_FLAG_DELTA_UNIT: the buffer is not a key frame. */
const FLAG_DELTA_UNIT = 1 << 13;

/** One packet that gst's `gdppay` wrote: the whole packet, and what the stream fan-out needs of it. */
export type GdpPacket =
  | { type: 'caps'; packet: Buffer }
  | { type: 'buffer'; packet: Buffer; ptsNs: bigint; keyFrame: boolean }
  | { type: 'event'; packet: Buffer }
  /** A TIME segment: a buffer's running time is its PTS - start + base. */
  | { type: 'segment'; packet: Buffer; start: bigint; base: bigint };

/**
 * Splits the byte stream of a `gdppay ! fdsink` into packets. Feed it chunks as they arrive; it
 * keeps a partial packet until the rest comes.
 */
export class GdpParser {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): GdpPacket[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const packets: GdpPacket[] = [];
    while (this.pending.length >= GDP_HEADER_LENGTH) {
      const length = GDP_HEADER_LENGTH + this.pending.readUInt32BE(6);
      if (this.pending.length < length) break;
      const packet = this.pending.subarray(0, length);
      this.pending = this.pending.subarray(length);
      const type = packet.readUInt16BE(4);
      if (type === PAYLOAD_BUFFER) {
        packets.push({ type: 'buffer', packet, ptsNs: packet.readBigUInt64BE(10), keyFrame: (packet.readUInt16BE(42) & FLAG_DELTA_UNIT) === 0 });
      } else {
        packets.push(type === PAYLOAD_CAPS ? { type: 'caps', packet } : type === PAYLOAD_EVENT_BASE + EVENT_SEGMENT ? segment(packet) : { type: 'event', packet });
      }
    }
    return packets;
  }
}

function segment(packet: Buffer): GdpPacket {
  const text = packet.subarray(GDP_HEADER_LENGTH).toString('utf8');
  const field = (name: string) => BigInt(new RegExp(`\\b${name}=\\(guint64\\)(\\d+)`).exec(text)?.[1] ?? '0');
  return { type: 'segment', packet, start: field('start'), base: field('base') };
}

/**
 * The header of a buffer packet moved back in time by `offsetNs` (PTS and DTS, not below 0), for a
 * stream that starts late or whose segment does not start at 0 (x264enc's starts at 1000 hours); its
 * payload follows unchanged. The header CRC, now wrong, is switched off.
 */
export function gdpRebasedHeader(packet: Buffer, offsetNs: bigint): Buffer {
  const h = Buffer.from(packet.subarray(0, GDP_HEADER_LENGTH));
  for (const at of [10, 44]) {
    const t = h.readBigUInt64BE(at);
    if (t !== GST_NONE) h.writeBigUInt64BE(t > offsetNs ? t - offsetNs : 0n, at);
  }
  h[2] = h[2]! & ~1;
  h.writeUInt16BE(0, 58);
  return h;
}
