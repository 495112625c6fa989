// Pure readings of the SFU's subscriber offers. werift reuses a transceiver when LiveKit reuses a
// mid for another track (new SSRC and msid, no new onTrack), so which SSRC carries which track is
// taken from every offer itself.

/** The media SSRC of every track the offer sends (RTX SSRCs left out), to its track SID. */
export function trackSsrcs(sdp: string, midToTrackId: Record<string, string>): Map<number, string> {
  const out = new Map<number, string>();
  for (const section of sdp.split(/\r?\n(?=m=)/).slice(1)) {
    const lines = section.split(/\r?\n/);
    const [kind, port] = lines[0]!.slice(2).split(' ');
    if ((kind !== 'audio' && kind !== 'video') || port === '0') continue;
    // The server's side of the m-line: only what it sends carries a track.
    if (lines.some((l) => l === 'a=inactive' || l === 'a=recvonly')) continue;
    const mid = attr(lines, 'mid')[0];
    const rtx = new Set(attr(lines, 'ssrc-group').filter((v) => v.startsWith('FID ')).map((v) => Number(v.split(' ')[2])));
    const sectionTrack = (mid !== undefined ? midToTrackId[mid] : undefined) ?? attr(lines, 'msid')[0]?.split(' ')[1];
    const ssrcTrack = new Map<number, string | undefined>();
    for (const v of attr(lines, 'ssrc')) {
      const [ssrc, value = ''] = [Number(v.split(' ')[0]), v.slice(v.indexOf(' ') + 1)];
      if (rtx.has(ssrc)) continue;
      const msid = value.startsWith('msid:') ? value.split(' ')[1] : undefined;
      ssrcTrack.set(ssrc, ssrcTrack.get(ssrc) ?? msid);
    }
    for (const [ssrc, msid] of ssrcTrack) {
      const track = sectionTrack ?? msid;
      if (track) out.set(ssrc, track);
    }
  }
  return out;
}

/** How many H.264 payload types the offer lists (werift answers one per configured `useH264`). */
export function h264PayloadTypes(sdp: string): number {
  return (sdp.match(/^a=rtpmap:\d+ H264\/90000/gim) ?? []).length;
}

/** The host of an ICE candidate line (`candidate:… <host> <port> typ …`), or undefined. */
export function candidateHost(candidate: string): string | undefined {
  return candidate.replace(/^a=/, '').split(' ')[4];
}

/** The SDP without the candidates of other addresses than 127.0.0.1 (a test rig kept on loopback). */
export function onlyLoopbackCandidates(sdp: string): string {
  return sdp
    .split(/\r?\n/)
    .filter((l) => !l.startsWith('a=candidate:') || candidateHost(l) === '127.0.0.1')
    .join('\r\n');
}

function attr(lines: string[], name: string): string[] {
  const prefix = `a=${name}:`;
  return lines.filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length));
}
