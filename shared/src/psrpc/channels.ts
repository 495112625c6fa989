// psrpc's "legacy" channel names, the form its Redis bus uses (livekit/psrpc pkg/info/channels.go).

/** `[0-9A-Za-z_]` stays; any other rune becomes `u+XXXX` (BMP) or `U+XXXXXXXX`. */
export function sanitize(part: string): string {
  let out = '';
  for (const ch of part) {
    const cp = ch.codePointAt(0)!;
    if (/[0-9A-Za-z_]/.test(ch)) out += ch;
    else if (cp <= 0xffff) out += 'u+' + cp.toString(16).padStart(4, '0');
    else out += 'U+' + cp.toString(16).padStart(8, '0');
  }
  return out;
}

/** Empty parts are dropped along with their delimiter, so topic "" equals no topic. */
const join = (...parts: string[]) => parts.filter((p) => p !== '').map(sanitize).join('|');

export const channels = {
  request: (service: string, method: string, topic: string) => join(service, method, topic, 'REQ'),
  claimResponse: (service: string, method: string, topic: string) => join(service, method, topic, 'RCLAIM'),
  response: (service: string, clientId: string) => join(service, clientId, 'RES'),
  claimRequest: (service: string, clientId: string) => join(service, clientId, 'CLAIM'),
};
