// The pure parts of the encoded-RTP subscriber (handler/src/source/rtp): reading LiveKit's subscriber
// offers, the SDES it appends to sender reports, and the werift NACK patch. The subscriber itself is
// proven against livekit-server in tests/integration/rtp-subscriber.test.ts.
import t from 'tap';
import { RTCPeerConnection, RtpHeader, RtpPacket, type RTCRtpReceiver } from 'werift';
import { candidateHost, h264PayloadTypes, onlyLoopbackCandidates, trackSsrcs } from '../../handler/src/source/rtp/sdp.ts';
import { sdesCname } from '../../handler/src/source/rtp/subscriber.ts';
import { fixNackWrap } from '../../handler/src/source/rtp/werift-fixes.ts';

// Trimmed from a livekit-server v1.13.5 subscriber offer: video with an RTX FID group, then audio,
// then an m-line the server stopped sending on.
const OFFER = [
  'v=0',
  'a=group:BUNDLE 0 1 2 3',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
  'a=mid:0',
  'a=candidate:2878742611 1 udp 2130706431 127.0.0.1 45100 typ host ufrag AwAg',
  'm=video 9 UDP/TLS/RTP/SAVPF 96 97 125 126 108 109',
  'a=mid:1',
  'a=rtpmap:96 VP8/90000',
  'a=rtpmap:97 rtx/90000',
  'a=rtpmap:125 H264/90000',
  'a=rtpmap:126 rtx/90000',
  'a=rtpmap:108 H264/90000',
  'a=rtpmap:109 rtx/90000',
  'a=ssrc-group:FID 2707713570 1546044387',
  'a=ssrc:2707713570 cname:PA_bgt|TR_VIDEO',
  'a=ssrc:2707713570 msid:PA_bgt|TR_VIDEO TR_VIDEO',
  'a=ssrc:1546044387 cname:PA_bgt|TR_VIDEO',
  'a=ssrc:1546044387 msid:PA_bgt|TR_VIDEO TR_VIDEO',
  'a=msid:PA_bgt|TR_VIDEO TR_VIDEO',
  'a=sendrecv',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111 63',
  'a=mid:2',
  'a=rtpmap:111 opus/48000/2',
  'a=ssrc:296030295 cname:PA_bgt|TR_AUDIO',
  'a=ssrc:296030295 msid:PA_bgt|TR_AUDIO TR_AUDIO',
  'a=sendrecv',
  'm=video 9 UDP/TLS/RTP/SAVPF 96',
  'a=mid:3',
  'a=ssrc:42 msid:PA_bgt|TR_GONE TR_GONE',
  'a=inactive',
  '',
].join('\r\n');

t.test('trackSsrcs: media SSRCs (no RTX) to track SIDs, sending m-lines only', async (t) => {
  t.same([...trackSsrcs(OFFER, {})], [[2707713570, 'TR_VIDEO'], [296030295, 'TR_AUDIO']]);
  // mid_to_track_id wins over the msid (a reused mid's msid may lag).
  t.same([...trackSsrcs(OFFER, { '2': 'TR_OTHER' })], [[2707713570, 'TR_VIDEO'], [296030295, 'TR_OTHER']]);
  t.same([...trackSsrcs(OFFER.replace(/\r\n/g, '\n'), {})].length, 2, 'LF line ends too');
});

t.test('h264PayloadTypes counts the offered H.264 entries', async (t) => {
  t.equal(h264PayloadTypes(OFFER), 2);
  t.equal(h264PayloadTypes('m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2'), 0);
});

t.test('candidates: host of a line, loopback-only SDP', async (t) => {
  t.equal(candidateHost('candidate:1 1 udp 2130706431 127.0.0.1 45100 typ host'), '127.0.0.1');
  t.equal(candidateHost('a=candidate:1 1 udp 2116026367 192.0.2.2 38989 typ host'), '192.0.2.2');
  const sdp = ['m=audio 9 X 111', 'a=candidate:1 1 udp 1 127.0.0.1 1 typ host', 'a=candidate:2 1 udp 1 192.0.2.2 2 typ host', 'a=mid:0'].join('\r\n');
  t.equal(onlyLoopbackCandidates(sdp), ['m=audio 9 X 111', 'a=candidate:1 1 udp 1 127.0.0.1 1 typ host', 'a=mid:0'].join('\r\n'));
});

t.test('sdesCname: one chunk, CNAME item, END, 32-bit padded', async (t) => {
  for (const name of ['', 'a', 'PA_CEP55eJbPedJ', 'x'.repeat(300)]) {
    const b = sdesCname(0xdeadbeef, name);
    const text = Math.min(name.length, 255);
    t.equal(b.length % 4, 0, `${text} chars: padded`);
    t.equal((b.readUInt16BE(2) + 1) * 4, b.length, 'length field covers the packet');
    t.same([b[0], b[1]], [0x81, 202]);
    t.equal(b.readUInt32BE(4), 0xdeadbeef);
    t.same([b[8], b[9]], [1, text]);
    t.equal(b.subarray(10, 10 + text).toString(), name.slice(0, 255));
    t.ok(b.length >= 10 + text + 1 && b[10 + text] === 0, 'END item');
  }
});

t.test('fixNackWrap: loss across the 16-bit wrap is seen, per SSRC', async (t) => {
  const pc = new RTCPeerConnection();
  t.teardown(() => pc.close());
  const receiver = pc.addTransceiver('video', { direction: 'recvonly' }).receiver;
  fixNackWrap(receiver);
  const nack = (receiver as unknown as { nack: { addPacket(p: RtpPacket): void; lostSeqNumbers: number[]; close(): void } }).nack;
  t.teardown(() => nack.close());
  const packet = (sequenceNumber: number, ssrc = 1) => new RtpPacket(new RtpHeader({ sequenceNumber, ssrc }), Buffer.alloc(1));

  for (const seq of [65532, 65533, 1, 2]) nack.addPacket(packet(seq));
  t.same(nack.lostSeqNumbers, [0, 65534, 65535], 'the numbers on both sides of the wrap');
  nack.addPacket(packet(0));
  nack.addPacket(packet(65535));
  nack.addPacket(packet(65534));
  t.same(nack.lostSeqNumbers, [], 'recovered by retransmission');
  nack.addPacket(packet(5));
  t.same(nack.lostSeqNumbers, [3, 4], 'later loss still seen (werift alone misses it until 65 k packets later)');
  nack.addPacket(packet(4));
  nack.addPacket(packet(3));
  nack.addPacket(packet(2));
  t.same(nack.lostSeqNumbers, [], 'late and duplicate packets are not losses');
  nack.addPacket(packet(40_000, 2));
  nack.addPacket(packet(40_001, 2));
  t.same(nack.lostSeqNumbers, [], 'a new SSRC on a reused receiver starts afresh');
  nack.addPacket(packet(60_000, 2));
  t.equal(nack.lostSeqNumbers.length, 150, 'a long gap keeps only the newest 150');
  t.equal(nack.lostSeqNumbers.at(-1), 59_999);
  fixNackWrap(receiver as RTCRtpReceiver);
  t.pass('patching twice is harmless');
});
