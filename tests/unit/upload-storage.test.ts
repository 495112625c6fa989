// resolveStorage: the per-request override rules of egress-behaviour §5.4, and backendFor.
import t from 'tap';
import { AliOSSUpload, AzureBlobUpload, GCPUpload, ProxyConfig as ProtoProxy, S3Upload } from '@livekit/protocol';
import type { S3Config, StorageConfig } from '@egress/shared/config/types.ts';
import { EgressError } from '@egress/shared/errors.ts';
import { checkLocalStorageAllowed, LocalBackend } from '../../handler/src/upload/local.ts';
import { S3Backend } from '../../handler/src/upload/s3.ts';
import { AzureBackend } from '../../handler/src/upload/azure.ts';
import { ASSUME_ROLE_DISABLED, backendFor, isLocalTarget, resolveStorage, storageKey, type StorageResolveConfig } from '../../handler/src/upload/storage.ts';

const serverS3: S3Config = {
  accessKey: 'AKIASERVER0000000001', secret: 'server-secret', sessionToken: '', assumeRoleArn: '', assumeRoleExternalId: '',
  region: 'eu-west-1', endpoint: 'http://127.0.0.1:9', bucket: 'server-bucket', forcePathStyle: true,
  maxRetries: 7, maxRetryDelayMs: 9000, minRetryDelayMs: 300, metadata: { a: 'b' }, tagging: 't=1', contentDisposition: 'attachment',
};
const storage: StorageConfig = { prefix: 'pfx', generatePresignedUrl: true, s3: serverS3 };
const base = (over: Partial<StorageResolveConfig> = {}): StorageResolveConfig => ({ storage, disallowLocalStorage: false, localOutputDir: '/out', ...over });

/** The EgressError `fn` throws, as `<code>: <message>`. */
function thrown(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return `${(err as EgressError).code}: ${(err as Error).message}`;
  }
  return 'no error';
}

t.test('no request target: the server storage as it is', async (t) => {
  t.equal(resolveStorage(undefined, base()), storage);
  t.same(resolveStorage(undefined, base({ storage: undefined })), { prefix: '', generatePresignedUrl: false, localDir: '/out' });
  t.same(resolveStorage(undefined, base({ storage: { prefix: 'p', generatePresignedUrl: false } })), { prefix: 'p', generatePresignedUrl: false, localDir: '/out' });
  t.ok(isLocalTarget(resolveStorage(undefined, base({ storage: undefined }))));
  t.notOk(isLocalTarget(storage));
});

t.test('disallow_local_storage refuses local disk with the Go text', async (t) => {
  t.equal(thrown(() => resolveStorage(undefined, base({ storage: undefined, disallowLocalStorage: true }))), 'invalid_argument: request has missing or invalid field: output');
  t.equal(thrown(() => resolveStorage(undefined, base({ storage: { prefix: '', generatePresignedUrl: false }, disallowLocalStorage: true }))), 'invalid_argument: request has missing or invalid field: output');
  t.equal(resolveStorage(undefined, base({ disallowLocalStorage: true })), storage, 'a cloud target is fine');
  t.equal(checkLocalStorageAllowed({ disallowLocalStorage: true }, true)?.message, 'request has missing or invalid field: output');
  t.equal(checkLocalStorageAllowed({ disallowLocalStorage: true }, true)?.httpStatus, 400);
  t.equal(checkLocalStorageAllowed({ disallowLocalStorage: true }, false), undefined);
  t.equal(checkLocalStorageAllowed({ disallowLocalStorage: false }, true), undefined);
});

t.test('request S3: its own fields incl. proxy; only retry settings from the server; prefix/presign from the server', async (t) => {
  const req = new S3Upload({
    accessKey: 'AKIAREQUEST000000001', secret: 'req-secret', sessionToken: 'tok', region: 'us-west-2', endpoint: 'https://s3.example.com',
    bucket: 'req-bucket', forcePathStyle: false, metadata: { m: '1' }, tagging: 'x=y', contentDisposition: 'inline; filename="a"',
    proxy: new ProtoProxy({ url: 'http://proxy:3128', username: 'u', password: 'p' }),
  });
  const target = resolveStorage(req, base());
  t.same(target, {
    prefix: 'pfx', generatePresignedUrl: true,
    s3: {
      accessKey: 'AKIAREQUEST000000001', secret: 'req-secret', sessionToken: 'tok', assumeRoleArn: '', assumeRoleExternalId: '',
      region: 'us-west-2', endpoint: 'https://s3.example.com', bucket: 'req-bucket', forcePathStyle: false,
      proxy: { url: 'http://proxy:3128', username: 'u', password: 'p' },
      maxRetries: 7, maxRetryDelayMs: 9000, minRetryDelayMs: 300,
      metadata: { m: '1' }, tagging: 'x=y', contentDisposition: 'inline; filename="a"',
    },
  });
  t.not(target.s3!.metadata, req.metadata, 'metadata copied, not shared');
});

t.test('request S3 without server retry settings: 5 / 5 s / 100 ms', async (t) => {
  const zero = { ...serverS3, maxRetries: 0, maxRetryDelayMs: 0, minRetryDelayMs: 0 };
  for (const s of [undefined, { prefix: '', generatePresignedUrl: false }, { prefix: '', generatePresignedUrl: false, s3: zero }]) {
    const target = resolveStorage(new S3Upload({ accessKey: 'k', secret: 's', bucket: 'b' }), base({ storage: s }));
    t.match(target.s3, { maxRetries: 5, maxRetryDelayMs: 5000, minRetryDelayMs: 100, proxy: undefined });
    t.equal(target.prefix, '');
    t.equal(target.generatePresignedUrl, false);
  }
});

