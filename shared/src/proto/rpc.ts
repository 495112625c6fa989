// The `rpc.*` messages livekit-server exchanges with egress nodes (livekit/protocol protobufs/rpc/egress.proto
// and io.proto). @livekit/protocol ships only `livekit.*`, so these are defined here, nesting its classes.
import { proto3, ScalarType } from '@bufbuild/protobuf';
import {
  EgressInfo,
  ExportReplayRequest,
  ParticipantEgressRequest,
  RoomCompositeEgressRequest,
  StartEgressRequest as V2StartEgressRequest,
  TrackCompositeEgressRequest,
  TrackEgressRequest,
  WebEgressRequest,
} from '@livekit/protocol';

export const StartEgressRequest = proto3.makeMessageType('rpc.StartEgressRequest', () => [
  { no: 1, name: 'egress_id', kind: 'scalar', T: ScalarType.STRING },
  { no: 16, name: 'egress', kind: 'message', T: V2StartEgressRequest, oneof: 'request' },
  { no: 17, name: 'replay', kind: 'message', T: ExportReplayRequest, oneof: 'request' },
  { no: 5, name: 'room_composite', kind: 'message', T: RoomCompositeEgressRequest, oneof: 'request' },
  { no: 11, name: 'web', kind: 'message', T: WebEgressRequest, oneof: 'request' },
  { no: 13, name: 'participant', kind: 'message', T: ParticipantEgressRequest, oneof: 'request' },
  { no: 6, name: 'track_composite', kind: 'message', T: TrackCompositeEgressRequest, oneof: 'request' },
  { no: 7, name: 'track', kind: 'message', T: TrackEgressRequest, oneof: 'request' },
  { no: 3, name: 'room_id', kind: 'scalar', T: ScalarType.STRING },
  { no: 8, name: 'token', kind: 'scalar', T: ScalarType.STRING },
  { no: 9, name: 'ws_url', kind: 'scalar', T: ScalarType.STRING },
  { no: 10, name: 'cloud_backup_enabled', kind: 'scalar', T: ScalarType.BOOL },
  { no: 14, name: 'estimated_cpu', kind: 'scalar', T: ScalarType.DOUBLE },
  { no: 15, name: 'retry_count', kind: 'scalar', T: ScalarType.INT32 },
  { no: 18, name: 'room_name', kind: 'scalar', T: ScalarType.STRING },
]);
export type StartEgressRequest = InstanceType<typeof StartEgressRequest>;

export const ListActiveEgressRequest = proto3.makeMessageType('rpc.ListActiveEgressRequest', () => []);
export const ListActiveEgressResponse = proto3.makeMessageType('rpc.ListActiveEgressResponse', () => [
  { no: 1, name: 'egress_ids', kind: 'scalar', T: ScalarType.STRING, repeated: true },
]);

export const GetEgressRequest = proto3.makeMessageType('rpc.GetEgressRequest', () => [
  { no: 1, name: 'egress_id', kind: 'scalar', T: ScalarType.STRING },
]);

export const UpdateMetricsRequest = proto3.makeMessageType('rpc.UpdateMetricsRequest', () => [
  { no: 1, name: 'info', kind: 'message', T: EgressInfo },
  { no: 3, name: 'avg_cpu_usage', kind: 'scalar', T: ScalarType.FLOAT },
  { no: 4, name: 'max_cpu_usage', kind: 'scalar', T: ScalarType.FLOAT },
]);

/** google.protobuf.Empty: encodes to zero bytes. */
export const Empty = proto3.makeMessageType('google.protobuf.Empty', () => []);
