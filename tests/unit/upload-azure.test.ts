// The Azure Blob back-end against Azurite (blob service) on 127.0.0.1. Every config carries the
// Azurite endpoint; nothing may reach *.blob.core.windows.net.
for (const k of ['AZURE_STORAGE_ACCOUNT', 'AZURE_STORAGE_KEY', 'AZURE_STORAGE_CONNECTION_STRING']) delete process.env[k];
import t from 'tap';
import { scratchFiles, sha256 } from '../support/files.ts';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { AzureBlobUpload } from '@livekit/protocol';
import type { AzureConfig } from '@egress/shared/config/types.ts';
import { azureEndpoint, createAzureBackend } from '../../handler/src/upload/azure.ts';
import { StorageError } from '../../handler/src/upload/redact-error.ts';
import { backendFor, resolveStorage } from '../../handler/src/upload/storage.ts';
import { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite, type AzuriteServer } from '../rig/storage/azurite.ts';

const files = scratchFiles('upload-azure');
const tmp = files.dir;
t.teardown(files.remove);

let az: AzuriteServer;
t.before(async () => {
  az = await startAzurite({ containers: ['rec', 'other'] });
});
t.teardown(() => az?.stop());


const cfg = (over: Partial<AzureConfig> = {}): AzureConfig => ({
  accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY, containerName: 'rec', endpoint: az.endpoint, ...over,
});
const fast = { retry: { maxTries: 2, retryDelayMs: 50, maxRetryDelayMs: 100 } };

async function download(container: string, name: string): Promise<Buffer> {
  return az.client().getContainerClient(container).getBlockBlobClient(name).downloadToBuffer();
}

async function expectStorageError(p: Promise<unknown>): Promise<StorageError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof StorageError) return err;
    throw err;
  }
  throw new Error('expected the upload to fail');
}

t.test('upload → download: byte-identical, content type, plain location', async (t) => {
  const f = files.make(300_000);
  const b = createAzureBackend(cfg());
  const r = await b.upload(f.path, 'rooms/r1/out.mp4', 'video/mp4');
  t.equal(r.size, f.data.length);
  t.equal(r.location, `${az.endpoint}/rec/rooms/r1/out.mp4`);
  t.equal(sha256(await download('rec', 'rooms/r1/out.mp4')), sha256(f.data));
  const props = await az.client().getContainerClient('rec').getBlockBlobClient('rooms/r1/out.mp4').getProperties();
  t.equal(props.contentType, 'video/mp4');
  t.ok(existsSync(f.path), 'the back-end never deletes the local file');
  t.equal(azureEndpoint({ accountName: 'acct', accountKey: 'k', containerName: 'c' }, 'acct'), 'https://acct.blob.core.windows.net', 'default endpoint');
});

t.test('a 21 MiB file goes up in 4 MiB blocks', async (t) => {
  const f = files.make(21 * 1024 * 1024);
  const b = createAzureBackend(cfg());
  await b.upload(f.path, 'big/file.mp4', 'video/mp4');
  const blocks = await az.client().getContainerClient('rec').getBlockBlobClient('big/file.mp4').getBlockList('committed');
  t.equal(blocks.committedBlocks?.length, 6, 'six blocks');
  t.ok(blocks.committedBlocks?.slice(0, 5).every((b) => b.size === 4 * 1024 * 1024), '4 MiB each but the last');
  t.equal(sha256(await download('rec', 'big/file.mp4')), sha256(f.data), 'byte-identical');
});

t.test('per-request Azure target overrides the configured container', async (t) => {
  const f = files.make(5000);
  const config = { storage: { prefix: '', generatePresignedUrl: false, azure: cfg() }, disallowLocalStorage: false, localOutputDir: tmp };
  const target = resolveStorage(new AzureBlobUpload({ accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY, containerName: 'other' }), config);
  t.same(target.azure, { accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY, containerName: 'other', endpoint: az.endpoint }, 'same account: the server endpoint carries over');
  const r = await (await backendFor(target)).upload(f.path, 'req/a.ogg', 'audio/ogg');
  t.equal(r.location, `${az.endpoint}/other/req/a.ogg`);
  t.equal(sha256(await download('other', 'req/a.ogg')), sha256(f.data));
  t.notOk(await az.client().getContainerClient('rec').getBlockBlobClient('req/a.ogg').exists(), 'nothing in the configured container');
});

