// The S3 back-end against s3rver on 127.0.0.1 (behind a SigV4-verifying front), a fake STS and a
// loopback CONNECT proxy. Nothing here may reach AWS: every config carries an explicit endpoint and
// the instance-metadata probe is disabled.
process.env.AWS_EC2_METADATA_DISABLED = 'true';
process.env.AWS_CONFIG_FILE = '/nonexistent/aws-config';
process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/aws-credentials';
for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_REGION', 'AWS_DEFAULT_REGION']) delete process.env[k];
import t from 'tap';
import { scratchFiles, sha256 } from '../support/files.ts';
import { existsSync, readFileSync } from 'node:fs';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { S3Upload, ProxyConfig as ProtoProxy } from '@livekit/protocol';
import type { S3Config } from '@egress/shared/config/types.ts';
import { EgressError } from '@egress/shared/errors.ts';
import { createS3Backend, s3Location, S3RetryStrategy } from '../../handler/src/upload/s3.ts';
import { StorageError } from '../../handler/src/upload/redact-error.ts';
import { backendFor, resolveStorage } from '../../handler/src/upload/storage.ts';
import { startS3, S3RVER_ACCESS_KEY, S3RVER_SECRET, type S3Server } from '../rig/storage/s3.ts';
import { startSts } from '../rig/storage/sts.ts';
import { startProxy } from '../rig/storage/proxy.ts';

const files = scratchFiles('upload-s3');
const tmp = files.dir;
t.teardown(files.remove);

let s3: S3Server;
t.before(async () => {
  s3 = await startS3({ buckets: ['egress', 'other'] });
});
t.teardown(() => s3?.stop());


function cfg(over: Partial<S3Config> = {}): S3Config {
  return {
    accessKey: S3RVER_ACCESS_KEY, secret: S3RVER_SECRET, sessionToken: '', assumeRoleArn: '', assumeRoleExternalId: '',
    region: 'us-east-1', endpoint: s3.endpoint, bucket: 'egress', forcePathStyle: true,
    maxRetries: 2, maxRetryDelayMs: 200, minRetryDelayMs: 50, metadata: {}, tagging: '', contentDisposition: '',
    ...over,
  };
}

function reader(): S3Client {
  return new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: S3RVER_SECRET } });
}

async function download(bucket: string, key: string): Promise<Buffer> {
  const client = reader();
  try {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await out.Body!.transformToByteArray());
  } finally {
    client.destroy();
  }
}

async function keys(bucket: string): Promise<string[]> {
  const client = reader();
  try {
    const out = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    return (out.Contents ?? []).map((o) => o.Key!);
  } finally {
    client.destroy();
  }
}

/** The StorageError an upload must fail with (anything else fails the test). */
async function expectStorageError(p: Promise<unknown>): Promise<StorageError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof StorageError) return err;
    throw err;
  }
  throw new Error('expected the upload to fail');
}

t.test('upload → download: byte-identical, content type, disposition, metadata, plain location', async (t) => {
  const f = files.make(200_000);
  const b = createS3Backend(cfg({ metadata: { room: 'r1' }, tagging: 'team=a' }));
  t.teardown(() => b.close());
  const r = await b.upload(f.path, 'rooms/r1/out.mp4', 'video/mp4');
  t.equal(r.size, f.data.length);
  t.equal(r.location, `${s3.endpoint}/egress/rooms/r1/out.mp4`);
  t.equal(sha256(await download('egress', 'rooms/r1/out.mp4')), sha256(f.data));
  const client = reader();
  const head = await client.send(new HeadObjectCommand({ Bucket: 'egress', Key: 'rooms/r1/out.mp4' }));
  client.destroy();
  t.equal(head.ContentType, 'video/mp4');
  t.equal(head.ContentDisposition, 'inline');
  t.same(head.Metadata, { room: 'r1' });
  t.ok(existsSync(f.path), 'the back-end itself never deletes the local file');
});

