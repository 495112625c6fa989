import { randomInt } from 'node:crypto';

const ALPHANUMERIC = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** psrpc IDs: a prefix plus 12 characters that never need escaping in a channel name. */
export function newId(prefix: 'REQ_' | 'CLI_' | 'SRV_'): string {
  let s = prefix;
  for (let i = 0; i < 12; i++) s += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)];
  return s;
}
