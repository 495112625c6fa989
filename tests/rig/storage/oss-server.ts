// A small Alibaba Cloud OSS server on 127.0.0.1 (no public OSS emulator exists), in process,
// objects in memory. It verifies every request's OSS V1 signature against its key pair:
//
//   Authorization: OSS <AccessKeyId>:base64(HMAC-SHA1(secret,
//     VERB \n Content-MD5 \n Content-Type \n Date \n CanonicalizedOSSHeaders CanonicalizedResource))
//
// where Date is x-oss-date when sent (ali-oss sends only that), CanonicalizedOSSHeaders are the
// lower-cased x-oss-* headers sorted, one `name:value\n` each, and CanonicalizedResource is
// `/<bucket>/<key>` plus the signed sub-resources (uploads, uploadId, partNumber, …) sorted, as
// `?a&b=v`. A wrong secret gets 403 SignatureDoesNotMatch in OSS's XML error format.
//
// The bucket comes from the Host header (`<bucket>.<anything>`, virtual-host style; ali-oss with
// an IP endpoint sends `Host: <bucket>.oss-cn-hangzhou.aliyuncs.com` and a path without the
// bucket) or else from the first path segment (path style, ali-oss `sldEnable`).
//
// Operations: PutObject, GetObject, HeadObject, DeleteObject, InitiateMultipartUpload
// (POST ?uploads), UploadPart (PUT ?partNumber&uploadId), CompleteMultipartUpload
// (POST ?uploadId, XML body), AbortMultipartUpload (DELETE ?uploadId). down()/up() close and
// reopen the same port, keeping the objects.
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { freePort } from '../ports.ts';

export const OSS_TEST_ACCESS_KEY = 'LTAI-egress-test-key';
export const OSS_TEST_SECRET = 'oss-egress-test-secret-0123456789';

/** Query parameters that are signed sub-resources in OSS V1 (the rest of the query is not signed). */
const SUB_RESOURCES = new Set([
  'acl', 'uploads', 'location', 'cors', 'logging', 'website', 'referer', 'lifecycle', 'delete', 'append',
  'tagging', 'objectMeta', 'uploadId', 'partNumber', 'security-token', 'position', 'img', 'style', 'styleName',
  'replication', 'replicationProgress', 'replicationLocation', 'cname', 'bucketInfo', 'comp', 'qos', 'live',
  'status', 'vod', 'startTime', 'endTime', 'symlink', 'x-oss-process', 'response-content-type',
  'response-content-language', 'response-expires', 'response-cache-control', 'response-content-disposition',
  'response-content-encoding', 'udf', 'udfName', 'udfImage', 'udfId', 'udfImageDesc', 'udfApplication',
  'udfApplicationLog', 'restore', 'callback', 'callback-var', 'policy', 'encryption', 'versions', 'versioning',
  'versionId', 'sequential', 'continuation-token', 'regionList', 'cloudboxes', 'inventory', 'inventoryId',
  'worm', 'wormId', 'wormExtend', 'x-oss-traffic-limit', 'requestPayment', 'stat', 'resourceGroup',
]);

/** RequestTimeTooSkewed beyond this, as OSS. */
const MAX_SKEW_MS = 15 * 60 * 1000;

export interface OssObject {
  data: Buffer;
  contentType: string;
  etag: string;
}

export interface OssServer {
  port: number;
  /** http://127.0.0.1:<port>, the value for AliOssConfig.endpoint */
  endpoint: string;
  accessKey: string;
  secret: string;
  buckets: string[];
  /** `<METHOD> /<bucket>/<key>?<query>` of every request that passed the signature check. */
  requests: string[];
  /** `<Code>: <detail>` of every request refused. */
  rejected: string[];
  object(bucket: string, key: string): OssObject | undefined;
  /** Multipart uploads initiated and neither completed nor aborted. */
  openUploads(): number;
  /** Fault injection: UploadPart for this part number answers 500 InternalError (undefined: off). */
  failPart: number | undefined;
  /** Closes the port (open connections are cut); objects are kept. */
  down(): Promise<void>;
  /** Listens on the same port again. */
  up(): Promise<void>;
  stop(): Promise<void>;
}

