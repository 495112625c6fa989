// Two werift 0.25.2 defects that lose video, patched in place (webrtc-passthrough §2.5). Both are
// process-wide, which is fine: a handler process serves one egress.
import dgram from 'node:dgram';
import { syncBuiltinESMExports } from 'node:module';
import type { RTCRtpReceiver, RtpPacket } from 'werift';

/** Keyframe bursts at ~10 Mbps overflow the kernel's default 208 KiB (the kernel caps it at net.core.rmem_max). */
const RECV_BUFFER_BYTES = 4 << 20;
/** werift keeps this many lost sequence numbers (its LOST_SIZE). */
const MAX_LOST = 150;

let socketsPatched = false;

/** werift has no socket option: every UDP socket it (or anything else here) creates gets the larger buffer. */
export function enlargeUdpReceiveBuffers(): void {
  if (socketsPatched) return;
  socketsPatched = true;
  const original = dgram.createSocket;
  dgram.createSocket = function (this: unknown, type: string | dgram.SocketOptions, listener?: (msg: Buffer, rinfo: dgram.RemoteInfo) => void) {
    const options: dgram.SocketOptions = typeof type === 'string' ? { type: type as dgram.SocketType } : { ...type };
    options.recvBufferSize ??= RECV_BUFFER_BYTES;
    return original.call(this, options, listener);
  } as typeof dgram.createSocket;
  // werift's ESM bundle imports `createSocket` by name: refresh the named export it is bound to.
  syncBuiltinESMExports();
}

interface NackState {
  newEstSeqNum: number;
  mediaSourceSsrc?: number;
  _lost: Record<number, number>;
  getLost(seq: number): number | undefined;
  setLost(seq: number, count: number): void;
  removeLost(seq: number): void;
  pruneLost(): void;
}

const fixedNack = new WeakSet<object>();
/** Sequence numbers found missing so far (each then asked for again with a NACK), in this process. */
let missed = 0;
export const missedPackets = (): number => missed;

/**
 * werift's NackHandler compares sequence numbers as plain integers, so from the first 16-bit wrap on
 * it detects no loss for ~65 k packets, and it keeps one estimate per receiver even when LiveKit
 * moves a reused transceiver to a new SSRC. This replaces addPacket with a wrap-safe one, per
 * stream, and sorts the lost list numerically (it sorted as strings, splitting NACK ranges).
 */
export function fixNackWrap(receiver: RTCRtpReceiver): void {
  const proto = Object.getPrototypeOf((receiver as unknown as { nack: object }).nack) as object;
  if (fixedNack.has(proto)) return;
  fixedNack.add(proto);
  Object.defineProperty(proto, 'lostSeqNumbers', {
    configurable: true,
    get(this: NackState) {
      return Object.keys(this._lost).map(Number).sort((a, b) => a - b);
    },
  });
  Object.defineProperty(proto, 'addPacket', {
    configurable: true,
    writable: true,
    value: function addPacket(this: NackState & { started?: boolean }, packet: RtpPacket) {
      const { sequenceNumber: seq, ssrc } = packet.header;
      if (!this.started || this.mediaSourceSsrc !== ssrc) {
        this.started = true;
        this.mediaSourceSsrc = ssrc;
        this._lost = {};
        this.newEstSeqNum = seq;
        return;
      }
      if (this.getLost(seq)) return this.removeLost(seq);
      const ahead = ((seq - this.newEstSeqNum) << 16) >> 16;
      if (ahead <= 0) return; // late or duplicate
      for (let i = Math.max(1, ahead - MAX_LOST); i < ahead; i++) this.setLost((this.newEstSeqNum + i) & 0xffff, 1);
      if (ahead > 1) missed += ahead - 1;
      this.newEstSeqNum = seq;
      if (ahead > 1) this.pruneLost();
    },
  });
}
