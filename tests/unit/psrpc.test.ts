import t from 'tap';
import { StopEgressRequest, EgressInfo } from '@livekit/protocol';
import { channels, sanitize } from '../../shared/src/psrpc/channels.ts';
import { decodeFrame, encodeFrame } from '../../shared/src/psrpc/frame.ts';
import { ClaimRequest, Request } from '../../shared/src/proto/internal.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

t.test('channel names follow psrpc legacy form', async (t) => {
  const cases: [string, string][] = [
    [channels.request('EgressInternal', 'StartEgress', ''), 'EgressInternal|StartEgress|REQ'],
    [channels.claimResponse('EgressInternal', 'StartEgress', ''), 'EgressInternal|StartEgress|RCLAIM'],
    [channels.request('EgressHandler', 'StopEgress', 'EG_abcdefghijkl'), 'EgressHandler|StopEgress|EG_abcdefghijkl|REQ'],
    [channels.response('IOInfo', 'CLI_abcdefghijkl'), 'IOInfo|CLI_abcdefghijkl|RES'],
    [channels.claimRequest('IOInfo', 'CLI_abcdefghijkl'), 'IOInfo|CLI_abcdefghijkl|CLAIM'],
    [channels.request('EgressInternal', 'StartEgress', 'my-cluster'), 'EgressInternal|StartEgress|myu+002dcluster|REQ'],
  ];
  for (const [got, want] of cases) t.equal(got, want);
});

t.test('sanitize escapes everything outside [0-9A-Za-z_]', async (t) => {
  t.equal(sanitize('a_Z9'), 'a_Z9');
  t.equal(sanitize('a.b'), 'au+002eb');
  t.equal(sanitize('é'), 'u+00e9');
  t.equal(sanitize('😀'), 'U+0001f600');
  t.equal(sanitize('|'), 'u+007c');
});

t.test('ClaimRequest frame matches the Go bytes (psrpc-wire §2.4)', async (t) => {
  const inner = new ClaimRequest({ requestId: 'REQ_abcdefghijkl', serverId: 'SRV_abcdefghijkl', affinity: 1 });
  t.equal(hex(inner.toBinary()), '0a105245515f6162636465666768696a6b6c12105352565f6162636465666768696a6b6c1d0000803f');
  const frame = encodeFrame('ClaimRequest', inner);
  t.equal(frame.length, 86);
  t.equal(hex(frame.subarray(0, 2)), '0a29');
  t.equal(Buffer.from(frame.subarray(2, 43)).toString(), 'type.googleapis.com/internal.ClaimRequest');
  t.equal(hex(new ClaimRequest({ requestId: 'R', serverId: 'S', affinity: 0.5 }).toBinary()).slice(-10), '1d0000003f');
});

t.test('Request frame round-trips with int64 ns times and the raw payload', async (t) => {
  const raw = new StopEgressRequest({ egressId: 'EG_abcdefghijkl' }).toBinary();
  const sentAt = 1750000000000000000n;
  const req = new Request({ requestId: 'REQ_abcdefghijkl', clientId: 'CLI_abcdefghijkl', sentAt, expiry: sentAt + 3_000_000_000n, rawRequest: raw });
  const bytes = req.toBinary();
  t.match(hex(bytes), /^0a10.*1210.*18/);
  t.equal(hex(bytes).slice(-38), '42110a0f45475f6162636465666768696a6b6c');
  const back = decodeFrame('Request', encodeFrame('Request', req));
  t.equal(back.expiry, sentAt + 3_000_000_000n);
  t.equal(StopEgressRequest.fromBinary(back.rawRequest).egressId, 'EG_abcdefghijkl');
});

t.test('decodeFrame refuses a frame of the wrong kind and garbage', async (t) => {
  const claim = encodeFrame('ClaimRequest', new ClaimRequest({ requestId: 'R', serverId: 'S', affinity: 1 }));
  t.throws(() => decodeFrame('Response', claim), /unexpected frame type/);
  t.throws(() => decodeFrame('Request', Buffer.from('garbage \xff\xfe bytes')));
  const info = new EgressInfo({ egressId: 'EG_x' });
  t.throws(() => decodeFrame('Request', info.toBinary()));
});
