// Ali OSS back-end (ali-oss 6.23.0) against the signature-checking OSS server of the rig.
import { createHash, randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import t from 'tap';
import type { AliOssConfig } from '../../shared/src/config/types.ts';
import { aliOssLocation, createAliOssBackend, OSS_PART_SIZE } from '../../handler/src/upload/alioss.ts';
import { StorageError } from '../../handler/src/upload/redact-error.ts';
import { makeTmpDir } from '../rig/process.ts';
import { ossStringToSign, startOssServer } from '../rig/storage/oss-server.ts';

const MiB = 1024 * 1024;
const server = await startOssServer({ buckets: ['egress', 'egress-override'] });
const tmp = makeTmpDir('upload-alioss');
t.teardown(async () => {
  await server.stop();
  rmSync(tmp, { recursive: true, force: true });
});

function file(name: string, size: number): { path: string; data: Buffer } {
  const data = randomBytes(size);
  const path = join(tmp, name);
  writeFileSync(path, data);
  return { path, data };
}
const sha = (b: Buffer | undefined) => (b ? createHash('sha256').update(b).digest('hex') : 'missing');

const config = (over: Partial<AliOssConfig> = {}): AliOssConfig => ({
  accessKey: server.accessKey,
  secret: server.secret,
  region: 'oss-cn-shanghai',
  endpoint: server.endpoint,
  bucket: 'egress',
  ...over,
});

const recording = file('recording.mp4', 3 * MiB + 17);
const large = file('large.mp4', 21 * MiB + 4099);

t.test('the server computes the same string to sign as ali-oss', async (t) => {
  const signUtils = createRequire(import.meta.url)('ali-oss/lib/common/signUtils.js') as {
    buildCanonicalString(method: string, resource: string, req: { headers: Record<string, string>; parameters?: unknown }): string;
  };
  const headers = {
    'x-oss-date': 'Tue, 24 Nov 2026 12:00:00 GMT',
    'Content-Type': 'video/mp4',
    'Content-MD5': 'abc==',
    'x-oss-meta-b': ' 2 ',
    'X-OSS-Meta-A': '1',
  };
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  t.equal(
    ossStringToSign('PUT', lower, 'egress', 'a/b é.mp4', new URLSearchParams('uploadId=U1&partNumber=3&foo=bar')),
    signUtils.buildCanonicalString('PUT', '/egress/a/b é.mp4', { headers, parameters: { uploadId: 'U1', partNumber: 3 } }),
  );
  t.equal(
    ossStringToSign('POST', lower, 'egress', 'k', new URLSearchParams('uploads=')),
    signUtils.buildCanonicalString('POST', '/egress/k', { headers, parameters: 'uploads' }),
  );
});

t.test('a recording-sized file: one signed PUT, byte-identical, Go-style location', async (t) => {
  const backend = createAliOssBackend(config());
  t.equal(backend.description, 'Ali OSS bucket "egress"');
  t.equal(backend.kind, 'AliOSS');
  const before = server.requests.length;
  const key = 'rooms/room 1/recording é.mp4';
  const result = await backend.upload(recording.path, key, 'video/mp4');
  t.same(result, {
    location: `https://egress.127.0.0.1:${server.port}/rooms/room%201/recording%20%C3%A9.mp4`,
    size: recording.data.length,
  });
  const stored = server.object('egress', key);
  t.equal(sha(stored?.data), sha(recording.data), 'stored bytes are identical');
  t.equal(stored?.contentType, 'video/mp4');
  t.same(server.requests.slice(before), [`PUT /egress/${key}`], 'a single PUT');
  t.same(server.rejected, [], 'every signature verified');
});

t.test('a file above 20 MB goes up as a signed multipart upload', async (t) => {
  const backend = createAliOssBackend(config());
  const before = server.requests.length;
  const result = await backend.upload(large.path, 'big/large.mp4', 'video/mp4');
  t.equal(result.size, large.data.length);
  t.equal(result.location, `https://egress.127.0.0.1:${server.port}/big/large.mp4`);
  t.equal(sha(server.object('egress', 'big/large.mp4')?.data), sha(large.data), 'assembled bytes are identical');
  const reqs = server.requests.slice(before);
  const parts = reqs.filter((r) => /^PUT \/egress\/big\/large\.mp4\?partNumber=\d+&uploadId=/.test(r));
  t.equal(reqs[0], 'POST /egress/big/large.mp4?uploads=', 'InitiateMultipartUpload first');
  t.equal(parts.length, Math.ceil(large.data.length / OSS_PART_SIZE), 'one UploadPart per 5 MiB');
  t.match(reqs.at(-1), /^POST \/egress\/big\/large\.mp4\?uploadId=/, 'CompleteMultipartUpload last');
  t.equal(server.openUploads(), 0);
  t.same(server.rejected, []);
});

t.test('a failed part aborts the multipart upload', async (t) => {
  const backend = createAliOssBackend(config());
  server.failPart = 3;
  t.teardown(() => {
    server.failPart = undefined;
  });
  const err = await backend.upload(large.path, 'big/failing.mp4', 'video/mp4').then(
    () => undefined,
    (e: unknown) => e,
  );
  t.type(err, StorageError);
  t.match((err as Error).message, /^AliOSS upload failed: Ali OSS bucket "egress": .*InternalError/);
  t.equal(server.object('egress', 'big/failing.mp4'), undefined);
  t.equal(server.openUploads(), 0, 'no upload left open');
  t.match(server.requests.at(-1), /^DELETE \/egress\/big\/failing\.mp4\?uploadId=/, 'AbortMultipartUpload sent last');
  t.match(server.rejected, [/^InternalError: PUT \/big\/failing\.mp4\?partNumber=3&/], 'no part arrived after the abort');
  t.equal(server.rejected.length, 1);
  server.rejected.length = 0;
});

t.test('a per-request override to another bucket writes there only', async (t) => {
  const backend = createAliOssBackend(config({ bucket: 'egress-override' }));
  t.equal(backend.description, 'Ali OSS bucket "egress-override"');
  const result = await backend.upload(recording.path, 'override/r.mp4', 'video/mp4');
  t.equal(result.location, `https://egress-override.127.0.0.1:${server.port}/override/r.mp4`);
  t.equal(sha(server.object('egress-override', 'override/r.mp4')?.data), sha(recording.data));
  t.equal(server.object('egress', 'override/r.mp4'), undefined);
});

t.test('a wrong secret fails the signature check; the error names the bucket, not the secret', async (t) => {
  const secret = 'wrong-secret-5f2b9c1d7e';
  for (const [name, f] of [['put', recording], ['multipart', large]] as const) {
    server.rejected.length = 0;
    const backend = createAliOssBackend(config({ secret }));
    const err = await backend.upload(f.path, `denied/${name}.mp4`, 'video/mp4').then(
      () => undefined,
      (e: unknown) => e,
    );
    t.type(err, StorageError, name);
    const msg = (err as Error).message;
    t.match(msg, /^AliOSS upload failed: Ali OSS bucket "egress": SignatureDoesNotMatch/, name);
    t.notOk(msg.includes(secret), `${name}: secret not in the message`);
    t.equal((err as StorageError).status, 403);
    t.equal((err as StorageError).transient, false);
    t.match(server.rejected, [/^SignatureDoesNotMatch: /], `${name}: the server refused the signature`);
    t.equal(server.object('egress', `denied/${name}.mp4`), undefined);
  }
  server.rejected.length = 0;
});

t.test('an unknown access key is refused too', async (t) => {
  const backend = createAliOssBackend(config({ accessKey: 'LTAI-unknown' }));
  await t.rejects(backend.upload(recording.path, 'denied/key.mp4', 'video/mp4'), {
    message: /^AliOSS upload failed: Ali OSS bucket "egress": InvalidAccessKeyId/,
  });
  server.rejected.length = 0;
});

t.test('missing credentials are a clear error without a request', async (t) => {
  const before = server.requests.length + server.rejected.length;
  const backend = createAliOssBackend(config({ secret: '' }));
  await t.rejects(backend.upload(recording.path, 'x.mp4', 'video/mp4'), {
    message: 'AliOSS upload failed: Ali OSS bucket "egress": access_key and secret are required',
  });
  t.equal(server.requests.length + server.rejected.length, before);
});

t.test('server down for the whole upload: rejects naming the back-end; back up: works, data kept', async (t) => {
  const backend = createAliOssBackend(config());
  await server.down();
  for (const f of [recording, large]) {
    const err = await backend.upload(f.path, 'outage.mp4', 'video/mp4').then(
      () => undefined,
      (e: unknown) => e,
    );
    t.type(err, StorageError);
    t.match((err as Error).message, /^AliOSS upload failed: Ali OSS bucket "egress": .*ECONNREFUSED/);
    t.equal((err as StorageError).transient, true, 'a connection failure is transient');
  }
  await server.up();
  await backend.upload(recording.path, 'outage.mp4', 'video/mp4');
  t.equal(sha(server.object('egress', 'outage.mp4')?.data), sha(recording.data));
  t.equal(sha(server.object('egress', 'big/large.mp4')?.data), sha(large.data), 'earlier objects survived');
});

t.test('location follows Go (livekit/storage location_test.go)', async (t) => {
  const cases: [string, string, string][] = [
    ['oss-region.aliyuncs.com', 'foo.mp4', 'https://mybucket.oss-region.aliyuncs.com/foo.mp4'],
    ['https://oss-region.aliyuncs.com', 'foo.mp4', 'https://mybucket.oss-region.aliyuncs.com/foo.mp4'],
    ['http://oss-region.aliyuncs.com', 'foo.mp4', 'https://mybucket.oss-region.aliyuncs.com/foo.mp4'],
    ['oss-region.aliyuncs.com', 'folder/sub/foo.mp4', 'https://mybucket.oss-region.aliyuncs.com/folder/sub/foo.mp4'],
    ['oss-region.aliyuncs.com', '/foo.mp4', 'https://mybucket.oss-region.aliyuncs.com/foo.mp4'],
    ['oss-region.aliyuncs.com', 'folder/my file.mp4', 'https://mybucket.oss-region.aliyuncs.com/folder/my%20file.mp4'],
    ['oss-region.aliyuncs.com', 'café/résumé.mp4', 'https://mybucket.oss-region.aliyuncs.com/caf%C3%A9/r%C3%A9sum%C3%A9.mp4'],
  ];
  for (const [endpoint, path, want] of cases) t.equal(aliOssLocation('mybucket', endpoint, path), want, `${endpoint} ${path}`);
});
