// Pure: the page a web source loads (egress-behaviour §9.1 step 6). A web egress loads its URL as
// given; a template page gets `layout`, `url` (ws_url) and `token` merged into the base URL's query,
// sorted by key as Go's url.Values.Encode writes it.
import { EgressError } from '@egress/shared/errors.ts';
import type { SourceConfig } from '@egress/shared/plan/pipeline-config.ts';

export type WebSourceConfig = Extract<SourceConfig, { type: 'web' }>;

/** `room`: the recorder's connection, which only template pages take. */
export function pageUrl(source: WebSourceConfig, room: { wsUrl: string; token: string } | undefined): string {
  if (!source.template) return source.url;
  if (!room) throw new EgressError('internal', 'a template page needs the room connection');
  const url = new URL(source.template.baseUrl);
  if (source.template.layout) url.searchParams.set('layout', source.template.layout);
  url.searchParams.set('url', room.wsUrl);
  url.searchParams.set('token', room.token);
  url.searchParams.sort();
  return url.toString();
}
