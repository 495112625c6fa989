import { AccessToken } from 'livekit-server-sdk';

/**
 * The recorder's room token: identity = egress id, because livekit-server's UpdateLayout sets the
 * metadata of the participant with that identity. Hidden, subscribe-only, valid 24 h.
 */
export async function recorderToken(apiKey: string, apiSecret: string, roomName: string, egressId: string): Promise<string> {
  const at = new AccessToken(apiKey, apiSecret, { identity: egressId, ttl: '24h' });
  at.kind = 'egress';
  at.addGrant({ roomJoin: true, room: roomName, canSubscribe: true, canPublish: false, canPublishData: false, hidden: true, recorder: true });
  return at.toJwt();
}
