// Pure: the gst-launch graph of one stream URL. It reads the job's encoded audio and video (GDP on
// fds 3 and 4, audio first when present; sink/stream.ts feeds them) and only muxes and sends:
//
//   fd 3 → aacparse ──────────────┐
//   fd 4 → h264parse (avc for FLV) ┴→ flvmux → rtmp2sink      (RTMP, RTMPS)
//                                   → mpegtsmux → srtsink     (SRT)
//
// One process per URL: a server that refuses, drops or stalls ends only its own process, which
// the sink restarts or gives up on, and the recording and the other URLs never notice.
import { EgressError } from '@egress/shared/errors.ts';
import { UNSAFE_URL_CHARS } from '@egress/shared/plan/outputs/stream.ts';
import type { StreamOutputPlan } from '@egress/shared/plan/pipeline-config.ts';

export interface StreamTarget {
  protocol: StreamOutputPlan['protocol'];
  url: string;
  audio: boolean;
  video: boolean;
}

const input = (fd: number) => ['fdsrc', `fd=${fd}`, '!', 'gdpdepay', '!'];

/** rtmp2sink takes the URL alone: the ` live=1` some servers' URLs carry is a librtmp option. */
export const rtmpLocation = (url: string): string => url.replace(/ live=1$/, '');

function muxAndSink(t: StreamTarget): string[] {
  if (t.protocol === 'rtmp') {
    // sync=false: the media comes live from the encoder, paced already; async=false: no preroll wait.
    return ['flvmux', 'name=mux', 'streamable=true', '!', 'rtmp2sink', `location=${rtmpLocation(t.url)}`, 'async-connect=false', 'sync=false', 'async=false'];
  }
  return ['mpegtsmux', 'name=mux', 'alignment=7', '!', 'srtsink', `uri=${srtUri(t.url)}`, 'wait-for-connection=false', 'sync=false', 'async=false'];
}

/**
 * srtsink parses its uri as a URI, so a `#` starts a fragment it ignores: the streamid of
 * `?streamid=#!::r=live,m=publish` (SRT's access-control syntax) would arrive empty. Escaped, the
 * query value comes through whole (srtsink unescapes it).
 */
export const srtUri = (url: string): string => url.replace(/#/g, '%23');

export function streamPublishArgs(t: StreamTarget): string[] {
  // Planning refuses these; a URL that slipped through must still never become pipeline syntax.
  if (UNSAFE_URL_CHARS.test(t.protocol === 'rtmp' ? rtmpLocation(t.url) : t.url)) throw new EgressError('invalid_argument', 'stream url has characters gst-launch cannot take');
  const args = [...muxAndSink(t)];
  let fd = 3;
  if (t.audio) args.push(...input(fd++), 'aacparse', '!', 'queue', '!', 'mux.');
  if (t.video) {
    const format = t.protocol === 'rtmp' ? 'avc' : 'byte-stream';
    args.push(...input(fd), 'h264parse', '!', `video/x-h264,stream-format=${format},alignment=au`, '!', 'queue', '!', 'mux.');
  }
  return args;
}
