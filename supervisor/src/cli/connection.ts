// Where livekit-server is and how to sign requests to it: flags first, then the environment
// variables the LiveKit tools share.
import { UsageError } from './errors.ts';

export interface ConnectionFlags {
  url?: string;
  apiKey?: string;
  apiSecret?: string;
}

export interface Connection {
  /** http(s):// base URL of livekit-server's API */
  url: string;
  apiKey: string;
  apiSecret: string;
}

/** ws://host → http://host, wss://host → https://host; anything else unchanged. */
export const toHttpUrl = (url: string): string => url.replace(/^ws(s?):\/\//i, 'http$1://');

export function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv): Connection {
  const raw = flags.url || env.LIVEKIT_URL || env.LIVEKIT_WS_URL;
  if (!raw) throw new UsageError('no livekit-server URL: give --url or set LIVEKIT_URL');
  const url = toHttpUrl(raw.trim()).replace(/\/+$/, '');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`invalid livekit-server URL "${raw}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new UsageError(`invalid livekit-server URL "${raw}": expected ws://, wss://, http:// or https://`);
  }
  const apiKey = flags.apiKey || env.LIVEKIT_API_KEY;
  if (!apiKey) throw new UsageError('no API key: give --api-key or set LIVEKIT_API_KEY');
  const apiSecret = flags.apiSecret || env.LIVEKIT_API_SECRET;
  if (!apiSecret) throw new UsageError('no API secret: give --api-secret or set LIVEKIT_API_SECRET');
  return { url, apiKey, apiSecret };
}
