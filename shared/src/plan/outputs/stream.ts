// Stream URLs: protocol inference, validation, expansion and redaction (egress-behaviour §11.6).
import { StreamProtocol } from '@livekit/protocol';
import { errors } from '../../errors.ts';
import type { StreamOutputPlan, WebsocketOutputPlan } from '../pipeline-config.ts';

type StreamKind = 'rtmp' | 'srt' | 'websocket';

const SCHEME_KIND: Record<string, StreamKind> = { rtmp: 'rtmp', rtmps: 'rtmp', mux: 'rtmp', twitch: 'rtmp', srt: 'srt', ws: 'websocket', wss: 'websocket' };
const RTMP_FORMAT = /^(rtmps?:\/\/)(.*\/)(.*\/)(\S*)( live=1)?$/;
const RTMP_FORMAT_TEXT = 'rtmp urls must be of format rtmp(s)://{host}(/{path})/{app}/{stream_key}( live=1)';

const schemeOf = (url: string): string | undefined => /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase();

/** The output kind of a StreamOutput: its protocol, or (DEFAULT) its first URL's scheme. */
export function streamKind(protocol: StreamProtocol, urls: string[]): StreamKind {
  switch (protocol) {
    case StreamProtocol.RTMP: return 'rtmp';
    case StreamProtocol.SRT: return 'srt';
    case StreamProtocol.WEBSOCKET: return 'websocket';
    case StreamProtocol.DEFAULT_PROTOCOL: {
      const first = urls[0] ?? '';
      const kind = SCHEME_KIND[schemeOf(first) ?? ''];
      if (!kind) throw errors.invalidUrl(first, 'invalid protocol');
      return kind;
    }
    default: throw errors.invalidField('stream protocol');
  }
}

/**
 * Characters a URL never needs and gst-launch's pipeline syntax gives meaning to: the URL becomes a
 * property value there, so a quote with a space could end it and start another element.
 */
export const UNSAFE_URL_CHARS = /["\\\s\p{Cc}]/u;

/** One URL checked against the output's kind; mux:// expanded (twitch:// is resolved at start). */
export function validateStreamUrl(url: string, kind: StreamKind): string {
  // ` live=1` is a librtmp option some RTMP URLs carry; nothing else may hold a space.
  if (UNSAFE_URL_CHARS.test(kind === 'rtmp' ? url.replace(/ live=1$/, '') : url)) throw errors.invalidUrl(url, 'quotes, backslashes, spaces and control characters are not allowed');
  const scheme = schemeOf(url);
  if (!scheme || SCHEME_KIND[scheme] !== kind) throw errors.invalidUrl(url, 'invalid scheme');
  if (scheme === 'mux') return `rtmps://global-live.mux.com:443/app/${url.slice('mux://'.length)}`;
  if (scheme === 'twitch') return url;
  if (kind === 'rtmp' && !RTMP_FORMAT.test(url)) throw errors.invalidUrl(url, RTMP_FORMAT_TEXT);
  if (kind !== 'rtmp') {
    try {
      new URL(url);
    } catch (err) {
      throw errors.invalidUrl(url, (err as Error).message);
    }
  }
  return url;
}

export function planStream(protocol: StreamProtocol, urls: string[]): StreamOutputPlan | WebsocketOutputPlan {
  const kind = streamKind(protocol, urls);
  const valid = urls.map((u) => validateStreamUrl(u, kind));
  if (kind === 'websocket') {
    if (valid.length === 0) throw errors.invalidField('stream url');
    return { type: 'websocket', url: valid[0]! };
  }
  return { type: 'stream', protocol: kind, urls: valid };
}

/** StreamInfo.url: the RTMP stream key shortened to `{<p>...<s>}`; SRT and websocket URLs stay as they are. */
export function redactStreamUrl(url: string): string {
  const shorthand = /^(mux|twitch):\/\/(.*)$/i.exec(url);
  if (shorthand) return `${shorthand[1]}://${redactKey(shorthand[2]!)}`;
  const m = RTMP_FORMAT.exec(url);
  if (!m) return url;
  return `${m[1]}${m[2]}${m[3]}${redactKey(m[4]!)}${m[5] ?? ''}`;
}

const redactKey = (key: string): string => {
  const n = key.length >= 9 ? 3 : key.length >= 6 ? 2 : key.length >= 3 ? 1 : 0;
  return `{${n ? `${key.slice(0, n)}...${key.slice(-n)}` : ''}}`;
};
