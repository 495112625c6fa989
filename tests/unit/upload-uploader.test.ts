// The uploader: retries over a window, backup storage, nothing deleted before it is stored, both
// storages failing, ordering and concurrency, local disk, and the manifest. s3rver is the primary
// where a real outage matters (down()/up() refuse connections on its port).
process.env.AWS_EC2_METADATA_DISABLED = 'true';
process.env.AWS_CONFIG_FILE = '/nonexistent/aws-config';
process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/aws-credentials';

import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { S3Config } from '@egress/shared/config/types.ts';
import type { StorageBackend, UploadResult } from '../../handler/src/upload/backend.ts';
import { createLocalBackend, moveFile } from '../../handler/src/upload/local.ts';
import { createS3Backend } from '../../handler/src/upload/s3.ts';
import { backendFor, resolveStorage } from '../../handler/src/upload/storage.ts';
import {
  contentTypeFor, createUploader, manifestJson, rfc3339, Uploader, UploadFailedError, writeManifest, type RetryPolicy,
} from '../../handler/src/upload/uploader.ts';
import { startS3, S3RVER_ACCESS_KEY, S3RVER_SECRET, type S3Server } from '../rig/storage/s3.ts';

const tmp = mkdtempSync(join(tmpdir(), 'upload-uploader-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

let s3: S3Server;
t.before(async () => {
  s3 = await startS3({ buckets: ['egress'] });
});
t.teardown(() => s3?.stop());

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
let fileNo = 0;
function makeFile(size = 2000, dir = tmp): { path: string; data: Buffer } {
  const data = randomBytes(size);
  const path = join(dir, `f${++fileNo}.bin`);
  writeFileSync(path, data);
  return { path, data };
}
const fresh = (name: string) => {
  const d = join(tmp, `${name}-${++fileNo}`);
  mkdirSync(d, { recursive: true });
  return d;
};

const s3cfg = (over: Partial<S3Config> = {}): S3Config => ({
  accessKey: S3RVER_ACCESS_KEY, secret: S3RVER_SECRET, sessionToken: '', assumeRoleArn: '', assumeRoleExternalId: '',
  region: 'us-east-1', endpoint: s3.endpoint, bucket: 'egress', forcePathStyle: true,
  maxRetries: 1, maxRetryDelayMs: 100, minRetryDelayMs: 50, metadata: {}, tagging: '', contentDisposition: '',
  ...over,
});
const quickRetry: Partial<RetryPolicy> = { attempts: 2, initialDelayMs: 50, maxDelayMs: 50, windowMs: 1000 };

async function download(key: string): Promise<Buffer | undefined> {
  const client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: S3RVER_SECRET } });
  try {
    const out = await client.send(new GetObjectCommand({ Bucket: 'egress', Key: key }));
    return Buffer.from(await out.Body!.transformToByteArray());
  } catch {
    return undefined;
  } finally {
    client.destroy();
  }
}

/** A scripted back-end: per-path delays and failures, a log of starts and ends. */
class FakeBackend implements StorageBackend {
  readonly kind = 'S3' as const;
  readonly description = 'S3 bucket "fake"';
  readonly log: string[] = [];
  inFlight = 0;
  maxInFlight = 0;
  calls = 0;
  constructor(
    private readonly delayMs: (key: string) => number = () => 20,
    private readonly fail: (key: string, attempt: number) => Error | undefined = () => undefined,
  ) {}

  async upload(localPath: string, key: string): Promise<UploadResult> {
    this.calls++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.log.push(`start ${key}`);
    try {
      await new Promise((r) => setTimeout(r, this.delayMs(key)));
      const err = this.fail(key, this.calls);
      if (err) throw err;
      // Still on disk when the upload is confirmed: nothing was deleted early.
      if (!existsSync(localPath)) throw new Error(`${localPath} vanished during its upload`);
      this.log.push(`end ${key}`);
      return { location: `fake://${key}`, size: statSync(localPath).size };
    } finally {
      this.inFlight--;
    }
  }
}
const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });

