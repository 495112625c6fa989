// Pure: what the room connection ending means for the recording (egress-behaviour §10.3).
import { DisconnectReason } from '@livekit/rtc-node';
import { errors, type EgressError } from '@egress/shared/errors.ts';

/**
 * The room closing, the recorder being removed or our own disconnect end the recording normally
 * (COMPLETE). Anything else (signalling lost, reconnection given up, the server shutting down, a
 * second recorder with our identity) ended it early: the outputs are still finalized and uploaded,
 * and the egress ends FAILED so nobody mistakes a truncated recording for a whole one. (The Go
 * egress exits silently on a duplicate identity; saying so is more useful.)
 */
export function disconnectEnding(reason: DisconnectReason | undefined): { reason: string; error?: EgressError } {
  switch (reason) {
    case DisconnectReason.CLIENT_INITIATED:
    case DisconnectReason.ROOM_DELETED:
    case DisconnectReason.ROOM_CLOSED:
    case DisconnectReason.PARTICIPANT_REMOVED:
      return { reason: 'Source closed' };
    default:
      return { reason: 'Failure', error: errors.connectionFailed() };
  }
}
