// What a request costs in CPU cores, by kind (Go egress defaults, overridable by cpu_cost).
import type { CpuCostConfig } from '@egress/shared/config/types.ts';
import type { StartEgressRequest } from '@egress/shared/proto/rpc.ts';

export function cpuCost(req: StartEgressRequest, cost: CpuCostConfig): number {
  if (req.estimatedCpu > 0) return req.estimatedCpu;
  const r = req.request;
  switch (r.case) {
    case 'roomComposite': {
      if (!r.value.audioOnly) return cost.roomCompositeCpuCost;
      const chrome = r.value.layout !== '' || r.value.customBaseUrl !== '';
      return chrome ? cost.audioRoomCompositeCpuCost : cost.sdkAudioRoomCompositeCpuCost;
    }
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
      if (s.case === 'template') {
        if (!s.value.audioOnly) return cost.roomCompositeCpuCost;
        const chrome = s.value.layout !== '' || s.value.customBaseUrl !== '';
        return chrome ? cost.audioRoomCompositeCpuCost : cost.sdkAudioRoomCompositeCpuCost;
      }
      if (s.case === 'web') return s.value.audioOnly ? cost.audioWebCpuCost : cost.webCpuCost;
      if (s.case === 'media') return r.value.encoding.case === 'preset' && r.value.encoding.value === 8 ? cost.trackCpuCost : cost.participantCpuCost;
      return 0;
    }
    default:
      return 0;
  }
}
