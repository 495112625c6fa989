// AWS Signature Version 4 verification for the fake servers: recomputes the signature of a received
// request (Authorization header or presigned query) with the secret of the access key it names.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

const hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
const rfc3986 = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

export class SigV4Error extends Error {
  constructor(
    readonly code: 'InvalidAccessKeyId' | 'SignatureDoesNotMatch' | 'AccessDenied',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Returns the caller's access key id, or throws a SigV4Error. `body` is hashed only when the request
 * carries no x-amz-content-sha256 (STS); S3 requests declare their payload hash in that header.
 */
export function verifySigV4(
  req: { method: string; url: string; headers: IncomingHttpHeaders },
  body: Buffer | undefined,
  secrets: Record<string, string>,
): string {
  const url = new URL(req.url, 'http://x');
  const q = url.searchParams;
  let keyId: string, day: string, region: string, service: string, signedHeaders: string, signature: string, amzDate: string;
  let presigned = false;
  if (q.has('X-Amz-Signature')) {
    presigned = true;
    const cred = (q.get('X-Amz-Credential') ?? '').split('/');
    if (cred.length !== 5 || q.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') throw new SigV4Error('AccessDenied', 'malformed presigned URL');
    [keyId, day, region, service] = cred as [string, string, string, string];
    signedHeaders = q.get('X-Amz-SignedHeaders') ?? '';
    signature = q.get('X-Amz-Signature') ?? '';
    amzDate = q.get('X-Amz-Date') ?? '';
    const expires = Number(q.get('X-Amz-Expires') ?? '0');
    const t = Date.UTC(+amzDate.slice(0, 4), +amzDate.slice(4, 6) - 1, +amzDate.slice(6, 8), +amzDate.slice(9, 11), +amzDate.slice(11, 13), +amzDate.slice(13, 15));
    if (Date.now() > t + expires * 1000) throw new SigV4Error('AccessDenied', 'Request has expired');
  } else {
    const auth = String(req.headers.authorization ?? '');
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
    if (!m) throw new SigV4Error('AccessDenied', 'missing or malformed SigV4 Authorization header');
    [, keyId, day, region, service, signedHeaders, signature] = m as unknown as [string, string, string, string, string, string, string];
    amzDate = String(req.headers['x-amz-date'] ?? '');
  }
  const secret = secrets[keyId];
  if (secret === undefined) throw new SigV4Error('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
  if (!amzDate.startsWith(day)) throw new SigV4Error('AccessDenied', 'x-amz-date does not match the credential scope');
  const query = [...q.entries()]
    .filter(([k]) => !(presigned && k === 'X-Amz-Signature'))
    .map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`)
    .sort()
    .join('&');
  const canonicalHeaders = signedHeaders
    .split(';')
    .map((n) => {
      const v = req.headers[n];
      const value = Array.isArray(v) ? v.join(',') : (v ?? '');
      return `${n}:${value.trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const payloadHash = presigned
    ? 'UNSIGNED-PAYLOAD'
    : String(req.headers['x-amz-content-sha256'] ?? hex(body ?? Buffer.alloc(0)));
  const canonical = [req.method, url.pathname || '/', query, canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, hex(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), service), 'aws4_request');
  const expected = createHmac('sha256', key).update(toSign).digest();
  const got = Buffer.from(signature, 'hex');
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
    throw new SigV4Error('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.');
  }
  return keyId;
}