t.test('AssumeRole rules', async (t) => {
  const role = { accessKey: 'AKIAROLEKEY000000001', secret: 'role-secret', arn: 'arn:aws:iam::1:role/default', externalId: 'ext-default' };
  // Empty ARN → the server's ARN and external id; the request's keys assume it.
  let s3 = resolveStorage(new S3Upload({ accessKey: 'k', secret: 's', bucket: 'b' }), base({ s3AssumeRole: role })).s3!;
  t.match(s3, { accessKey: 'k', secret: 's', assumeRoleArn: role.arn, assumeRoleExternalId: 'ext-default' });
  // The request's own ARN wins, with its external id.
  s3 = resolveStorage(new S3Upload({ accessKey: 'k', secret: 's', bucket: 'b', assumeRoleArn: 'arn:req', assumeRoleExternalId: 'e' }), base({ s3AssumeRole: role })).s3!;
  t.match(s3, { accessKey: 'k', secret: 's', assumeRoleArn: 'arn:req', assumeRoleExternalId: 'e' });
  // ARN without keys → the server's s3_assume_role_key/secret.
  s3 = resolveStorage(new S3Upload({ bucket: 'b', assumeRoleArn: 'arn:req' }), base({ s3AssumeRole: role })).s3!;
  t.match(s3, { accessKey: role.accessKey, secret: 'role-secret', assumeRoleArn: 'arn:req' });
  // … and without server keys: PermissionDenied.
  t.equal(thrown(() => resolveStorage(new S3Upload({ bucket: 'b', assumeRoleArn: 'arn:req' }), base())), `permission_denied: ${ASSUME_ROLE_DISABLED}`);
  t.equal(thrown(() => resolveStorage(new S3Upload({ bucket: 'b' }), base({ s3AssumeRole: { ...role, accessKey: '' } }))), 'permission_denied: S3 upload using AssumeRole is disabled for this account');
  // No ARN anywhere: plain keys (or the default chain).
  s3 = resolveStorage(new S3Upload({ bucket: 'b' }), base()).s3!;
  t.match(s3, { accessKey: '', secret: '', assumeRoleArn: '' });
  // The STS endpoint (tests, private clouds) comes from the server config.
  s3 = resolveStorage(new S3Upload({ bucket: 'b', accessKey: 'k', secret: 's', assumeRoleArn: 'a' }), base({ storage: { ...storage, s3: { ...serverS3, stsEndpoint: 'http://127.0.0.1:1' } } })).s3!;
  t.equal(s3.stsEndpoint, 'http://127.0.0.1:1');
});

t.test('GCP, Azure, AliOSS copied verbatim', async (t) => {
  const gcp = resolveStorage(new GCPUpload({ credentials: '{"x":1}', bucket: 'g', proxy: new ProtoProxy({ url: 'http://p:1', username: 'a', password: 'b' }) }), base());
  t.same(gcp, { prefix: 'pfx', generatePresignedUrl: true, gcp: { credentialsJson: '{"x":1}', bucket: 'g', proxy: { url: 'http://p:1', username: 'a', password: 'b' } } });
  const az = resolveStorage(new AzureBlobUpload({ accountName: 'acct', accountKey: 'key', containerName: 'c' }), base());
  t.same(az, { prefix: 'pfx', generatePresignedUrl: true, azure: { accountName: 'acct', accountKey: 'key', containerName: 'c' } });
  const other = resolveStorage(new AzureBlobUpload({ accountName: 'acct2', accountKey: 'key', containerName: 'c' }), base({ storage: { prefix: '', generatePresignedUrl: false, azure: { accountName: 'acct', accountKey: 'k', containerName: 'x', endpoint: 'http://127.0.0.1:1/acct' } } }));
  t.equal(other.azure?.endpoint, undefined, "another account does not inherit the server's endpoint");
  const oss = resolveStorage(new AliOSSUpload({ accessKey: 'a', secret: 's', region: 'r', endpoint: 'oss.example.com', bucket: 'o' }), base());
  t.same(oss, { prefix: 'pfx', generatePresignedUrl: true, alioss: { accessKey: 'a', secret: 's', region: 'r', endpoint: 'oss.example.com', bucket: 'o' } });
});

t.test('storage keys and back-ends', async (t) => {
  t.equal(storageKey({ prefix: '' }, 'a/b.mp4'), 'a/b.mp4');
  t.equal(storageKey({ prefix: 'pre' }, 'a/b.mp4'), 'pre/a/b.mp4');
  t.equal(storageKey({ prefix: 'pre/' }, '/a.mp4'), 'pre/a.mp4');
  const s3 = await backendFor(storage);
  t.ok(s3 instanceof S3Backend);
  t.equal(s3.kind, 'S3');
  t.equal(s3.description, 'S3 bucket "server-bucket" at http://127.0.0.1:9');
  await s3.close?.();
  const az = await backendFor({ prefix: '', generatePresignedUrl: false, azure: { accountName: 'a', accountKey: 'k', containerName: 'c' } });
  t.ok(az instanceof AzureBackend);
  t.equal(az.description, 'Azure container "c" at https://a.blob.core.windows.net');
  const local = await backendFor({ prefix: '', generatePresignedUrl: false, localDir: '/x/y' });
  t.ok(local instanceof LocalBackend);
  t.equal(local.description, 'Local directory "/x/y"');
  t.equal((await backendFor({ prefix: '', generatePresignedUrl: false, gcp: { credentialsJson: '', bucket: 'g' } })).kind, 'GCP');
  t.equal((await backendFor({ prefix: '', generatePresignedUrl: false, alioss: { accessKey: 'a', secret: 's', region: '', endpoint: 'http://127.0.0.1:1', bucket: 'o' } })).kind, 'AliOSS');
});
