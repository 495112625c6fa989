// Turns an rpc.StartEgressRequest into what the node needs before any process starts: its kind,
// the STARTING EgressInfo, and a validated plan. Pure: no I/O, so every rule is table-tested.
import {
  AliOSSUpload,
  AzureBlobUpload,
  DirectFileOutput,
  GCPUpload,
  S3Upload,
  EgressInfo,
  EgressSourceType,
  EgressStatus,
  type TrackEgressRequest,
} from '@livekit/protocol';
import { EgressError, errors } from '../errors.ts';
import type { StartEgressRequest } from '../proto/rpc.ts';
import type { Config } from '../config/types.ts';
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

/** A track egress: one track, decoded and re-encoded to the container its codec implies. */
export interface TrackPlan {
  kind: 'track';
  roomName: string;
  trackId: string;
  /** The requested filepath, placeholders unresolved until the track (and its codec) is known. */
  filepath: string;
  disableManifest: boolean;
  /** The request's own storage, overriding the config's. */
  upload?: S3Upload | GCPUpload | AzureBlobUpload | AliOSSUpload;
}

export type Plan = TrackPlan;

export function planRequest(req: StartEgressRequest, config?: Pick<Config, 'storage' | 'disallowLocalStorage'>): Plan {
  if (!req.egressId) throw errors.invalidField('egressID');
  const kind = requestKind(req);
  if (!kind) throw errors.invalidField('request');
  if (req.request.case === 'track') {
    const plan = planTrack(req.request.value);
    const cloud = config?.storage && (config.storage.s3 || config.storage.azure || config.storage.gcp || config.storage.alioss);
    if (config?.disallowLocalStorage && !plan.upload && !cloud) throw errors.invalidField('output');
    return plan;
  }
  throw new EgressError('unimplemented', `${kind} egress is not supported by this egress node yet`);
}

function planTrack(track: TrackEgressRequest): TrackPlan {
  if (!track.roomName) throw errors.invalidField('room_name');
  if (!track.trackId) throw errors.invalidField('track_id');
  const output = track.output;
  if (output.case === 'websocketUrl') {
    throw new EgressError('unimplemented', 'websocket output is not supported by this egress node yet');
  }
  if (output.case !== 'file') throw errors.invalidField('output');
  const file: DirectFileOutput = output.value;
  return {
    kind: 'track',
    roomName: track.roomName,
    trackId: track.trackId,
    filepath: file.filepath,
    disableManifest: file.disableManifest,
    ...(file.output.value ? { upload: file.output.value } : {}),
  };
}

/** The EgressInfo answered to StartEgress and stored by livekit-server: complete, with credentials redacted. */
export function startingInfo(req: StartEgressRequest, nowNs: bigint): EgressInfo {
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
  });
}
