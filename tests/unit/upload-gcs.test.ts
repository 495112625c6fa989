// GCS back-end (@google-cloud/storage) against fake-gcs-server on 127.0.0.1, plus a loopback
// forward/CONNECT proxy for proxy_config. Nothing may reach Google: no metadata-server probing,
// no application default credentials from the environment, and the proxy refuses any target
// that is not 127.0.0.1.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import dns from 'node:dns';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { connect, isIP, type Socket } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import type { GcpConfig } from '../../shared/src/config/types.ts';
import { escapeLocationPath } from '../../handler/src/upload/backend.ts';
import { createGcsBackend, GCS_CHUNK_SIZE, gcsLocation } from '../../handler/src/upload/gcs.ts';
import { StorageError } from '../../handler/src/upload/redact-error.ts';
import { freePort } from '../rig/ports.ts';
import { makeTmpDir } from '../rig/process.ts';
import { startGcs } from '../rig/storage/gcs.ts';

// Belt and braces: any DNS lookup from this process fails (and is recorded), so even a request
// that escaped the proxy could not reach a Google host. Everything here uses 127.0.0.1 literals.
const blockedLookups: string[] = [];
type LookupCallback = (err: NodeJS.ErrnoException | null, address?: string, family?: number) => void;
const realLookup = dns.lookup.bind(dns) as (...args: unknown[]) => void;
(dns as { lookup: unknown }).lookup = (host: string, options: unknown, callback?: LookupCallback) => {
  if (isIP(host) || host === 'localhost') return realLookup(host, options, callback);
  const cb = (typeof options === 'function' ? options : callback) as LookupCallback;
  blockedLookups.push(host);
  process.nextTick(() => cb(Object.assign(new Error(`test DNS guard: lookup of ${host} refused`), { code: 'ENOTFOUND' })));
};

