// EgressInfo state changes, mirroring protocol's livekit_egress.go helpers so the texts and codes match the Go egress.
import { EgressInfo, EgressStatus } from '@livekit/protocol';
import { EgressError } from './errors.ts';
import { nowNs } from './psrpc/time.ts';

export { nowNs };

export const encodeInfo = (info: EgressInfo): string => Buffer.from(info.toBinary()).toString('base64');
export const decodeInfo = (s: string): EgressInfo => EgressInfo.fromBinary(Buffer.from(s, 'base64'));

export function updateStatus(info: EgressInfo, status: EgressStatus): void {
  info.status = status;
  info.updatedAt = nowNs();
}

export function setEndReason(info: EgressInfo, reason: string): void {
  info.details = `End reason: ${reason}`;
}

function end(info: EgressInfo, status: EgressStatus): void {
  updateStatus(info, status);
  info.endedAt = info.updatedAt;
}

export function setComplete(info: EgressInfo): void {
  end(info, EgressStatus.EGRESS_COMPLETE);
}

export function setFailed(info: EgressInfo, err: unknown): void {
  end(info, EgressStatus.EGRESS_FAILED);
  info.error = err instanceof Error ? err.message : String(err);
  if (!info.details) setEndReason(info, 'Failure');
  if (err instanceof EgressError && err.code !== 'unknown') info.errorCode = err.httpStatus;
}

export function setAborted(info: EgressInfo, message: string): void {
  end(info, EgressStatus.EGRESS_ABORTED);
  info.error = message;
  info.errorCode = 412;
}

export function setLimitReached(info: EgressInfo): void {
  end(info, EgressStatus.EGRESS_LIMIT_REACHED);
  info.error = 'Session limit reached';
  info.errorCode = 413;
}

export const isTerminal = (status: EgressStatus): boolean => status >= EgressStatus.EGRESS_COMPLETE;
