// What a request costs in CPU cores, by kind (Go egress defaults, overridable by cpu_cost).
import type { CpuCostConfig } from '@egress/shared/config/types.ts';
import type { StartEgressRequest } from '@egress/shared/proto/rpc.ts';

export function cpuCost(req: StartEgressRequest, cost: CpuCostConfig): number {
  if (req.estimatedCpu > 0) return req.estimatedCpu;
  const r = req.request;
  switch (r.case) {
    case 'roomComposite':
      return compositeCost(r.value, cost);
    case 'web':
      return r.value.audioOnly ? cost.audioWebCpuCost : cost.webCpuCost;
    case 'participant':
      return cost.participantCpuCost;
    case 'trackComposite':
      return cost.trackCompositeCpuCost;
    case 'track':
      return cost.trackCpuCost;
    case 'egress': {
      const s = r.value.source;
      if (s.case === 'template') return compositeCost(s.value, cost);
      if (s.case === 'web') return s.value.audioOnly ? cost.audioWebCpuCost : cost.webCpuCost;
      if (s.case === 'media') return r.value.encoding.case === 'preset' && r.value.encoding.value === 8 ? cost.trackCpuCost : cost.participantCpuCost;
      return 0;
    }
    default:
      return 0;
  }
}

/** A room composite renders in Chrome unless it is audio-only with no layout or page of its own. */
function compositeCost(c: { audioOnly: boolean; layout: string; customBaseUrl: string }, cost: CpuCostConfig): number {
  if (!c.audioOnly) return cost.roomCompositeCpuCost;
  const chrome = c.layout !== '' || c.customBaseUrl !== '';
  return chrome ? cost.audioRoomCompositeCpuCost : cost.sdkAudioRoomCompositeCpuCost;
}