t.test('locations as the Go egress reports them', async (t) => {
  t.equal(s3Location({ bucket: 'b', endpoint: '', forcePathStyle: false }, 'a/x.mp4'), 'https://b.s3.amazonaws.com/a/x.mp4');
  t.equal(s3Location({ bucket: 'b', endpoint: 'minio.example.com', forcePathStyle: true }, 'x.mp4'), 'https://minio.example.com/b/x.mp4');
  t.equal(s3Location({ bucket: 'b', endpoint: 'https://s3.example.com/', forcePathStyle: false }, 'x.mp4'), 'https://b.s3.example.com/x.mp4');
  t.equal(s3Location({ bucket: 'b', endpoint: 'http://127.0.0.1:9000', forcePathStyle: true }, 'x.mp4'), 'http://127.0.0.1:9000/b/x.mp4');
});

t.test('a 21 MiB file goes up as a multipart upload', async (t) => {
  const f = files.make(21 * 1024 * 1024);
  const b = createS3Backend(cfg({ contentDisposition: 'attachment' }));
  t.teardown(() => b.close());
  const before = s3.requests.length;
  const r = await b.upload(f.path, 'big/file.mp4', 'video/mp4');
  t.equal(r.size, f.data.length);
  const seen = s3.requests.slice(before);
  t.ok(seen.some((x) => x.startsWith('POST /egress/big/file.mp4?uploads')), 'CreateMultipartUpload');
  t.equal(seen.filter((x) => /^PUT \/egress\/big\/file\.mp4\?.*partNumber=/.test(x)).length, 5, 'five 5 MiB parts');
  t.ok(seen.some((x) => /^POST \/egress\/big\/file\.mp4\?uploadId=/.test(x)), 'CompleteMultipartUpload');
  t.equal(sha256(await download('egress', 'big/file.mp4')), sha256(f.data), 'byte-identical');
});

t.test('per-request S3 target overrides the configured bucket', async (t) => {
  const f = files.make(10_000);
  const config = { storage: { prefix: 'pre', generatePresignedUrl: false, s3: cfg({ bucket: 'egress' }) }, disallowLocalStorage: false, localOutputDir: tmp };
  const req = new S3Upload({ accessKey: S3RVER_ACCESS_KEY, secret: S3RVER_SECRET, endpoint: s3.endpoint, bucket: 'other', forcePathStyle: true, region: 'us-east-1' });
  const target = resolveStorage(req, config);
  t.equal(target.s3?.bucket, 'other');
  const b = await backendFor(target);
  t.teardown(() => b.close?.());
  const r = await b.upload(f.path, 'pre/req.ogg', 'audio/ogg');
  t.equal(r.location, `${s3.endpoint}/other/pre/req.ogg`);
  t.equal(sha256(await download('other', 'pre/req.ogg')), sha256(f.data));
  t.notOk((await keys('egress')).includes('pre/req.ogg'), 'nothing in the configured bucket');
});

t.test('wrong credentials: a clear error naming S3 and the bucket, never the secret', async (t) => {
  const f = files.make(1000);
  const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzWRONGKEY';
  const wrongSecret = createS3Backend(cfg({ secret }));
  t.teardown(() => wrongSecret.close());
  const e1 = await expectStorageError(wrongSecret.upload(f.path, 'x.mp4', 'video/mp4'));
  t.match(e1.message, /^S3 upload failed: S3 bucket "egress" at http:\/\/127\.0\.0\.1:\d+: SignatureDoesNotMatch: .*\(HTTP 403\)$/);
  t.notOk(e1.message.includes(secret), 'secret not in the message');
  t.notOk(JSON.stringify(e1).includes(secret) || String(e1.stack).includes(secret), 'nor anywhere on the error');
  t.equal(e1.code, 'invalid_argument');
  t.equal(e1.httpStatus, 400);
  t.equal(e1.transient, false, 'not worth retrying');

  const wrongKey = createS3Backend(cfg({ accessKey: 'AKIAIOSFODNN7EXAMPLE', secret }));
  t.teardown(() => wrongKey.close());
  const e2 = await expectStorageError(wrongKey.upload(f.path, 'x.mp4', 'video/mp4'));
  t.match(e2.message, /S3 upload failed: S3 bucket "egress".*InvalidAccessKeyId/);
  t.notOk(e2.message.includes(secret));

  const noBucket = createS3Backend(cfg({ bucket: 'missing' }));
  t.teardown(() => noBucket.close());
  t.match((await expectStorageError(noBucket.upload(f.path, 'x.mp4', 'video/mp4'))).message, /S3 bucket "missing".*NoSuchBucket/);
  t.ok(s3.rejected.some((r) => r.startsWith('SignatureDoesNotMatch')), 'the front verified the signature');
});