t.test('S3 down for the whole upload: the backup takes it, flagged, once', async (t) => {
  const backupDir = fresh('backup');
  let reported = 0;
  const uploader = new Uploader({
    primary: { backend: createS3Backend(s3cfg()), prefix: 'pre' },
    backup: { backend: createLocalBackend(backupDir) },
    retry: quickRetry,
    onBackupUsed: () => reported++,
  });
  t.teardown(() => uploader.close());
  await s3.down();
  t.teardown(() => s3.up());
  const f = makeFile();
  const r = await uploader.enqueue(f.path, 'room/a.mp4', 'video/mp4');
  t.equal(r.backupUsed, true);
  t.equal(r.location, join(backupDir, 'room/a.mp4'));
  t.equal(r.storagePath, 'room/a.mp4');
  t.ok(readFileSync(r.location).equals(f.data), 'the backup holds the bytes');
  t.notOk(existsSync(f.path), 'moved out of the tmp dir');
  const g = makeFile();
  const r2 = await uploader.enqueue(g.path, 'room/b.ts', 'video/mp2t');
  t.equal(r2.backupUsed, true, 'later files go straight to the backup (Go: sticky)');
  t.equal(reported, 1, 'onBackupUsed once');
  t.equal(uploader.backupUsed, true);
});

t.test('S3 down, then back within the retry window: stored on S3, no backup', async (t) => {
  const backupDir = fresh('backup');
  const uploader = new Uploader({
    primary: { backend: createS3Backend(s3cfg()) },
    backup: { backend: createLocalBackend(backupDir) },
    retry: { attempts: 4, initialDelayMs: 1000, maxDelayMs: 2000, windowMs: 10_000 },
    onBackupUsed: () => t.fail('backup must not be used'),
  });
  t.teardown(() => uploader.close());
  await s3.down();
  const f = makeFile(300_000);
  const upload = uploader.enqueue(f.path, 'flaky/a.mp4', 'video/mp4');
  await new Promise((r) => setTimeout(r, 700));
  await s3.up();
  const r = await upload;
  t.equal(r.backupUsed, false);
  t.equal(r.location, `${s3.endpoint}/egress/flaky/a.mp4`);
  t.equal(sha((await download('flaky/a.mp4'))!), sha(f.data));
  t.notOk(existsSync(f.path), 'deleted once stored');
  t.equal(uploader.backupUsed, false);
});

t.test('S3 down and the backup unwritable: the file stays, location is its path, both errors', async (t) => {
  const blocker = join(fresh('blocked'), 'file');
  writeFileSync(blocker, 'not a directory');
  const uploader = new Uploader({
    primary: { backend: createS3Backend(s3cfg({ secret: S3RVER_SECRET })) },
    backup: { backend: createLocalBackend(join(blocker, 'sub')) },
    retry: quickRetry,
  });
  t.teardown(() => uploader.close());
  await s3.down();
  t.teardown(() => s3.up());
  const f = makeFile();
  const err = await uploader.enqueue(f.path, 'lost/a.mp4', 'video/mp4').then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof UploadFailedError);
  const e = err as UploadFailedError;
  t.match(e.message, /^primary: S3 upload failed: S3 bucket "egress" at http:\/\/127\.0\.0\.1:\d+: connect ECONNREFUSED [\d.:]+\nbackup: Local upload failed: Local directory ".*\/file\/sub": ENOTDIR: not a directory.*$/);
  t.equal(e.code, 'invalid_argument');
  t.equal(e.httpStatus, 400);
  t.equal(e.location, f.path);
  t.ok(readFileSync(f.path).equals(f.data), 'the file is still there, intact');
  t.same(uploader.kept, [f.path]);
});

t.test('no backup: the primary error alone, the file kept', async (t) => {
  const uploader = new Uploader({ primary: { backend: createS3Backend(s3cfg({ bucket: 'missing' })) }, retry: quickRetry });
  t.teardown(() => uploader.close());
  const f = makeFile();
  const e = (await uploader.enqueue(f.path, 'x.mp4').catch((x: unknown) => x)) as UploadFailedError;
  t.match(e.message, /^S3 upload failed: S3 bucket "missing" at .*NoSuchBucket/);
  t.notOk(e.message.includes('primary:'));
  t.ok(existsSync(f.path));
});

