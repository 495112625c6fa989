// twitch://<key> (egress-behaviour §11.6): the first ingest server Twitch lists, with the key in its
// URL template; looked up once per job.
import { errors } from '@egress/shared/errors.ts';

export const TWITCH_INGEST_URL = 'https://ingest.twitch.tv/ingests';
const LOOKUP_TIMEOUT_MS = 10_000;

interface Ingests {
  ingests?: { url_template?: string; url_template_secure?: string }[];
}

export async function resolveTwitch(key: string, cache: Map<string, string>, ingestUrl = TWITCH_INGEST_URL): Promise<string> {
  let template = cache.get(ingestUrl);
  if (!template) {
    let body: Ingests;
    try {
      const res = await fetch(ingestUrl, { signal: AbortSignal.timeout(LOOKUP_TIMEOUT_MS) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      body = (await res.json()) as Ingests;
    } catch (err) {
      throw errors.twitchIngest((err as Error).message);
    }
    const first = body.ingests?.[0];
    template = first?.url_template_secure || first?.url_template;
    if (!template || !template.includes('{stream_key}')) throw errors.twitchIngest('no ingest server listed');
    cache.set(ingestUrl, template);
  }
  return template.replace('{stream_key}', key);
}