t.test('wrong key: a clear error naming Azure and the container, never the key', async (t) => {
  const f = files.make(1000);
  const wrongKey = randomBytes(64).toString('base64');
  const e = await expectStorageError(createAzureBackend(cfg({ accountKey: wrongKey }), fast).upload(f.path, 'x.mp4', 'video/mp4'));
  t.match(e.message, /^Azure upload failed: Azure container "rec" at http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1: AuthorizationFailure: .*\(HTTP 403\)$/);
  t.notOk(e.message.includes(wrongKey) || String(e.stack).includes(wrongKey), 'key not in the error');
  t.equal(e.code, 'invalid_argument');
  t.equal(e.transient, false);
  const missing = await expectStorageError(createAzureBackend(cfg({ containerName: 'nope' }), fast).upload(f.path, 'x.mp4', 'video/mp4'));
  t.match(missing.message, /Azure container "nope".*ContainerNotFound/);
  const noCreds = await expectStorageError(createAzureBackend(cfg({ accountName: '', accountKey: '' })).upload(f.path, 'x.mp4', 'video/mp4'));
  t.match(noCreds.message, /^Azure upload failed: Azure container "rec" at .*: no account name\/key/);
});

t.test('generate_presigned_url: the location is a read-only SAS URL that works', async (t) => {
  const f = files.make(40_000);
  const r = await createAzureBackend(cfg(), { generatePresignedUrl: true }).upload(f.path, 'signed/a.mp4', 'video/mp4');
  const url = new URL(r.location);
  t.equal(url.origin + url.pathname, `${az.endpoint}/rec/signed/a.mp4`);
  t.equal(url.searchParams.get('sp'), 'r');
  const expires = Date.parse(url.searchParams.get('se') ?? '');
  t.ok(Math.abs(expires - (Date.now() + 7 * 24 * 3600_000)) < 120_000, 'valid 7 days');
  const res = await fetch(r.location);
  t.equal(res.status, 200);
  t.equal(sha256(Buffer.from(await res.arrayBuffer())), sha256(f.data));
  url.searchParams.set('sig', Buffer.alloc(32).toString('base64'));
  const forged = await fetch(url);
  await forged.arrayBuffer();
  t.equal(forged.status, 403, 'a forged SAS is refused');
});

t.test('AZURE_STORAGE_ACCOUNT / AZURE_STORAGE_KEY fill in a config without credentials', async (t) => {
  process.env.AZURE_STORAGE_ACCOUNT = AZURITE_ACCOUNT;
  process.env.AZURE_STORAGE_KEY = AZURITE_KEY;
  t.teardown(() => {
    delete process.env.AZURE_STORAGE_ACCOUNT;
    delete process.env.AZURE_STORAGE_KEY;
  });
  const f = files.make(1000);
  const r = await createAzureBackend(cfg({ accountName: '', accountKey: '' })).upload(f.path, 'env/a.mp4', 'video/mp4');
  t.equal(r.size, 1000);
  t.equal(sha256(await download('rec', 'env/a.mp4')), sha256(f.data));
});

t.test('Azurite down: a transient error naming Azure, the file untouched', async (t) => {
  const f = files.make(1000);
  await az.down();
  t.teardown(() => az.up());
  const e = await expectStorageError(createAzureBackend(cfg(), fast).upload(f.path, 'down/a.mp4', 'video/mp4'));
  t.match(e.message, /^Azure upload failed: Azure container "rec" at .*ECONNREFUSED/);
  t.equal(e.transient, true);
  t.ok(existsSync(f.path));
});