t.test('transient errors are retried over the window; permanent ones are not', async (t) => {
  const flaky = new FakeBackend(() => 5, (_key, call) => (call < 3 ? refused() : undefined));
  const u1 = new Uploader({ primary: { backend: flaky }, retry: { attempts: 3, initialDelayMs: 20, maxDelayMs: 40, windowMs: 5000 } });
  const f = makeFile();
  t.equal((await u1.enqueue(f.path, 'a.ts')).backupUsed, false);
  t.equal(flaky.calls, 3);

  const denied = new FakeBackend(() => 5, () => Object.assign(new Error('Access Denied'), { $metadata: { httpStatusCode: 403 } }));
  const u2 = new Uploader({ primary: { backend: denied }, retry: { attempts: 5, initialDelayMs: 20, maxDelayMs: 40, windowMs: 5000 } });
  const g = makeFile();
  const e = (await u2.enqueue(g.path, 'b.ts').catch((x: unknown) => x)) as UploadFailedError;
  t.equal(denied.calls, 1, '403 is not retried');
  t.equal(e.message, 'S3 upload failed: S3 bucket "fake": Access Denied (HTTP 403)');

  const down = new FakeBackend(() => 5, () => refused());
  const u3 = new Uploader({ primary: { backend: down }, retry: { attempts: 10, initialDelayMs: 100, maxDelayMs: 100, windowMs: 350 } });
  const h = makeFile();
  const started = Date.now();
  await u3.enqueue(h.path, 'c.ts').catch(() => undefined);
  t.ok(down.calls >= 3 && down.calls <= 5, `the window bounds the tries (${down.calls})`);
  t.ok(Date.now() - started < 1500);
});

t.test('files sharing an order key upload one after another, in order; others run alongside', async (t) => {
  const delays: Record<string, number> = { 'hls/s1.ts': 120, 'hls/s2.ts': 10, 'hls/s3.ts': 60, 'hls/index.m3u8': 1, 'img/1.jpeg': 30, 'img/2.jpeg': 5 };
  const fake = new FakeBackend((k) => delays[k] ?? 10);
  const uploader = new Uploader({ primary: { backend: fake }, concurrency: 4 });
  const resolved: string[] = [];
  const go = (key: string, order?: string) => {
    const f = makeFile(100);
    return uploader.enqueue(f.path, key, contentTypeFor(key), order ? { order } : {}).then((r) => resolved.push(r.storagePath));
  };
  await Promise.all([go('hls/s1.ts', 'hls'), go('img/1.jpeg'), go('hls/s2.ts', 'hls'), go('img/2.jpeg'), go('hls/s3.ts', 'hls'), go('hls/index.m3u8', 'hls')]);
  const hls = fake.log.filter((l) => l.includes('hls/'));
  t.same(hls, ['start hls/s1.ts', 'end hls/s1.ts', 'start hls/s2.ts', 'end hls/s2.ts', 'start hls/s3.ts', 'end hls/s3.ts', 'start hls/index.m3u8', 'end hls/index.m3u8'], 'serial, in enqueue order');
  t.same(resolved.filter((k) => k.startsWith('hls/')), ['hls/s1.ts', 'hls/s2.ts', 'hls/s3.ts', 'hls/index.m3u8'], 'promises settle in order');
  t.ok(fake.log.indexOf('end img/1.jpeg') < fake.log.indexOf('end hls/s1.ts'), 'an unkeyed file is not held up by the group');
  t.equal(contentTypeFor('a/index.m3u8'), 'application/x-mpegurl');

  // A failed member does not stall its group.
  const failing = new FakeBackend(() => 5, (k) => (k === 'g/1.ts' ? new Error('boom') : undefined));
  const u2 = new Uploader({ primary: { backend: failing }, retry: quickRetry });
  const a = makeFile(10), b = makeFile(10);
  const [r1, r2] = await Promise.allSettled([u2.enqueue(a.path, 'g/1.ts', 'video/mp2t', { order: 'g' }), u2.enqueue(b.path, 'g/2.m3u8', 'application/x-mpegurl', { order: 'g' })]);
  t.equal(r1.status, 'rejected');
  t.equal(r2.status, 'fulfilled');
});

t.test('concurrency is bounded', async (t) => {
  const fake = new FakeBackend(() => 40);
  const uploader = new Uploader({ primary: { backend: fake }, concurrency: 4 });
  await Promise.all(Array.from({ length: 12 }, (_, i) => uploader.enqueue(makeFile(10).path, `c/${i}.jpeg`)));
  t.equal(fake.maxInFlight, 4);
  await uploader.drain();
});

