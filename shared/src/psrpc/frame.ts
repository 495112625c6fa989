// The Redis payload: an internal.Msg (byte-identical to google.protobuf.Any) wrapping one internal.* message.
import type { Message } from '@bufbuild/protobuf';
import { ClaimRequest, ClaimResponse, Msg, Request, Response } from '../proto/internal.ts';

const TYPE_PREFIX = 'type.googleapis.com/';

const frameTypes = { Request, Response, ClaimRequest, ClaimResponse } as const;
export type FrameKind = keyof typeof frameTypes;
type FrameOf<K extends FrameKind> = InstanceType<(typeof frameTypes)[K]>;

export function encodeFrame(kind: FrameKind, inner: Message): Uint8Array {
  return new Msg({ typeUrl: `${TYPE_PREFIX}internal.${kind}`, value: inner.toBinary() }).toBinary();
}

/**
 * Decodes a frame, checking it carries the kind expected on its channel. A Go peer panics on a wrong kind,
 * so we must never act on one; malformed input throws and the caller logs and drops it.
 */
export function decodeFrame<K extends FrameKind>(kind: K, payload: Uint8Array): FrameOf<K> {
  const msg = Msg.fromBinary(payload);
  const expected = `internal.${kind}`;
  const name = msg.typeUrl.slice(msg.typeUrl.lastIndexOf('/') + 1);
  if (name !== expected) throw new Error(`unexpected frame type "${msg.typeUrl}", want ${expected}`);
  return frameTypes[kind].fromBinary(msg.value) as FrameOf<K>;
}
