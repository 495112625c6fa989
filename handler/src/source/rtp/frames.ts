// Pure: what a video RTP packet carries, read from the payload descriptors without decoding anything.
// - Whether it starts a key frame. A remuxed video file can only begin at one (the depayloaders drop
//   what comes before), so the recording is ACTIVE from the first key frame, and a track that never
//   sends one fails its egress instead of writing nothing for ever.
// - Whether it is one of livekit-server's blank frames. When a track is muted or unpublished, the SFU
//   sends a few tiny key frames (VP8 8x8, H.264 2x2: sfu/downtrack.go) to flush players' buffers. In
//   a file they are a change of resolution for a fraction of a second, which mp4mux refuses outright
//   (not-negotiated), so they are dropped before gst.

/** The RTP payload, after the fixed header, the CSRCs and any header extension; empty if malformed. */
export function rtpPayload(packet: Buffer): Buffer {
  if (packet.length < 12) return Buffer.alloc(0);
  let offset = 12 + 4 * (packet[0]! & 0x0f);
  if (packet[0]! & 0x10) {
    if (packet.length < offset + 4) return Buffer.alloc(0);
    offset += 4 + 4 * packet.readUInt16BE(offset + 2);
  }
  let end = packet.length;
  if (packet[0]! & 0x20) end -= packet[end - 1]!;
  return offset < end ? packet.subarray(offset, end) : Buffer.alloc(0);
}

/** The VP8 payload after its descriptor (RFC 7741 §4.2): picture id (7 or 15 bits), TL0PICIDX, TID/KEYIDX. */
function vp8Frame(p: Buffer): Buffer {
  let i = 1;
  if (p[0]! & 0x80) {
    const x = p[i++]!;
    if (x & 0x80) i += p[i]! & 0x80 ? 2 : 1;
    if (x & 0x40) i++;
    if (x & 0x30) i++;
  }
  return p.subarray(Math.min(i, p.length));
}

/** RFC 7741: the first packet of a VP8 key frame (S set, partition 0, P bit of the frame header clear). */
function vp8(p: Buffer): boolean {
  if (p.length < 1) return false;
  const start = (p[0]! & 0x10) !== 0 && (p[0]! & 0x07) === 0;
  const frame = vp8Frame(p);
  return start && frame.length > 0 && (frame[0]! & 0x01) === 0;
}

/** VP9 (draft-ietf-payload-vp9): B set (start of a frame) and P clear (not predicted from another). */
const vp9 = (p: Buffer): boolean => p.length > 0 && (p[0]! & 0x08) !== 0 && (p[0]! & 0x40) === 0;

const IDR = 5;
const SPS = 7;
const STAP_A = 24;
const FU_A = 28;

/** RFC 6184: the types of the NAL units an H.264 payload starts: one alone, each in a STAP-A, or the one an FU-A begins. */
function nalTypes(p: Buffer): number[] {
  if (p.length < 1) return [];
  const type = p[0]! & 0x1f;
  if (type === STAP_A) {
    const types: number[] = [];
    for (let i = 1; i + 2 < p.length; i += 2 + p.readUInt16BE(i)) types.push(p[i + 2]! & 0x1f);
    return types;
  }
  if (type === FU_A) return p.length > 1 && p[1]! & 0x80 ? [p[1]! & 0x1f] : [];
  return [type];
}

/** An IDR slice or an SPS. */
const h264 = (p: Buffer): boolean => nalTypes(p).some((t) => t === IDR || t === SPS);

/** An H.264 packet with an SPS (alone or in a STAP-A): h264parse can describe the stream from there on. */
export const carriesSps = (packet: Buffer): boolean => nalTypes(rtpPayload(packet)).includes(SPS);

const BY_CODEC: Record<string, (payload: Buffer) => boolean> = { 'video/vp8': vp8, 'video/vp9': vp9, 'video/h264': h264 };

/** Audio packets all count: any one of them can begin a file. */
export function startsKeyFrame(mimeType: string, packet: Buffer): boolean {
  const check = BY_CODEC[mimeType.toLowerCase()];
  if (!check) return !mimeType.toLowerCase().startsWith('video/');
  return check(rtpPayload(packet));
}

/** The start of livekit-server's VP8KeyFrame8x8: a key frame tag, the start code, 8 x 8. */
const VP8_BLANK = Buffer.from([0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x08, 0x00, 0x08, 0x00]);
/** livekit-server's H264KeyFrame2x2SPS, the first NAL unit of the STAP-A it sends. */
const H264_BLANK_SPS = Buffer.from([0x67, 0x42, 0xc0, 0x1f, 0x0f, 0xd9, 0x1f, 0x88, 0x88, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x60, 0xc9, 0x20]);


export function isBlankFrame(mimeType: string, packet: Buffer): boolean {
  const p = rtpPayload(packet);
  if (p.length < 2) return false;
  switch (mimeType.toLowerCase()) {
    case 'video/vp8':
      return vp8Frame(p).subarray(0, VP8_BLANK.length).equals(VP8_BLANK);
    case 'video/h264':
      return (p[0]! & 0x1f) === STAP_A && p.length >= 3 + H264_BLANK_SPS.length && p.readUInt16BE(1) === H264_BLANK_SPS.length && p.subarray(3, 3 + H264_BLANK_SPS.length).equals(H264_BLANK_SPS);
    default:
      return false;
  }
}
