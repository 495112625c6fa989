import t from 'tap';
import { DisconnectReason } from '@livekit/rtc-node';
import { disconnectEnding } from '../../handler/src/source/sdk/disconnect.ts';

t.test('the room closing ends a recording normally; a lost connection ends it FAILED (503), files kept', async (t) => {
  for (const r of [DisconnectReason.ROOM_DELETED, DisconnectReason.ROOM_CLOSED, DisconnectReason.PARTICIPANT_REMOVED, DisconnectReason.CLIENT_INITIATED]) {
    t.same(disconnectEnding(r), { reason: 'Source closed' }, DisconnectReason[r]);
  }
  for (const r of [DisconnectReason.SIGNAL_CLOSE, DisconnectReason.JOIN_FAILURE, DisconnectReason.STATE_MISMATCH, DisconnectReason.SERVER_SHUTDOWN, DisconnectReason.DUPLICATE_IDENTITY, DisconnectReason.UNKNOWN_REASON, undefined]) {
    const e = disconnectEnding(r);
    t.equal(e.error?.message, 'recording ended early: connection to room failed', String(r));
    t.equal(e.error?.httpStatus, 503);
  }
});
