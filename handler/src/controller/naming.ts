// The second naming pass (egress-behaviour §4.1): once the initial tracks are known, the SDK
// placeholders of an output's paths are filled in (and checked again), and a track egress learns
// its container from its codec.
import type { SdkResolveContext } from '@egress/shared/plan/outputs/sdk-placeholders.ts';
import type { PipelineConfig } from '@egress/shared/plan/pipeline-config.ts';
import { containerFor } from '../pipeline/file.ts';
import type { TrackInfo } from '../source/source.ts';

/**
 * `{publisher_identity}` is the participant's (participant egress), else the video track's
 * publisher, else the audio's; the track placeholders are a track egress's own track.
 */
export function sdkNaming(plan: PipelineConfig, tracks: TrackInfo[], now: Date): SdkResolveContext & { mimeType?: string } {
  const video = tracks.find((t) => t.kind === 'video');
  const main = video ?? tracks[0];
  const sub = plan.source.type === 'sdk' ? plan.source.subscription : undefined;
  const identity = sub?.kind === 'participant' ? sub.identity : main?.publisherIdentity;
  const mimeType = plan.passthrough ? main?.mimeType : undefined;
  return {
    identifier: plan.identifier,
    now,
    retryCount: plan.retryCount,
    ...(identity ? { publisherIdentity: identity } : {}),
    ...(plan.passthrough && main ? { trackId: main.trackId, trackType: main.kind, trackSource: main.source } : {}),
    ...(mimeType ? { mimeType, fileType: containerFor(mimeType) } : {}),
  };
}