t.test('a local file is deleted only once its upload is confirmed', async (t) => {
  // FakeBackend fails the upload if the file vanished before it returned.
  const fake = new FakeBackend(() => 30);
  const uploader = new Uploader({ primary: { backend: fake } });
  const f = makeFile();
  const p = uploader.enqueue(f.path, 'd/a.ts');
  await new Promise((r) => setTimeout(r, 10));
  t.ok(existsSync(f.path), 'still there while uploading');
  await p;
  t.notOk(existsSync(f.path), 'gone after');
  const keep = makeFile();
  await uploader.enqueue(keep.path, 'd/b.mp4', 'video/mp4', { deleteAfterUpload: false });
  t.ok(existsSync(keep.path), 'deleteAfterUpload:false keeps it');
  const failing = new Uploader({ primary: { backend: new FakeBackend(() => 5, () => new Error('nope')) } });
  const g = makeFile();
  await failing.enqueue(g.path, 'd/c.ts').catch(() => undefined);
  t.ok(existsSync(g.path), 'a failed upload never deletes');
});

t.test('no storage configured: the file moves to local_output_dir/<path>', async (t) => {
  const out = fresh('out');
  const target = resolveStorage(undefined, { storage: undefined, disallowLocalStorage: false, localOutputDir: out });
  const uploader = await createUploader(target, undefined);
  const f = makeFile(5000);
  const r = await uploader.enqueue(f.path, 'rooms/r1/a.mp4', 'video/mp4');
  t.equal(r.location, join(out, 'rooms/r1/a.mp4'));
  t.ok(readFileSync(r.location).equals(f.data));
  t.notOk(existsSync(f.path));
  t.equal(statSync(join(out, 'rooms')).mode & 0o777, 0o755);

  // Refused move (destination parent is a file): the source stays.
  const blocker = join(out, 'blocker');
  writeFileSync(blocker, 'x');
  const g = makeFile();
  const e = (await uploader.enqueue(g.path, 'blocker/x.mp4').catch((x: unknown) => x)) as UploadFailedError;
  t.match(e.message, /^Local upload failed: Local directory ".*": (ENOTDIR|EEXIST)/);
  t.ok(existsSync(g.path));
});

t.test('moveFile across file systems (copy, rename into place, unlink)', { skip: !existsSync('/dev/shm') || statSync('/dev/shm').dev === statSync(tmp).dev ? 'no second file system' : false }, async (t) => {
  const src = makeFile(100_000);
  const destDir = mkdtempSync('/dev/shm/egress-move-');
  t.teardown(() => rmSync(destDir, { recursive: true, force: true }));
  await moveFile(src.path, join(destDir, 'a.bin'));
  t.ok(readFileSync(join(destDir, 'a.bin')).equals(src.data));
  t.notOk(existsSync(src.path));
});

t.test('backup_storage as a config storage block behaves the same (S3 primary refused, S3 backup fine)', async (t) => {
  const backup = { prefix: 'backup', generatePresignedUrl: false, s3: s3cfg() };
  const target = { prefix: '', generatePresignedUrl: false, s3: s3cfg({ endpoint: 'http://127.0.0.1:1' }) };
  const uploader = await createUploader(target, backup, { retry: quickRetry });
  t.teardown(() => uploader.close());
  const f = makeFile();
  const r = await uploader.enqueue(f.path, 'x/a.mp4', 'video/mp4');
  t.equal(r.backupUsed, true);
  t.equal(r.key, 'backup/x/a.mp4');
  t.equal(sha((await download('backup/x/a.mp4'))!), sha(f.data));
});

