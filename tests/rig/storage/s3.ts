// s3rver 3.7.1 (a fake S3 on the local file system) on 127.0.0.1, as a child process so that
// down()/up() are a real outage: connections are refused while it is down.
//
// s3rver itself only checks that a V4 request names a known access key (S3RVER), not its signature.
// So by default the public endpoint is a small in-process front that verifies every SigV4 signature
// (header or presigned query) against the known key pairs and then passes the request through; with
// verifySignatures:false the endpoint is s3rver itself (the benchmark uses that).
//
// s3rver replaces an object in place: it truncates the file, writes it, then its metadata. A GET served
// meanwhile sends the old Content-Length and fewer bytes, and its client waits for the rest forever (a
// test reading a playlist while the egress rewrote it hung that way). Real S3 replaces an object
// atomically, so the front serialises the requests that read or replace one object.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { freePort } from '../ports.ts';
import { answersHttp, startRestartable, type RestartableService } from './common.ts';
import { SigV4Error, verifySigV4 } from './sigv4.ts';

export const S3RVER_ACCESS_KEY = 'S3RVER';
export const S3RVER_SECRET = 'S3RVER';

export interface S3Server extends RestartableService {
  port: number;
  /** http://127.0.0.1:<port> */
  endpoint: string;
  buckets: string[];
  /** Requests the signature check refused (code: message). Empty without verifySignatures. */
  rejected: string[];
  /** Requests passed on to s3rver (method and path), when verifying. */
  requests: string[];
  /** Paths of PUTs s3rver answered 2xx, in the order it answered them (when verifying): what was stored when. */
  stored: string[];
}

export interface S3ServerOptions {
  buckets?: string[];
  /** Default true. */
  verifySignatures?: boolean;
}

function s3ErrorXml(res: ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>s3-front</RequestId></Error>`);
}

export async function startS3(opts: S3ServerOptions = {}): Promise<S3Server> {
  const buckets = opts.buckets ?? ['egress'];
  const verify = opts.verifySignatures ?? true;
  const backPort = await freePort();
  const bin = createRequire(import.meta.url).resolve('s3rver/bin/s3rver.js');
  const backend = await startRestartable({
    name: 's3rver',
    command: process.execPath,
    args: (dataDir) => [
      bin, '--directory', dataDir, '--address', '127.0.0.1', '--port', String(backPort), '--silent',
      '--no-vhost-buckets', ...buckets.flatMap((b) => ['--configure-bucket', b]),
    ],
    ready: () => answersHttp(`http://127.0.0.1:${backPort}/`),
  });
  const rejected: string[] = [];
  const requests: string[] = [];
  const stored: string[] = [];
  if (!verify) return Object.assign(backend, { port: backPort, endpoint: `http://127.0.0.1:${backPort}`, buckets, rejected, requests, stored });

  const port = await freePort();
  const objectTurns = new Map<string, Promise<void>>();
  /** Runs `serve` after the previous request on the same object has been answered; resolves when this one has. */
  const inTurn = (req: IncomingMessage, res: ServerResponse, serve: () => void) => {
    const url = new URL(req.url ?? '/', 'http://front');
    const part = url.searchParams.has('uploadId') && req.method === 'PUT';
    const objectOp = !part && ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'].includes(req.method ?? '') && url.pathname.split('/').filter(Boolean).length >= 2;
    if (!objectOp) return serve();
    const key = url.pathname;
    const before = objectTurns.get(key) ?? Promise.resolve();
    // Listened for at once: a client that gives up while queued must not hold the queue.
    const answered = new Promise<void>((done) => res.once('close', done));
    const mine = before.then(() => {
      if (!res.destroyed) serve();
      return answered;
    });
    objectTurns.set(key, mine);
    void mine.then(() => {
      if (objectTurns.get(key) === mine) objectTurns.delete(key);
    });
  };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const anonymous = !req.headers.authorization && !req.url?.includes('X-Amz-Signature=');
    try {
      if (!anonymous) verifySigV4({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers }, undefined, { [S3RVER_ACCESS_KEY]: S3RVER_SECRET });
    } catch (err) {
      const code = err instanceof SigV4Error ? err.code : 'AccessDenied';
      rejected.push(`${code}: ${(err as Error).message}`);
      req.resume();
      req.on('end', () => s3ErrorXml(res, 403, code, (err as Error).message));
      return;
    }
    inTurn(req, res, () => forward(req, res));
  };
  const forward = (req: IncomingMessage, res: ServerResponse) => {
    requests.push(`${req.method} ${req.url}`);
    const upstream = request(
      { host: '127.0.0.1', port: backPort, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        if (req.method === 'PUT' && (up.statusCode ?? 500) < 300) up.once('end', () => stored.push((req.url ?? '').split('?')[0]!));
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) s3ErrorXml(res, 502, 'BadGateway', 's3rver unreachable');
      else res.destroy();
    });
    req.pipe(upstream);
  };
  let front: Server | undefined;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      if (front) return resolve();
      const s = createServer(handle);
      s.keepAliveTimeout = 5000;
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        front = s;
        resolve();
      });
    });
  const close = () =>
    new Promise<void>((resolve) => {
      const s = front;
      front = undefined;
      if (!s) return resolve();
      s.close(() => resolve());
      s.closeAllConnections();
    });
  await listen();
  return {
    root: backend.root,
    dataDir: backend.dataDir,
    get logPath() {
      return backend.logPath;
    },
    port,
    endpoint: `http://127.0.0.1:${port}`,
    buckets,
    rejected,
    requests,
    stored,
    async down() {
      await close();
      await backend.down();
    },
    async up() {
      await backend.up();
      await listen();
    },
    async stop() {
      await close();
      await backend.stop();
    },
  };
}
