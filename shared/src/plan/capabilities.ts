// What this node's handler builds today. The supervisor stays silent (no bid) for a valid plan it
// cannot serve, so in a mixed fleet another node takes it. Later work flips entries to true.
import type { OutputType, PipelineConfig, SdkSubscription } from './pipeline-config.ts';

export const SERVED = {
  sdk: { track: true, track_composite: true, participant: true, room_audio: true, media: true } satisfies Record<SdkSubscription['kind'], boolean>,
  web: true,
  outputs: { file: true, websocket: true, stream: true, segments: true, images: true } satisfies Record<OutputType, boolean>,
};

/** Why this node cannot run `plan`, or undefined when it can. */
export function unservedReason(plan: PipelineConfig, served: typeof SERVED = SERVED): string | undefined {
  if (plan.source.type === 'web' && !served.web) return 'web sources are not served by this node';
  if (plan.source.type === 'sdk' && !served.sdk[plan.source.subscription.kind]) return `${plan.source.subscription.kind} sources are not served by this node`;
  const missing = plan.outputs.find((o) => !served.outputs[o.type]);
  return missing ? `${missing.type} outputs are not served by this node` : undefined;
}
