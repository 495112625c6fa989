import t from 'tap';
import type { SdkSubscription } from '../../shared/src/plan/pipeline-config.ts';
import { endsWhenTracksGone, requiredParticipants, requiredTracks, roleFor, takesLateTracks, type ParticipantView, type PublicationView } from '../../handler/src/source/sdk/selection.ts';

const mic = (sid = 'TR_a'): PublicationView => ({ sid, kind: 'audio', source: 'microphone' });
const cam = (sid = 'TR_v'): PublicationView => ({ sid, kind: 'video', source: 'camera' });
const screen: PublicationView = { sid: 'TR_s', kind: 'video', source: 'screen_share' };
const screenAudio: PublicationView = { sid: 'TR_sa', kind: 'audio', source: 'screen_share_audio' };
const alice = { identity: 'alice', kind: 'standard' as const };
const agent = { identity: 'bot', kind: 'agent' as const };
const role = (sub: SdkSubscription, pub: PublicationView, p: ParticipantView = alice) => roleFor(sub, pub, p, { audioTracksAdded: 0 });

t.test('track and track composite take the named ids, and check their kinds', async (t) => {
  t.same(role({ kind: 'track', trackId: 'TR_a' }, mic()), { kind: 'audio', channel: 'both' });
  t.equal(role({ kind: 'track', trackId: 'TR_a' }, mic('TR_b')), undefined);
  const tc: SdkSubscription = { kind: 'track_composite', audioTrackId: 'TR_a', videoTrackId: 'TR_v' };
  t.same(role(tc, cam()), { kind: 'video' });
  t.same(role(tc, mic()), { kind: 'audio', channel: 'both' });
  t.throws(() => role({ kind: 'track_composite', audioTrackId: 'TR_v' }, cam()), { message: 'request has missing or invalid field: audio_track_id' });
  t.throws(() => role({ kind: 'track_composite', videoTrackId: 'TR_a' }, mic()), { message: 'request has missing or invalid field: video_track_id' });
  t.same(requiredTracks(tc), ['TR_a', 'TR_v']);
  t.ok(endsWhenTracksGone(tc));
  t.notOk(takesLateTracks(tc));
});

t.test('participant: camera + microphone, or screen share + its audio, of that identity only', async (t) => {
  const p: SdkSubscription = { kind: 'participant', identity: 'alice', screenShare: false };
  t.same(role(p, cam()), { kind: 'video' });
  t.same(role(p, mic()), { kind: 'audio', channel: 'both' });
  t.equal(role(p, screen), undefined);
  t.equal(role(p, cam(), agent), undefined, 'another participant');
  const s: SdkSubscription = { kind: 'participant', identity: 'alice', screenShare: true };
  t.same(role(s, screen), { kind: 'video' });
  t.same(role(s, screenAudio), { kind: 'audio', channel: 'both' });
  t.equal(role(s, cam()), undefined);
  t.same(requiredParticipants(p), ['alice']);
  t.ok(takesLateTracks(p));
  t.notOk(endsWhenTracksGone(p));
});

t.test('room audio: every audio track, channels by mixing mode', async (t) => {
  t.same(role({ kind: 'room_audio', mixing: 'default' }, mic()), { kind: 'audio', channel: 'both' });
  t.equal(role({ kind: 'room_audio', mixing: 'default' }, cam()), undefined, 'no video');
  const agentMix: SdkSubscription = { kind: 'room_audio', mixing: 'dual_channel_agent' };
  t.same(role(agentMix, mic(), agent), { kind: 'audio', channel: 'left' });
  t.same(role(agentMix, mic(), alice), { kind: 'audio', channel: 'right' });
  const alt: SdkSubscription = { kind: 'room_audio', mixing: 'dual_channel_alternate' };
  const state = { audioTracksAdded: 0 };
  t.same(['1', '2', '3'].map((n) => roleFor(alt, mic(n), alice, state)), [
    { kind: 'audio', channel: 'left' },
    { kind: 'audio', channel: 'right' },
    { kind: 'audio', channel: 'left' },
  ]);
});

t.test('media: video by id or participant, audio routes, capture_all ignores routes', async (t) => {
  const byId: SdkSubscription = { kind: 'media', video: { trackId: 'TR_v' } };
  t.same(role(byId, cam()), { kind: 'video' });
  t.equal(role(byId, mic()), undefined, 'no audio config: no audio');
  const byIdentity: SdkSubscription = { kind: 'media', video: { identity: 'alice', preferScreenShare: true } };
  t.same(role(byIdentity, screen), { kind: 'video' });
  t.equal(role(byIdentity, cam()), undefined, 'strict: no camera fallback');
  const routes: SdkSubscription = {
    kind: 'media',
    audio: {
      captureAll: false,
      routes: [
        { match: { trackId: 'TR_x' }, channel: 'left' },
        { match: { identity: 'alice' }, channel: 'right' },
        { match: { participantKind: 'agent' }, channel: 'left' },
      ],
    },
  };
  t.same(role(routes, mic('TR_x'), alice), { kind: 'audio', channel: 'left' }, 'first matching route wins');
  t.same(role(routes, mic(), alice), { kind: 'audio', channel: 'right' });
  t.same(role(routes, mic(), agent), { kind: 'audio', channel: 'left' });
  t.equal(role(routes, mic(), { identity: 'carol', kind: 'standard' }), undefined, 'unmatched audio is not taken');
  t.same(role({ kind: 'media', audio: { captureAll: true, routes: [{ match: { identity: 'alice' }, channel: 'left' }] } }, mic()), { kind: 'audio', channel: 'both' });
  t.same(requiredTracks(routes), ['TR_x']);
  t.same(requiredParticipants({ ...routes, video: { identity: 'alice', preferScreenShare: false } } as SdkSubscription), ['alice']);
});