process.env.METADATA_SERVER_DETECTION = 'none';
process.env.GCE_METADATA_HOST = '127.0.0.1:1';
process.env.GCE_METADATA_IP = '127.0.0.1:1';
for (const name of ['GOOGLE_APPLICATION_CREDENTIALS', 'STORAGE_EMULATOR_HOST', 'HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'NO_PROXY', 'no_proxy']) {
  delete process.env[name];
}

const MiB = 1024 * 1024;
const gcs = await startGcs({ buckets: ['egress', 'egress-override'] });
const tmp = makeTmpDir('upload-gcs');
t.teardown(async () => {
  await gcs.stop();
  rmSync(tmp, { recursive: true, force: true });
});

function file(name: string, size: number): { path: string; data: Buffer } {
  const data = randomBytes(size);
  const path = join(tmp, name);
  writeFileSync(path, data);
  return { path, data };
}
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const config = (over: Partial<GcpConfig> = {}): GcpConfig => ({ credentialsJson: '', bucket: 'egress', endpoint: gcs.endpoint, ...over });
const failure = (p: Promise<unknown>): Promise<unknown> => p.then(() => undefined, (e: unknown) => e);

const recording = file('recording.mp4', 3 * MiB + 17);
const large = file('large.mp4', 21 * MiB + 4099);

// --- a loopback forward (http://) and CONNECT (https://) proxy with basic auth ------------------

interface Proxy {
  url: string;
  /** `POST http://127.0.0.1:…/upload/…` for forwarded requests, `CONNECT host:port` for tunnels. */
  seen: string[];
  /** Requests refused for missing/wrong Proxy-Authorization. */
  denied: string[];
  close(): Promise<void>;
}

async function startProxy(username: string, password: string): Promise<Proxy> {
  const expected = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  const seen: string[] = [];
  const denied: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const line = `${req.method} ${req.url}`;
    if (req.headers['proxy-authorization'] !== expected) {
      denied.push(line);
      // Answer once the body is in: an early answer races the upload into a connection reset,
      // which the SDK retries (with backoff) like any reset.
      req.resume();
      req.on('end', () => {
        res.writeHead(407, { 'proxy-authenticate': 'Basic realm="test"' });
        res.end();
      });
      return;
    }
    seen.push(line);
    const target = new URL(req.url ?? '');
    if (target.hostname !== '127.0.0.1' || target.protocol !== 'http:') {
      req.resume();
      res.writeHead(403);
      return void res.end('only 127.0.0.1 over http');
    }
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    delete headers['proxy-connection'];
    const upstream = request(
      { host: '127.0.0.1', port: target.port, method: req.method, path: target.pathname + target.search, headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('connect', (req, client: Socket, head: Buffer) => {
    const line = `CONNECT ${req.url}`;
    if (req.headers['proxy-authorization'] !== expected) {
      denied.push(line);
      return void client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\n\r\n');
    }
    seen.push(line);
    const [host, port] = (req.url ?? '').split(':');
    if (host !== '127.0.0.1') return void client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
    const upstream = connect(Number(port), '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'));
    client.on('error', () => upstream.destroy());
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    denied,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// --- tests ---------------------------------------------------------------------------------------

t.test('a recording-sized file: one request, byte-identical, location fetchable', async (t) => {
  const backend = createGcsBackend(config());
  t.equal(backend.description, 'GCS bucket "egress"');
  t.equal(backend.kind, 'GCP');
  const key = 'rooms/room 1/recording é.mp4';
  const result = await backend.upload(recording.path, key, 'video/mp4');
  t.same(result, { location: `${gcs.endpoint}/egress/rooms/room%201/recording%20%C3%A9.mp4`, size: recording.data.length });
  t.equal(sha(await gcs.download('egress', key)), sha(recording.data), 'stored bytes are identical');
  const meta = await gcs.metadata('egress', key);
  t.equal(meta.contentType, 'video/mp4');
  t.equal(meta.md5Hash, createHash('md5').update(recording.data).digest('base64'));
  const res = await fetch(result.location);
  t.equal(res.status, 200);
  t.equal(sha(Buffer.from(await res.arrayBuffer())), sha(recording.data), 'the location serves the object');
});

t.test('a file above 20 MB goes up as a resumable upload, byte-identical', async (t) => {
  const backend = createGcsBackend(config());
  const result = await backend.upload(large.path, 'big/large.mp4', 'video/mp4');
  t.same(result, { location: `${gcs.endpoint}/egress/big/large.mp4`, size: large.data.length });
  t.equal(sha(await gcs.download('egress', 'big/large.mp4')), sha(large.data));
  t.equal((await gcs.metadata('egress', 'big/large.mp4')).size, String(large.data.length));
});

t.test('a per-request override to another bucket writes there only', async (t) => {
  const backend = createGcsBackend(config({ bucket: 'egress-override' }));
  t.equal(backend.description, 'GCS bucket "egress-override"');
  const result = await backend.upload(recording.path, 'override/r.mp4', 'video/mp4');
  t.equal(result.location, `${gcs.endpoint}/egress-override/override/r.mp4`);
  t.equal(sha(await gcs.download('egress-override', 'override/r.mp4')), sha(recording.data));
  await t.rejects(gcs.download('egress', 'override/r.mp4'), /404/);
});

t.test('a bucket that does not exist: 404, naming the bucket', async (t) => {
  const err = await failure(createGcsBackend(config({ bucket: 'no-such-bucket' })).upload(recording.path, 'x.mp4', 'video/mp4'));
  t.type(err, StorageError);
  t.match((err as Error).message, /^GCP upload failed: GCS bucket "no-such-bucket": /);
  t.equal((err as StorageError).status, 404);
  t.equal((err as StorageError).transient, false);
});

t.test('malformed credentials_json: a clear error naming GCS and the bucket, never the key', async (t) => {
  const marker = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC-secret-marker';
  const cases: [string, string, RegExp][] = [
    ['not JSON', `{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\\n${marker}`, /credentials_json is not valid JSON$/],
    ['not an object', '"just a string"', /credentials_json is not a JSON object$/],
    ['wrong type', JSON.stringify({ type: 'authorized_user', client_secret: marker, refresh_token: marker }), /credentials_json is not a service-account key \('type' is "authorized_user"/],
    ['no client_email', JSON.stringify({ type: 'service_account', private_key: marker }), /credentials_json has no client_email$/],
    [
      'broken private key',
      JSON.stringify({ type: 'service_account', client_email: 'rec@p.iam.gserviceaccount.com', private_key: `-----BEGIN PRIVATE KEY-----\n${marker}\n-----END PRIVATE KEY-----\n` }),
      /credentials_json private_key is not a valid PEM private key$/,
    ],
  ];
  for (const [name, json, reason] of cases) {
    const err = await failure(createGcsBackend(config({ credentialsJson: json })).upload(recording.path, `denied/${name}.mp4`, 'video/mp4'));
    t.type(err, StorageError, name);
    const msg = (err as Error).message;
    t.match(msg, /^GCP upload failed: GCS bucket "egress": /, name);
    t.match(msg, reason, name);
    t.notOk(msg.includes(marker), `${name}: no key material in the message`);
    t.equal((err as StorageError).transient, false, `${name}: not worth retrying`);
    await t.rejects(gcs.download('egress', `denied/${name}.mp4`), /404/, `${name}: nothing uploaded`);
  }
});

t.test('server down for the whole upload: rejects naming the back-end; back up: works, data kept', async (t) => {
  const backend = createGcsBackend(config());
  await gcs.down();
  for (const f of [recording, large]) {
    const err = await failure(backend.upload(f.path, 'outage.mp4', 'video/mp4'));
    t.type(err, StorageError);
    t.match((err as Error).message, /^GCP upload failed: GCS bucket "egress": .*ECONNREFUSED/);
    t.equal((err as StorageError).transient, true, 'a connection failure is transient');
  }
  await gcs.up();
  await backend.upload(recording.path, 'outage.mp4', 'video/mp4');
  t.equal(sha(await gcs.download('egress', 'outage.mp4')), sha(recording.data));
  t.equal(sha(await gcs.download('egress', 'big/large.mp4')), sha(large.data), 'earlier objects survived');
});

t.test('proxy_config: every request goes through the proxy, with basic auth', async (t) => {
  const proxy = await startProxy('egress', 'proxy-pass-7d1e');
  t.teardown(() => proxy.close());
  const backend = createGcsBackend(config({ proxy: { url: proxy.url, username: 'egress', password: 'proxy-pass-7d1e' } }));

  await backend.upload(recording.path, 'proxied/small.mp4', 'video/mp4');
  t.equal(sha(await gcs.download('egress', 'proxied/small.mp4')), sha(recording.data));
  t.match(proxy.seen, [new RegExp(`^POST ${gcs.endpoint}/upload/storage/v1/b/egress/o\\?.*uploadType=multipart`)], 'simple upload forwarded');
  t.equal(proxy.seen.length, 1);

  proxy.seen.length = 0;
  await backend.upload(large.path, 'proxied/large.mp4', 'video/mp4');
  t.equal(sha(await gcs.download('egress', 'proxied/large.mp4')), sha(large.data));
  const prefix = `${gcs.endpoint}/upload/storage/v1/b/egress/o?`;
  t.ok(proxy.seen[0]?.startsWith(`POST ${prefix}`) && proxy.seen[0].includes('uploadType=resumable'), 'resumable session opened through the proxy');
  const chunks = proxy.seen.filter((l) => l.startsWith(`PUT ${prefix}`) && l.includes('upload_id='));
  t.equal(chunks.length, Math.ceil(large.data.length / GCS_CHUNK_SIZE), 'one PUT per 8 MiB chunk through the proxy');
  t.same(proxy.denied, []);
});

t.test('proxy_config: wrong proxy password fails with 407, the password is not in the error', async (t) => {
  const proxy = await startProxy('egress', 'right-pass');
  t.teardown(() => proxy.close());
  const password = 'wrong-proxy-pass-93ab';
  const backend = createGcsBackend(config({ proxy: { url: proxy.url, username: 'egress', password } }));
  for (const f of [recording, large]) {
    const err = await failure(backend.upload(f.path, 'proxied/denied.mp4', 'video/mp4'));
    t.type(err, StorageError);
    t.match((err as Error).message, /^GCP upload failed: GCS bucket "egress": /);
    t.equal((err as StorageError).status, 407);
    t.notOk((err as Error).message.includes(password));
  }
  t.ok(proxy.denied.length >= 2, 'the proxy refused the requests');
  t.same(proxy.seen, []);
});

t.test('proxy_config: https endpoints are tunnelled with CONNECT', async (t) => {
  const proxy = await startProxy('egress', 'tunnel-pass');
  t.teardown(() => proxy.close());
  // https:// to fake-gcs-server's plain-http port: the tunnel is made, then TLS fails at once.
  const backend = createGcsBackend(config({
    endpoint: `https://127.0.0.1:${gcs.port}`,
    proxy: { url: proxy.url, username: 'egress', password: 'tunnel-pass' },
  }));
  for (const f of [recording, large]) {
    const err = await failure(backend.upload(f.path, 'tunnel.mp4', 'video/mp4'));
    t.match((err as Error).message, /^GCP upload failed: GCS bucket "egress": .*(SSL|TLS|EPROTO)/i);
  }
  t.same(proxy.seen, [`CONNECT 127.0.0.1:${gcs.port}`, `CONNECT 127.0.0.1:${gcs.port}`], 'one tunnel per upload, to the endpoint');
  t.same(proxy.denied, []);
});

t.test('proxy_config: with credentials and no endpoint, the OAuth token request is tunnelled too', async (t) => {
  // The proxy refuses every target but 127.0.0.1, so this sees the SDK's first request (the
  // service-account token exchange with www.googleapis.com) arrive as a CONNECT and stop there.
  const proxy = await startProxy('egress', 'token-pass');
  t.teardown(() => proxy.close());
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const credentialsJson = JSON.stringify({
    type: 'service_account',
    project_id: 'egress-test',
    client_email: 'recorder@egress-test.iam.gserviceaccount.com',
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  });
  const backend = createGcsBackend({
    credentialsJson,
    bucket: 'egress',
    proxy: { url: proxy.url, username: 'egress', password: 'token-pass' },
  });
  const err = await failure(backend.upload(recording.path, 'token.mp4', 'video/mp4'));
  t.type(err, StorageError);
  t.match((err as Error).message, /^GCP upload failed: GCS bucket "egress": /);
  t.notOk((err as Error).message.includes('PRIVATE KEY'));
  t.ok(proxy.seen.length > 0, 'requests reached the proxy');
  t.ok(proxy.seen.every((l) => /^CONNECT [a-z0-9.]+\.googleapis\.com:443$/.test(l)), `only CONNECTs to Google hosts: ${proxy.seen.join(', ')}`);
  t.same(proxy.denied, []);
});

t.test('no DNS lookup was attempted by any SDK', async (t) => {
  t.same(blockedLookups, []);
});

t.test('a malformed proxy URL is a configuration error', async (t) => {
  const err = await failure(createGcsBackend(config({ proxy: { url: 'not a url', username: '', password: '' } })).upload(recording.path, 'x.mp4', 'video/mp4'));
  t.match((err as Error).message, /^GCP upload failed: GCS bucket "egress": proxy_config.url is not a valid URL$/);
});

t.test('location follows Go (livekit/storage location_test.go)', async (t) => {
  const cases: [string, string][] = [
    ['foo.mp4', 'https://mybucket.storage.googleapis.com/foo.mp4'],
    ['a/b/c.mp4', 'https://mybucket.storage.googleapis.com/a/b/c.mp4'],
    ['/foo.mp4', 'https://mybucket.storage.googleapis.com/foo.mp4'],
    ['folder/my file.mp4', 'https://mybucket.storage.googleapis.com/folder/my%20file.mp4'],
    ['café/résumé.mp4', 'https://mybucket.storage.googleapis.com/caf%C3%A9/r%C3%A9sum%C3%A9.mp4'],
  ];
  for (const [path, want] of cases) t.equal(gcsLocation('mybucket', path), want, path);
  t.equal(gcsLocation('b', 'x/y.mp4', 'http://127.0.0.1:4443'), 'http://127.0.0.1:4443/b/x/y.mp4');
  // Go's url.URL path escaping: reserved sub-delims kept, the rest percent-encoded.
  t.equal(escapeLocationPath("a+b=c;d,e@f:g$h&i!j'k(l)m*n?o#p"), "/a+b=c;d,e@f:g$h&i%21j%27k%28l%29m%2An%3Fo%23p");
});
