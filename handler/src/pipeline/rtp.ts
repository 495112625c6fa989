// Pure: the gst graph of a zero-transcode track egress (egress-behaviour §10.5). The track's RTP and
// the SFU's sender reports come in on two UDP ports on 127.0.0.1 (source/rtp/forwarder.ts); rtpbin
// reorders them in its jitter buffer, and the depayloaded frames go into the container as they were
// published. Only G.711, which no container here takes, is decoded and encoded as Opus.
//
//   udpsrc (RTP)  → rtpbin → depay → parser → muxer → filesink
//   udpsrc (RTCP) ↗
import { errors } from '@egress/shared/errors.ts';
import type { FileBranch } from './encode.ts';

/**
 * Every packet is forwarded with this payload type, whatever the SFU negotiated: gst's caps are then
 * known from the track's codec alone, so gst starts while the subscription is still being answered.
 */
export const RTP_PAYLOAD_TYPE = 96;

/** What gst receives: one track's RTP and RTCP. */
export interface RtpCapture {
  type: 'rtp';
  /** The track's codec, lower-case (`video/vp8`, `audio/opus`, …). */
  mimeType: string;
  rtpPort: number;
  rtcpPort: number;
}

interface RtpCodec {
  media: 'audio' | 'video';
  encodingName: string;
  clockRate: number;
  /** From rtpbin's pad to the muxer. */
  depay: string[];
}

const CODECS: Record<string, RtpCodec> = {
  'audio/opus': { media: 'audio', encodingName: 'OPUS', clockRate: 48_000, depay: ['rtpopusdepay', '!', 'opusparse'] },
  'audio/pcmu': { media: 'audio', encodingName: 'PCMU', clockRate: 8000, depay: ['rtppcmudepay', '!', 'mulawdec', '!', ...toOpus()] },
  'audio/pcma': { media: 'audio', encodingName: 'PCMA', clockRate: 8000, depay: ['rtppcmadepay', '!', 'alawdec', '!', ...toOpus()] },
  // After loss the depayloaders drop everything up to the next key frame rather than pass on frames
  // that reference what was lost: the file never holds a corrupt frame.
  'video/vp8': { media: 'video', encodingName: 'VP8', clockRate: 90_000, depay: ['rtpvp8depay', 'wait-for-keyframe=true'] },
  'video/vp9': { media: 'video', encodingName: 'VP9', clockRate: 90_000, depay: ['rtpvp9depay', 'wait-for-keyframe=true', '!', 'vp9parse'] },
  'video/h264': { media: 'video', encodingName: 'H264', clockRate: 90_000, depay: ['rtph264depay', 'wait-for-keyframe=true', '!', 'h264parse'] },
};

function toOpus(): string[] {
  return ['audioconvert', '!', 'audioresample', '!', 'audio/x-raw,rate=48000', '!', 'opusenc', 'bitrate=64000'];
}

/** Whether the zero-transcode path takes a track of this codec. */
export const remuxes = (mimeType: string): boolean => mimeType.toLowerCase() in CODECS;

/**
 * How long rtpbin holds packets. Video comes already in order, whole frames only (source/rtp/frame-gate.ts),
 * but up to a quarter of a second late when the gate waited for a retransmission: well inside this, or
 * rtpbin takes them for late and their timestamps went back (measured under 2% loss). Its
 * `synced` mode times them by their RTP timestamps alone, as the SFU set them: a mute's gap keeps its
 * length, and packets that queued while gst started keep their spacing ('none' restarted the time line
 * after a mute's jump; the default 'slave' squeezed a burst; both wrote timestamps that went back).
 */
const JITTER_LATENCY_MS = 1000;
/** Key-frame bursts of a high-rate track overflow the kernel's default 208 KiB (webrtc-passthrough §2.5). */
const UDP_BUFFER_BYTES = 4 * 1024 * 1024;

/** The muxer of each container: MP4 fragmented, as everywhere else, so a killed recording stays readable. */
const MUX: Record<FileBranch['fileType'], string[]> = {
  mp4: ['mp4mux', 'fragment-duration=1000'],
  webm: ['webmmux'],
  ogg: ['oggmux'],
  mp3: [],
};

export function rtpArgs(c: RtpCapture, file: FileBranch): string[] {
  const codec = CODECS[c.mimeType.toLowerCase()];
  if (!codec) throw errors.notYetSupported(c.mimeType);
  if (!MUX[file.fileType].length) throw errors.notYetSupported(`${c.mimeType} in ${file.fileType}`);
  const caps = `application/x-rtp,media=${codec.media},clock-rate=${codec.clockRate},encoding-name=${codec.encodingName},payload=${RTP_PAYLOAD_TYPE}`;
  return [
    // do-lost: a packet given up on reaches the depayloader as a loss event, which is what makes it
    // wait for the next key frame instead of passing on frames that reference the lost one.
    'rtpbin', 'name=rb', `latency=${JITTER_LATENCY_MS}`, 'buffer-mode=synced', 'do-lost=true',
    'udpsrc', 'address=127.0.0.1', `port=${c.rtpPort}`, `buffer-size=${UDP_BUFFER_BYTES}`, `caps=${caps}`, '!', 'rb.recv_rtp_sink_0',
    'udpsrc', 'address=127.0.0.1', `port=${c.rtcpPort}`, 'caps=application/x-rtcp', '!', 'rb.recv_rtcp_sink_0',
    'rb.', '!', ...codec.depay, '!', 'queue', '!',
    // async=false: the file takes no part in preroll, so the pipeline is PLAYING (its ports bound) before
    // the first packet, which the forwarder holds until then.
    ...MUX[file.fileType], `name=${file.name}`, '!', 'filesink', 'async=false', 'buffer-mode=unbuffered', `location=${file.location}`,
  ];
}