t.test('generate_presigned_url: the location is a presigned GET valid 7 days, and it works', async (t) => {
  const f = files.make(50_000);
  const b = createS3Backend(cfg(), { generatePresignedUrl: true });
  t.teardown(() => b.close());
  const r = await b.upload(f.path, 'signed/a.mp4', 'video/mp4');
  const url = new URL(r.location);
  t.equal(url.origin + url.pathname, `${s3.endpoint}/egress/signed/a.mp4`);
  t.equal(url.searchParams.get('X-Amz-Expires'), String(7 * 24 * 3600));
  t.ok(url.searchParams.get('X-Amz-Signature'));
  const res = await fetch(r.location);
  t.equal(res.status, 200);
  t.equal(sha256(Buffer.from(await res.arrayBuffer())), sha256(f.data));
  url.searchParams.set('X-Amz-Signature', '0'.repeat(64));
  const forged = await fetch(url);
  await forged.arrayBuffer();
  t.equal(forged.status, 403, 'a forged signature is refused, so the check above means something');
});

t.test('assume_role_arn: AssumeRole through the fake STS with the configured keys and external id', async (t) => {
  const sts = await startSts({
    callers: { AKIAROLECALLER000001: 'caller-secret-value' },
    issued: { accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: S3RVER_SECRET, sessionToken: 'issued-session-token' },
  });
  t.teardown(() => sts.stop());
  const f = files.make(3000);
  const role = 'arn:aws:iam::123456789012:role/egress-writer';
  const b = createS3Backend(cfg({ accessKey: 'AKIAROLECALLER000001', secret: 'caller-secret-value', assumeRoleArn: role, assumeRoleExternalId: 'ext-4711', stsEndpoint: sts.endpoint }));
  t.teardown(() => b.close());
  const r = await b.upload(f.path, 'role/a.mp4', 'video/mp4');
  t.equal(r.size, 3000);
  t.equal(sts.calls.length, 1);
  t.match(sts.calls[0], { accessKeyId: 'AKIAROLECALLER000001', roleArn: role, externalId: 'ext-4711' });
  t.same(sts.rejected, []);
  await b.upload(f.path, 'role/b.mp4', 'video/mp4');
  t.equal(sts.calls.length, 1, 'the assumed credentials are cached');
  t.equal(sha256(await download('egress', 'role/a.mp4')), sha256(f.data));

  // Without the role the caller's own keys are unknown to the store.
  const direct = createS3Backend(cfg({ accessKey: 'AKIAROLECALLER000001', secret: 'caller-secret-value' }));
  t.teardown(() => direct.close());
  t.match((await expectStorageError(direct.upload(f.path, 'role/c.mp4', 'video/mp4'))).message, /InvalidAccessKeyId/);

  // A request target: ARN without keys takes the server's s3_assume_role_key/secret.
  const target = resolveStorage(
    new S3Upload({ bucket: 'other', endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1', assumeRoleArn: role, assumeRoleExternalId: 'ext-req' }),
    { storage: undefined, disallowLocalStorage: false, localOutputDir: tmp, s3AssumeRole: { accessKey: 'AKIAROLECALLER000001', secret: 'caller-secret-value', arn: '', externalId: '', stsEndpoint: sts.endpoint } },
  );
  const viaRequest = await backendFor(target);
  t.teardown(() => viaRequest.close?.());
  await viaRequest.upload(f.path, 'role/req.mp4', 'video/mp4');
  t.match(sts.calls.at(-1), { accessKeyId: 'AKIAROLECALLER000001', roleArn: role, externalId: 'ext-req' });

  // A wrong caller secret: STS refuses, the message names S3 and the bucket but no secret.
  const bad = createS3Backend(cfg({ accessKey: 'AKIAROLECALLER000001', secret: 'not-the-caller-secret', assumeRoleArn: role, stsEndpoint: sts.endpoint }));
  t.teardown(() => bad.close());
  const e = await expectStorageError(bad.upload(f.path, 'role/d.mp4', 'video/mp4'));
  t.match(e.message, /S3 upload failed: S3 bucket "egress".*SignatureDoesNotMatch/);
  t.notOk(e.message.includes('not-the-caller-secret'));
});

t.test('proxy_config: requests go through an HTTP CONNECT proxy with basic auth', async (t) => {
  const proxy = await startProxy({ username: 'egress', password: 'proxy-pass-123' });
  t.teardown(() => proxy.stop());
  const f = files.make(6 * 1024 * 1024);
  const b = createS3Backend(cfg({ proxy: { url: proxy.url, username: 'egress', password: 'proxy-pass-123' } }));
  t.teardown(() => b.close());
  await b.upload(f.path, 'proxied/a.mp4', 'video/mp4');
  t.ok(proxy.connects.length >= 1, `tunnels opened: ${proxy.connects.length}`);
  t.ok(proxy.connects.every((c) => c === `127.0.0.1:${s3.port}`));
  t.equal(sha256(await download('egress', 'proxied/a.mp4')), sha256(f.data));

  // A request-supplied proxy (livekit ProxyConfig) is carried through resolveStorage.
  const before = proxy.connects.length;
  const target = resolveStorage(
    new S3Upload({ accessKey: S3RVER_ACCESS_KEY, secret: S3RVER_SECRET, endpoint: s3.endpoint, bucket: 'egress', forcePathStyle: true, region: 'us-east-1', proxy: new ProtoProxy({ url: proxy.url, username: 'egress', password: 'proxy-pass-123' }) }),
    { storage: undefined, disallowLocalStorage: false, localOutputDir: tmp },
  );
  const viaRequest = await backendFor(target);
  t.teardown(() => viaRequest.close?.());
  await viaRequest.upload(f.path, 'proxied/b.mp4', 'video/mp4');
  t.ok(proxy.connects.length > before, 'request proxy used');

  const wrong = createS3Backend(cfg({ proxy: { url: proxy.url, username: 'egress', password: 'wrong-proxy-pass' } }));
  t.teardown(() => wrong.close());
  const e = await expectStorageError(wrong.upload(f.path, 'proxied/c.mp4', 'video/mp4'));
  t.ok(proxy.refused >= 1, 'the proxy refused the wrong password');
  t.match(e.message, /^S3 upload failed: S3 bucket "egress" at http:\/\/127\.0\.0\.1:\d+: Proxy Authentication Required \(HTTP 407\)$/);
  t.notOk(e.message.includes('wrong-proxy-pass'), e.message);
});

t.test('credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_DEFAULT_REGION when the config has none', async (t) => {
  const f = files.make(1000);
  process.env.AWS_ACCESS_KEY_ID = S3RVER_ACCESS_KEY;
  process.env.AWS_SECRET_ACCESS_KEY = S3RVER_SECRET;
  process.env.AWS_DEFAULT_REGION = 'eu-west-1';
  t.teardown(() => {
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    delete process.env.AWS_DEFAULT_REGION;
  });
  const b = createS3Backend(cfg({ accessKey: '', secret: '', region: '' }), { generatePresignedUrl: true });
  t.teardown(() => b.close());
  const r = await b.upload(f.path, 'env/a.mp4', 'video/mp4');
  t.match(new URL(r.location).searchParams.get('X-Amz-Credential'), /^S3RVER\/\d{8}\/eu-west-1\/s3\/aws4_request$/);
});

t.test('no credentials anywhere: fails quickly with a clear error', async (t) => {
  const f = files.make(1000);
  const b = createS3Backend(cfg({ accessKey: '', secret: '' }));
  t.teardown(() => b.close());
  const started = Date.now();
  const e = await expectStorageError(b.upload(f.path, 'none/a.mp4', 'video/mp4'));
  t.ok(Date.now() - started < 8000, `bounded (${Date.now() - started} ms)`);
  t.match(e.message, /^S3 upload failed: S3 bucket "egress".*(credential|Credential)/);
});

t.test('retries: max_retries is the SDK attempt count; connection refused is transient', async (t) => {
  const strategy = new S3RetryStrategy(3, 10, 40);
  let token = await strategy.acquireInitialRetryToken();
  token = await strategy.refreshRetryTokenForRetry(token, { errorType: 'TRANSIENT' });
  t.equal(token.getRetryCount(), 1);
  t.ok(token.getRetryDelay() >= 5 && token.getRetryDelay() <= 10);
  token = await strategy.refreshRetryTokenForRetry(token, { errorType: 'CLIENT_ERROR', error: { $metadata: { httpStatusCode: 409 } } });
  await t.rejects(strategy.refreshRetryTokenForRetry(token, { errorType: 'TRANSIENT' }), 'three attempts in all');
  await t.rejects(strategy.refreshRetryTokenForRetry(await strategy.acquireInitialRetryToken(), { errorType: 'CLIENT_ERROR', error: { $metadata: { httpStatusCode: 403 } } }), '403 is final');

  const f = files.make(1000);
  await s3.down();
  t.teardown(() => s3.up());
  const b = createS3Backend(cfg({ maxRetries: 3, minRetryDelayMs: 100, maxRetryDelayMs: 100 }));
  t.teardown(() => b.close());
  const started = Date.now();
  const e = await expectStorageError(b.upload(f.path, 'down/a.mp4', 'video/mp4'));
  t.ok(Date.now() - started >= 100, 'the SDK retried before giving up');
  t.match(e.message, /^S3 upload failed: S3 bucket "egress" at .*ECONNREFUSED/);
  t.equal(e.transient, true);
  t.ok(e instanceof EgressError);
  t.ok(readFileSync(f.path).equals(f.data), 'local file untouched');
});

// The emulator's own guarantee, which the HLS suite's live playlist checks lean on: an object
// rewritten while it is being read is read whole, in one version or the other, as on S3.
t.test('the emulator: an object rewritten while read is read whole, never a short body', async (t) => {
  const client = reader();
  t.teardown(() => client.destroy());
  const versions = [Buffer.alloc(200_000, 'a'), Buffer.alloc(50_000, 'b')];
  const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<'stalled'>((r) => setTimeout(() => r('stalled'), ms).unref())]);
  await client.send(new PutObjectCommand({ Bucket: 'egress', Key: 'rewritten/index.m3u8', Body: versions[0] }));
  const reads: Array<Promise<string>> = [];
  for (let i = 0; i < 40; i++) {
    const put = client.send(new PutObjectCommand({ Bucket: 'egress', Key: 'rewritten/index.m3u8', Body: versions[i % 2] }));
    reads.push(
      within(
        client.send(new GetObjectCommand({ Bucket: 'egress', Key: 'rewritten/index.m3u8' })).then(async (r) => {
          const body = Buffer.from(await r.Body!.transformToByteArray());
          return versions.some((v) => v.equals(body)) ? 'whole' : `a torn body of ${body.length} bytes`;
        }),
        10_000,
      ),
    );
    await put;
  }
  const outcomes = await Promise.all(reads);
  t.same(outcomes.filter((o) => o !== 'whole'), [], 'every read got one whole version');
});
