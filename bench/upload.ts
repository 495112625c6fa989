// `npm run bench:upload -- [sizeMB] [rounds]` (default 200 MB, 5 rounds): upload throughput of one
// large file to s3rver on 127.0.0.1 through our S3 back-end, against a bare @aws-sdk/lib-storage
// Upload with the same part size (5 MiB) and queue size (4) in the same process. Runs alternate; the
// median of each and the aggregate over all rounds are printed with the ratio ours / bare (target
// ≥ 0.9). "bare (SDK defaults)" also computes the SDK's default CRC32 part checksums, which our
// back-end leaves off for S3-compatible endpoints; "bare (same client options)" does not, so that
// ratio is the cost of our layer alone. s3rver (disk + MD5) is the bottleneck: figures vary with load.
process.env.AWS_EC2_METADATA_DISABLED = 'true';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DeleteObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createS3Backend, DEFAULT_QUEUE_SIZE, MIN_PART_SIZE } from '../handler/src/upload/s3.ts';
import { startS3, S3RVER_ACCESS_KEY, S3RVER_SECRET } from '../tests/rig/storage/s3.ts';

const SIZE_MB = Number(process.argv[2] ?? 200);
const ROUNDS = Number(process.argv[3] ?? 5);
const TARGET_RATIO = 0.9;
const BUCKET = 'bench';

async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  const chunk = 4 * 1024 * 1024;
  for (let written = 0; written < bytes; written += chunk) {
    const block = randomBytes(Math.min(chunk, bytes - written));
    if (!out.write(block)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-upload-'));
  const s3 = await startS3({ buckets: [BUCKET], verifySignatures: false });
  try {
    const file = join(dir, 'big.bin');
    const bytes = SIZE_MB * 1024 * 1024;
    await writeRandomFile(file, bytes);

    const clientBase: S3ClientConfig = {
      region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true,
      credentials: { accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: S3RVER_SECRET },
    };
    const ours = createS3Backend({
      accessKey: S3RVER_ACCESS_KEY, secret: S3RVER_SECRET, sessionToken: '', assumeRoleArn: '', assumeRoleExternalId: '',
      region: 'us-east-1', endpoint: s3.endpoint, bucket: BUCKET, forcePathStyle: true,
      maxRetries: 3, maxRetryDelayMs: 5000, minRetryDelayMs: 100, metadata: {}, tagging: '', contentDisposition: '',
    });
    const bareDefault = new S3Client(clientBase);
    const bareSame = new S3Client({ ...clientBase, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
    const bare = (client: S3Client) => async (key: string) => {
      await new Upload({
        client, partSize: MIN_PART_SIZE, queueSize: DEFAULT_QUEUE_SIZE,
        params: { Bucket: BUCKET, Key: key, Body: createReadStream(file, { highWaterMark: 1024 * 1024 }), ContentType: 'video/mp4' },
      }).done();
    };
    const variants: [string, (key: string) => Promise<unknown>][] = [
      ['ours (S3 back-end)', (key) => ours.upload(file, key, 'video/mp4')],
      ['bare (same client options)', bare(bareSame)],
      ['bare (SDK defaults)', bare(bareDefault)],
    ];
    const results = new Map<string, number[]>(variants.map(([name]) => [name, []]));
    const cleaner = new S3Client(clientBase);

    // One warm-up each (connections, JIT), then alternating measured rounds.
    for (let round = 0; round <= ROUNDS; round++) {
      for (const [name, run] of variants) {
        const key = `r${round}/${name.split(' ')[0]}.bin`;
        const t0 = performance.now();
        await run(key);
        const seconds = (performance.now() - t0) / 1000;
        await cleaner.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
        if (round === 0) continue;
        const mbps = SIZE_MB / seconds;
        results.get(name)!.push(mbps);
        console.log(`round ${round}  ${name.padEnd(28)} ${seconds.toFixed(2)} s  ${mbps.toFixed(1)} MB/s`);
      }
    }
    const m = (name: string) => median(results.get(name)!);
    // Aggregate: all measured bytes over all measured time (less sensitive to one slow round).
    const agg = (name: string) => (results.get(name)!.length * SIZE_MB) / results.get(name)!.reduce((a, x) => a + SIZE_MB / x, 0);
    console.log(`\n${SIZE_MB} MB to s3rver on 127.0.0.1, part size 5 MiB, queue size 4, ${ROUNDS} rounds (load average ${loadavg()[0]!.toFixed(1)}):`);
    for (const [name] of variants) console.log(`  ${name.padEnd(28)} median ${m(name).toFixed(1)} MB/s   aggregate ${agg(name).toFixed(1)} MB/s`);
    const ratio = m('ours (S3 back-end)') / m('bare (same client options)');
    const ratioDefault = m('ours (S3 back-end)') / m('bare (SDK defaults)');
    console.log(`  ratio ours / bare (same options) = ${ratio.toFixed(3)}  (target ≥ ${TARGET_RATIO}: ${ratio >= TARGET_RATIO ? 'met' : 'NOT met'})`);
    console.log(`  ratio ours / bare (SDK defaults) = ${ratioDefault.toFixed(3)}`);
    console.log(`  aggregate ratio ours / bare (same options) = ${(agg('ours (S3 back-end)') / agg('bare (same client options)')).toFixed(3)}`);
    await ours.close();
    bareDefault.destroy();
    bareSame.destroy();
    cleaner.destroy();
  } finally {
    await s3.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
