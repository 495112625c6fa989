// psrpc's envelope messages (package `internal`, livekit/psrpc internal/internal.proto).
// The Redis payload is an `internal.Msg`, byte-compatible with google.protobuf.Any.
import { Any, proto3, ScalarType } from '@bufbuild/protobuf';

export const Msg = proto3.makeMessageType('internal.Msg', () => [
  { no: 1, name: 'type_url', kind: 'scalar', T: ScalarType.STRING },
  { no: 2, name: 'value', kind: 'scalar', T: ScalarType.BYTES },
  { no: 3, name: 'channel', kind: 'scalar', T: ScalarType.STRING },
]);

export const Request = proto3.makeMessageType('internal.Request', () => [
  { no: 1, name: 'request_id', kind: 'scalar', T: ScalarType.STRING },
  { no: 2, name: 'client_id', kind: 'scalar', T: ScalarType.STRING },
  { no: 3, name: 'sent_at', kind: 'scalar', T: ScalarType.INT64 },
  { no: 4, name: 'expiry', kind: 'scalar', T: ScalarType.INT64 },
  { no: 5, name: 'multi', kind: 'scalar', T: ScalarType.BOOL },
  { no: 7, name: 'metadata', kind: 'map', K: ScalarType.STRING, V: { kind: 'scalar', T: ScalarType.STRING } },
  { no: 8, name: 'raw_request', kind: 'scalar', T: ScalarType.BYTES },
]);

export const Response = proto3.makeMessageType('internal.Response', () => [
  { no: 1, name: 'request_id', kind: 'scalar', T: ScalarType.STRING },
  { no: 2, name: 'server_id', kind: 'scalar', T: ScalarType.STRING },
  { no: 3, name: 'sent_at', kind: 'scalar', T: ScalarType.INT64 },
  { no: 5, name: 'error', kind: 'scalar', T: ScalarType.STRING },
  { no: 6, name: 'code', kind: 'scalar', T: ScalarType.STRING },
  { no: 7, name: 'raw_response', kind: 'scalar', T: ScalarType.BYTES },
  { no: 8, name: 'error_details', kind: 'message', T: Any, repeated: true },
]);

export const ClaimRequest = proto3.makeMessageType('internal.ClaimRequest', () => [
  { no: 1, name: 'request_id', kind: 'scalar', T: ScalarType.STRING },
  { no: 2, name: 'server_id', kind: 'scalar', T: ScalarType.STRING },
  { no: 3, name: 'affinity', kind: 'scalar', T: ScalarType.FLOAT },
]);

export const ClaimResponse = proto3.makeMessageType('internal.ClaimResponse', () => [
  { no: 1, name: 'request_id', kind: 'scalar', T: ScalarType.STRING },
  { no: 2, name: 'server_id', kind: 'scalar', T: ScalarType.STRING },
]);

export type Request = InstanceType<typeof Request>;
export type Response = InstanceType<typeof Response>;
export type ClaimRequest = InstanceType<typeof ClaimRequest>;
export type ClaimResponse = InstanceType<typeof ClaimResponse>;
