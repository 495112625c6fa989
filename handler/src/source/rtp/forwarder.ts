// Hands one track's RTP and RTCP to gst's two udpsrc ports on 127.0.0.1 (pipeline/rtp.ts). Plain UDP
// on loopback is the tested way into rtpbin: fed from a pipe, its jitter buffer never prerolled
// (webrtc-passthrough §6.1). Until gst listens, packets are held, so the key frame the SFU starts a
// subscription with is not lost to a port nobody has bound yet.
import dgram from 'node:dgram';
import { RTP_PAYLOAD_TYPE } from '../../pipeline/rtp.ts';

/** Held before gst listens: about 4 s of a 2.5 Mb/s track; the oldest go first beyond it. */
const MAX_HELD = 1000;

/** Ports nobody listens on now, for gst to bind. Another process could take one meanwhile: gst then fails to start, and so does the job. */
export async function freeUdpPorts(n: number): Promise<number[]> {
  const sockets = Array.from({ length: n }, () => dgram.createSocket('udp4'));
  try {
    return await Promise.all(sockets.map((s) => new Promise<number>((resolve, reject) => {
      s.once('error', reject);
      s.bind(0, '127.0.0.1', () => resolve(s.address().port));
    })));
  } finally {
    for (const s of sockets) s.close();
  }
}

/** The payload type gst's caps name, in place of the negotiated one; the marker bit stays. */
export function withPayloadType(packet: Buffer, pt = RTP_PAYLOAD_TYPE): Buffer {
  packet[1] = (packet[1]! & 0x80) | pt;
  return packet;
}

export class RtpForwarder {
  private readonly socket = dgram.createSocket('udp4');
  private held: { packet: Buffer; port: number }[] | undefined = [];
  private closed = false;

  constructor(private readonly ports: { rtp: number; rtcp: number }) {
    // A port gst has not bound yet answers with ICMP, which an unconnected socket reports as an
    // error event; nothing is lost by ignoring it (packets are held until gst listens).
    this.socket.on('error', () => undefined);
  }

  rtp(packet: Buffer): void {
    this.send(withPayloadType(packet), this.ports.rtp);
  }

  rtcp(compound: Buffer): void {
    this.send(compound, this.ports.rtcp);
  }

  /** gst listens: what was held goes now, in order, then everything as it comes. */
  open(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const h of held) this.send(h.packet, h.port);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
  }

  private send(packet: Buffer, port: number): void {
    if (this.closed) return;
    if (this.held) {
      this.held.push({ packet, port });
      if (this.held.length > MAX_HELD) this.held.shift();
      return;
    }
    this.socket.send(packet, port, '127.0.0.1');
  }
}