t.test('credentials never leak into errors or logs', async (t) => {
  const secret = 'Zm9vYmFyL3NlY3JldC9rZXkvdmFsdWUxMjM0NTY3';
  const lines: string[] = [];
  const logger = { debug: (m: string, x?: object) => lines.push(m + JSON.stringify(x)), info: (m: string, x?: object) => lines.push(m + JSON.stringify(x)), warn: (m: string, x?: object) => lines.push(m + JSON.stringify(x)) };
  // A foreign back-end that echoes its secret in the error text.
  const leaky: StorageBackend = {
    kind: 'GCP', description: 'GCS bucket "g"',
    upload: async () => {
      throw new Error(`request to https://storage.example/o?X-Goog-Signature=abcdef failed with key ${secret}`);
    },
  };
  const uploader = new Uploader({ primary: { backend: leaky }, secrets: [secret], logger, retry: quickRetry });
  const f = makeFile();
  const e = (await uploader.enqueue(f.path, 'a.mp4').catch((x: unknown) => x)) as UploadFailedError;
  t.match(e.message, /^GCP upload failed: GCS bucket "g": request to https:\/\/storage\.example\/o\?X-Goog-Signature=\{redacted\} failed with key \{redacted\}$/);
  t.notOk(lines.join('\n').includes(secret), 'logs clean');
  t.ok(lines.length > 0);
  t.notOk(JSON.stringify({ ...e, message: e.message }).includes(secret));

  // Backup via a config block: its account key is scrubbed too (targetSecrets).
  const wrongKey = 'v3ryS3cretAcc0untKeyThatShouldNeverAppear==';
  const up = await createUploader({ prefix: '', generatePresignedUrl: false, s3: s3cfg({ endpoint: 'http://127.0.0.1:1', secret: wrongKey }) }, undefined, { retry: quickRetry, logger });
  const g = makeFile();
  const e2 = (await up.enqueue(g.path, 'a.mp4').catch((x: unknown) => x)) as UploadFailedError;
  t.notOk(e2.message.includes(wrongKey));
  t.notOk(lines.join('\n').includes(wrongKey));
  await up.close();
});

t.test('manifest: Go key order, empty keys left out, trailing newline; uploaded next to the files', async (t) => {
  const json = manifestJson({
    egress_id: 'EG_abc', room_id: 'RM_1', room_name: 'room <1> & co', url: '', started_at: 1732000000123456789n, ended_at: 0n,
    track_id: 'TR_1', files: [{ filename: 'a.mp4', location: 'https://b.s3.amazonaws.com/a.mp4' }],
    playlists: [], images: [{ filename: 'i_00001.jpeg', timestamp: new Date('2026-11-24T12:00:00.120Z'), location: 'x' }],
  });
  t.equal(json, '{"egress_id":"EG_abc","room_id":"RM_1","room_name":"room <1> & co","started_at":1732000000123456789,"track_id":"TR_1","files":[{"filename":"a.mp4","location":"https://b.s3.amazonaws.com/a.mp4"}],"images":[{"filename":"i_00001.jpeg","timestamp":"2026-11-24T12:00:00.12Z","location":"x"}]}\n');
  t.equal(manifestJson({}), '{}\n');
  t.equal(rfc3339(new Date('2026-01-01T00:00:00.000Z')), '2026-01-01T00:00:00Z');
  t.equal(manifestJson({ playlists: [{ location: 'p', segments: [{ filename: 's', location: '' }] }] }), '{"playlists":[{"location":"p","segments":[{"filename":"s"}]}]}\n');

  const uploader = new Uploader({ primary: { backend: await backendFor({ prefix: '', generatePresignedUrl: false, s3: s3cfg() }), prefix: 'pfx' } });
  t.teardown(() => uploader.close());
  const local = join(fresh('manifest'), 'EG_abc.json');
  const location = await writeManifest(uploader, { egress_id: 'EG_abc', room_name: 'r' }, local, 'rooms/r/EG_abc.json');
  t.equal(location, `${s3.endpoint}/egress/pfx/rooms/r/EG_abc.json`);
  t.equal((await download('pfx/rooms/r/EG_abc.json'))?.toString(), '{"egress_id":"EG_abc","room_name":"r"}\n');

  const failing = new Uploader({ primary: { backend: new FakeBackend(() => 1, () => new Error('down')) } });
  const warned: string[] = [];
  t.equal(await writeManifest(failing, { egress_id: 'x' }, join(fresh('manifest'), 'x.json'), 'x.json', { logger: { debug: () => 0, info: () => 0, warn: (m) => warned.push(m) } }), undefined, 'a failed manifest upload is only logged');
  t.same(warned, ['manifest upload failed']);
});