interface Upload {
  bucket: string;
  key: string;
  contentType: string;
  parts: Map<number, { data: Buffer; etag: string }>;
}

const xmlEscape = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const md5 = (data: Buffer) => createHash('md5').update(data).digest();

function header(headers: IncomingHttpHeaders, name: string): string {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : (v ?? '');
}

class OssError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly extra: Record<string, string> = {}) {
    super(message);
  }
}

/** The OSS V1 string to sign for a request, as the server reconstructs it. */
export function ossStringToSign(
  method: string,
  headers: IncomingHttpHeaders,
  bucket: string | undefined,
  key: string,
  query: URLSearchParams,
): string {
  const ossHeaders = Object.keys(headers)
    .map((k) => k.toLowerCase())
    .filter((k) => k.startsWith('x-oss-'))
    .sort()
    .map((k) => `${k}:${header(headers, k).trim()}`);
  let resource = bucket ? `/${bucket}/${key}` : '/';
  const subs = [...new Set([...query.keys()].filter((k) => SUB_RESOURCES.has(k)))].sort();
  subs.forEach((k, i) => {
    const v = query.get(k) ?? '';
    resource += `${i === 0 ? '?' : '&'}${k}${v !== '' ? `=${v}` : ''}`;
  });
  const date = header(headers, 'x-oss-date') || header(headers, 'date');
  return [
    method.toUpperCase(),
    header(headers, 'content-md5'),
    header(headers, 'content-type'),
    date,
    ...ossHeaders,
    resource,
  ].join('\n');
}

