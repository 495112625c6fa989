// What the node knows of an rpc.StartEgressRequest before planning it: its kind and the STARTING
// EgressInfo. The validated plan is planPipeline's (plan.ts).
import { EgressInfo, EgressSourceType, EgressStatus, StreamInfo, StreamInfo_Status } from '@livekit/protocol';
import { redactStreamUrl } from './outputs/stream.ts';
import type { PipelineConfig } from './pipeline-config.ts';
import type { StartEgressRequest } from '../proto/rpc.ts';
import { redactRequest } from './redact.ts';

export type RequestKind = 'room_composite' | 'web' | 'participant' | 'track_composite' | 'track' | 'template' | 'media' | 'replay';

export function requestKind(req: StartEgressRequest): RequestKind | undefined {
  switch (req.request.case) {
    case 'roomComposite': return 'room_composite';
    case 'web': return 'web';
    case 'participant': return 'participant';
    case 'trackComposite': return 'track_composite';
    case 'track': return 'track';
    case 'replay': return 'replay';
    case 'egress': {
      const source = req.request.value.source.case;
      return source === 'template' ? 'template' : source === 'web' ? 'web' : source === 'media' ? 'media' : undefined;
    }
    default: return undefined;
  }
}

/**
 * The EgressInfo answered to StartEgress and stored by livekit-server: complete, with credentials
 * redacted, and each stream URL listed ACTIVE (SRT ones started now, as the reference does).
 */
export function startingInfo(req: StartEgressRequest, nowNs: bigint, plan?: PipelineConfig): EgressInfo {
  const kind = requestKind(req);
  const roomName =
    req.request.case === 'web' ? '' : req.roomName || (req.request.value && 'roomName' in req.request.value ? req.request.value.roomName : '');
  return new EgressInfo({
    egressId: req.egressId,
    roomId: req.roomId,
    roomName,
    status: EgressStatus.EGRESS_STARTING,
    sourceType: kind === 'web' || kind === 'room_composite' || kind === 'template' ? EgressSourceType.WEB : EgressSourceType.SDK,
    startedAt: nowNs,
    updatedAt: nowNs,
    retryCount: req.retryCount,
    request: redactRequest(req).request as EgressInfo['request'],
    streamResults: (plan?.outputs ?? []).flatMap((o) =>
      o.type === 'stream' ? o.urls.map((url) => new StreamInfo({ url: redactStreamUrl(url), status: StreamInfo_Status.ACTIVE, startedAt: o.protocol === 'srt' ? nowNs : 0n })) : [],
    ),
  });
}
