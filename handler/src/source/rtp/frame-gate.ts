// The video jitter buffer in front of gst: packets are put back in sequence order (retransmissions
// that werift's NACKs asked for arrive late), and only whole frames go on. A packet still missing
// after `giveUpMs` is lost for good: the frame it belonged to, and every frame after it up to the
// next key frame, are dropped, and a key frame is asked for (PLI). What reaches gst is then a stream
// with no hole in it, renumbered so that rtpbin sees none either: no frame that references a lost
// one reaches the file. (gst's own loss handling let FU-A fragments on both sides of a hole be
// joined into one corrupt H.264 slice.)

export interface GatedPacket {
  seq: number;
  /** RTP timestamp: the frame it belongs to. */
  ts: number;
  /** Starts a key frame (frames.ts). */
  key: boolean;
  /** Taken out of the stream on purpose (livekit-server's blank frames): its place is no loss. */
  skip?: boolean;
  data: Buffer;
}

/** Anything further ahead than this is the stream starting over (a new SSRC), not a gap. */
const MAX_AHEAD = 3000;
/** While frames are being dropped, a key frame is asked for again this often: a request can be lost, or throttled by the SFU. */
const ASK_AGAIN_MS = 1000;

export class FrameGate {
  private next?: number;
  private readonly pending = new Map<number, { p: GatedPacket; at: number }>();
  /** The frame being collected: its timestamp and packets, in order. */
  private frame?: { ts: number; packets: GatedPacket[] };
  /** After a loss: everything is dropped until a key frame starts. */
  private broken = false;
  /** The next sequence number of what goes out. */
  private outSeq?: number;
  private askedAt = -Infinity;
  private lastNow = 0;

  constructor(
    private readonly o: {
      giveUpMs: number;
      /** A whole frame's packets, renumbered, in order. */
      emit(packets: Buffer[]): void;
      /** A packet is lost for good: a key frame is needed. */
      lost(): void;
    },
  ) {}

  push(p: GatedPacket, now: number): void {
    this.lastNow = now;
    if (this.next === undefined) this.next = p.seq;
    const ahead = ((p.seq - this.next) << 16) >> 16;
    if (ahead < 0) return; // late: already given up on, or a duplicate
    if (ahead > MAX_AHEAD) this.restart(p.seq);
    this.pending.set(p.seq, { p, at: now });
    this.drain(now);
  }

  /** Called now and then: gives up on packets that are still missing after giveUpMs. */
  tick(now: number): void {
    this.drain(now);
    if (this.broken && now - this.askedAt >= ASK_AGAIN_MS) this.ask(now);
  }

  private ask(now: number): void {
    this.askedAt = now;
    this.o.lost();
  }

  private restart(seq: number): void {
    this.pending.clear();
    this.frame = undefined;
    this.next = seq;
    this.broken = true;
    this.ask(this.lastNow);
  }

  private drain(now: number): void {
    for (;;) {
      const head = this.pending.get(this.next!);
      if (head) {
        this.pending.delete(this.next!);
        this.next = (this.next! + 1) & 0xffff;
        this.take(head.p);
        continue;
      }
      // A hole at `next`: wait for it while the oldest packet behind it is young enough.
      let oldest = Infinity;
      for (const { at } of this.pending.values()) oldest = Math.min(oldest, at);
      if (oldest === Infinity || now - oldest < this.o.giveUpMs) return;
      this.next = (this.next! + 1) & 0xffff;
      this.frame = undefined;
      if (!this.broken) this.ask(now);
      this.broken = true;
    }
  }

  /** The next packet in sequence order. */
  private take(p: GatedPacket): void {
    if (p.skip) return;
    if (this.frame && this.frame.ts !== p.ts) this.flush();
    if (this.broken) {
      if (!p.key) return;
      this.broken = false;
    }
    this.frame ??= { ts: p.ts, packets: [] };
    this.frame.packets.push(p);
    // The marker bit ends a frame: no need to wait for the next one's first packet.
    if (p.data[1]! & 0x80) this.flush();
  }

  private flush(): void {
    const f = this.frame;
    this.frame = undefined;
    if (!f) return;
    this.o.emit(
      f.packets.map((p) => {
        this.outSeq ??= p.seq;
        p.data.writeUInt16BE(this.outSeq, 2);
        this.outSeq = (this.outSeq + 1) & 0xffff;
        return p.data;
      }),
    );
  }
}