export async function startOssServer(opts: { accessKey?: string; secret?: string; buckets?: string[] } = {}): Promise<OssServer> {
  const accessKey = opts.accessKey ?? OSS_TEST_ACCESS_KEY;
  const secret = opts.secret ?? OSS_TEST_SECRET;
  const buckets = opts.buckets ?? ['egress'];
  const objects = new Map<string, OssObject>();
  const uploads = new Map<string, Upload>();
  const requests: string[] = [];
  const rejected: string[] = [];
  const port = await freePort();
  const state: { failPart: number | undefined } = { failPart: undefined };

  const resolve = (req: IncomingMessage): { bucket: string | undefined; key: string; query: URLSearchParams } => {
    const url = new URL(req.url ?? '/', 'http://oss.invalid');
    const path = decodeURIComponent(url.pathname).replace(/^\//, '');
    const hostLabel = header(req.headers, 'host').split(':')[0]!.split('.')[0]!;
    if (buckets.includes(hostLabel)) return { bucket: hostLabel, key: path, query: url.searchParams };
    const slash = path.indexOf('/');
    const bucket = slash < 0 ? path : path.slice(0, slash);
    return { bucket: bucket || undefined, key: slash < 0 ? '' : path.slice(slash + 1), query: url.searchParams };
  };

  const authenticate = (req: IncomingMessage, bucket: string | undefined, key: string, query: URLSearchParams) => {
    const auth = header(req.headers, 'authorization');
    if (!auth) throw new OssError(403, 'AccessDenied', 'AccessDenied: anonymous access is not allowed by this server.');
    const m = /^OSS ([^:]+):(.+)$/.exec(auth);
    if (!m) throw new OssError(400, 'InvalidArgument', 'Authorization header is invalid (only OSS V1 signatures are supported).');
    const [, id, signature] = m as unknown as [string, string, string];
    if (id !== accessKey) {
      throw new OssError(403, 'InvalidAccessKeyId', 'The OSS Access Key Id you provided does not exist in our records.', { OSSAccessKeyId: id });
    }
    const stringToSign = ossStringToSign(req.method ?? 'GET', req.headers, bucket, key, query);
    const expected = createHmac('sha1', secret).update(Buffer.from(stringToSign, 'utf8')).digest();
    const provided = Buffer.from(signature, 'base64');
    if (provided.length !== expected.length || !timingSafeEqual(provided, expected)) {
      throw new OssError(
        403,
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
        { OSSAccessKeyId: id, SignatureProvided: signature, StringToSign: stringToSign },
      );
    }
    const date = Date.parse(header(req.headers, 'x-oss-date') || header(req.headers, 'date'));
    if (!Number.isFinite(date)) throw new OssError(403, 'AccessDenied', 'OSS authentication requires a valid Date.');
    if (Math.abs(Date.now() - date) > MAX_SKEW_MS) {
      throw new OssError(403, 'RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.');
    }
  };

  const body = (req: IncomingMessage): Promise<Buffer> =>
    new Promise((res, rej) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => res(Buffer.concat(chunks)));
      req.on('error', rej);
    });

  const send = (res: ServerResponse, status: number, headers: Record<string, string | number>, payload?: string | Buffer) => {
    res.writeHead(status, { 'x-oss-request-id': randomUUID().replace(/-/g, '').toUpperCase(), 'server': 'egress-test-oss', ...headers });
    res.end(payload);
  };

  const xml = (res: ServerResponse, status: number, content: string) =>
    send(res, status, { 'content-type': 'application/xml' }, `<?xml version="1.0" encoding="UTF-8"?>\n${content}`);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const { bucket, key, query } = resolve(req);
    authenticate(req, bucket, key, query);
    const data = await body(req);
    requests.push(`${method} /${bucket ?? ''}/${key}${query.size ? `?${query}` : ''}`);
    if (!bucket || !buckets.includes(bucket)) throw new OssError(404, 'NoSuchBucket', 'The specified bucket does not exist.');
    if (!key) throw new OssError(501, 'NotImplemented', 'Bucket operations are not implemented by this server.');
    const contentMd5 = header(req.headers, 'content-md5');
    if (contentMd5 && md5(data).toString('base64') !== contentMd5) {
      throw new OssError(400, 'InvalidDigest', 'The Content-MD5 you specified was invalid.');
    }
    const id = `${bucket}/${key}`;
    const contentType = header(req.headers, 'content-type') || 'application/octet-stream';
    const uploadId = query.get('uploadId');
    const upload = uploadId === null ? undefined : uploads.get(uploadId);
    if (uploadId !== null && (!upload || upload.bucket !== bucket || upload.key !== key)) {
      throw new OssError(404, 'NoSuchUpload', 'The specified upload does not exist.');
    }

    if (method === 'PUT' && upload) {
      const n = Number(query.get('partNumber'));
      if (!Number.isInteger(n) || n < 1 || n > 10000) throw new OssError(400, 'InvalidArgument', 'Part number must be an integer between 1 and 10000.');
      if (n === state.failPart) throw new OssError(500, 'InternalError', `Injected failure for part ${n}.`);
      const etag = `"${md5(data).toString('hex').toUpperCase()}"`;
      upload.parts.set(n, { data, etag });
      send(res, 200, { etag, 'content-length': 0 });
    } else if (method === 'PUT') {
      const etag = `"${md5(data).toString('hex').toUpperCase()}"`;
      objects.set(id, { data, contentType, etag });
      send(res, 200, { etag, 'content-length': 0 });
    } else if (method === 'POST' && query.has('uploads')) {
      const newId = randomBytes(16).toString('hex').toUpperCase();
      uploads.set(newId, { bucket, key, contentType, parts: new Map() });
      xml(res, 200, `<InitiateMultipartUploadResult><Bucket>${xmlEscape(bucket)}</Bucket><Key>${xmlEscape(key)}</Key><UploadId>${newId}</UploadId></InitiateMultipartUploadResult>`);
    } else if (method === 'POST' && upload && uploadId !== null) {
      const listed = [...data.toString('utf8').matchAll(/<Part>\s*<PartNumber>(\d+)<\/PartNumber>\s*<ETag>([^<]*)<\/ETag>\s*<\/Part>/g)]
        .map((m) => ({ n: Number(m[1]), etag: m[2]!.replace(/&quot;/g, '"').replace(/"/g, '') }));
      if (listed.length === 0) throw new OssError(400, 'MalformedXML', 'The XML you provided was not well-formed.');
      const chunks: Buffer[] = [];
      const digests: Buffer[] = [];
      let previous = 0;
      for (const p of listed) {
        if (p.n <= previous) throw new OssError(400, 'InvalidPartOrder', 'The list of parts was not in ascending order.');
        previous = p.n;
        const part = upload.parts.get(p.n);
        if (!part || part.etag.replace(/"/g, '') !== p.etag) {
          throw new OssError(400, 'InvalidPart', `One or more of the specified parts could not be found (part ${p.n}).`);
        }
        chunks.push(part.data);
        digests.push(md5(part.data));
      }
      const etag = `"${md5(Buffer.concat(digests)).toString('hex').toUpperCase()}-${listed.length}"`;
      objects.set(id, { data: Buffer.concat(chunks), contentType: upload.contentType, etag });
      uploads.delete(uploadId);
      xml(res, 200, `<CompleteMultipartUploadResult><Location>http://${xmlEscape(bucket)}.oss.invalid/${xmlEscape(key)}</Location><Bucket>${xmlEscape(bucket)}</Bucket><Key>${xmlEscape(key)}</Key><ETag>${xmlEscape(etag)}</ETag></CompleteMultipartUploadResult>`);
    } else if (method === 'DELETE' && upload && uploadId !== null) {
      uploads.delete(uploadId);
      send(res, 204, {});
    } else if (method === 'GET' || method === 'HEAD') {
      const obj = objects.get(id);
      if (!obj) {
        if (method === 'HEAD') return send(res, 404, {});
        throw new OssError(404, 'NoSuchKey', 'The specified key does not exist.');
      }
      send(res, 200, { 'content-type': obj.contentType, 'content-length': obj.data.length, etag: obj.etag }, method === 'GET' ? obj.data : undefined);
    } else if (method === 'DELETE') {
      objects.delete(id);
      send(res, 204, {});
    } else {
      throw new OssError(501, 'NotImplemented', `${method} with this query is not implemented by this server.`);
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const e = err instanceof OssError ? err : new OssError(500, 'InternalError', String(err));
      rejected.push(`${e.code}: ${req.method} ${req.url}`);
      req.resume();
      const finish = () => {
        if (res.headersSent) return void res.destroy();
        const extra = Object.entries(e.extra).map(([k, v]) => `<${k}>${xmlEscape(v)}</${k}>`).join('');
        const requestId = randomUUID().replace(/-/g, '').toUpperCase();
        const payload = `<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  <Code>${e.code}</Code>\n  <Message>${xmlEscape(e.message)}</Message>\n  <RequestId>${requestId}</RequestId>\n  <HostId>127.0.0.1</HostId>${extra}\n</Error>\n`;
        res.writeHead(e.status, { 'content-type': 'application/xml', 'x-oss-request-id': requestId, 'content-length': Buffer.byteLength(payload) });
        res.end(req.method === 'HEAD' ? undefined : payload);
      };
      if (req.complete) finish();
      else req.once('end', finish);
    });
  });

  const listen = () =>
    new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', rej);
        res();
      });
    });
  const close = () =>
    new Promise<void>((res) => {
      if (!server.listening) return res();
      server.close(() => res());
      server.closeAllConnections();
    });
  await listen();

  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    accessKey,
    secret,
    buckets,
    requests,
    rejected,
    object: (bucket, key) => objects.get(`${bucket}/${key}`),
    openUploads: () => uploads.size,
    get failPart() {
      return state.failPart;
    },
    set failPart(n: number | undefined) {
      state.failPart = n;
    },
    down: close,
    up: listen,
    stop: close,
  };
}
