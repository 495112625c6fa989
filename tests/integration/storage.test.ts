// Recordings through a real egress into each storage emulator: config storage, per-request overrides,
// backup storage when the primary is down, a file kept (and FAILED reported) when both fail, and the
// debug.enable_profiling bundle of a failed pipeline uploaded to the debug storage.
import '../rig/quiet-rtc.ts';
import t, { type Test } from 'tap';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AliOSSUpload, DirectFileOutput, EgressStatus, S3Upload, type EgressInfo } from '@livekit/protocol';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { EgressClient } from 'livekit-server-sdk';
import { probe } from '../rig/probe.ts';
import { freePort } from '../rig/ports.ts';
import { disposeRtc, startPublisher } from '../rig/publisher.ts';
import { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite } from '../rig/storage/azurite.ts';
import { startGcs } from '../rig/storage/gcs.ts';
import { startOssServer } from '../rig/storage/oss-server.ts';
import { S3RVER_ACCESS_KEY, S3RVER_SECRET, startS3 } from '../rig/storage/s3.ts';
import { jobDetail } from '../support/debug-api.ts';
import { startEgressNode } from '../support/egress-node.ts';
import { suiteDeployment } from '../support/suite.ts';
import { waitFor } from '../support/wait.ts';

process.env.AWS_EC2_METADATA_DISABLED = 'true';
const { deployment: d } = await suiteDeployment(t, { needsWebhooks: false });
const client = new EgressClient(d.httpUrl, d.apiKey, d.apiSecret);
const [s3, azurite, gcs, oss] = await Promise.all([
  startS3({ buckets: ['rec', 'override'] }),
  startAzurite({ containers: ['rec'] }),
  startGcs({ buckets: ['rec'] }),
  startOssServer({ buckets: ['rec'] }),
]);
t.teardown(async () => {
  await Promise.all([s3.stop(), azurite.stop(), gcs.stop(), oss.stop()]);
  await disposeRtc();
});
const scratch = mkdtempSync(path.join(os.tmpdir(), 'storage-it-'));
const s3Block = (bucket: string, endpoint = s3.endpoint) => ({ access_key: S3RVER_ACCESS_KEY, secret: S3RVER_SECRET, endpoint, bucket, region: 'us-east-1', force_path_style: true });

const info = async (id: string) => (await client.listEgress({ egressId: id }))[0];
async function record(t: Test, name: string, output: DirectFileOutput): Promise<EgressInfo> {
  const room = `${name}-${Date.now()}`;
  const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: `${name}-pub`, audio: true, video: false });
  t.teardown(() => pub.stop());
  const id = (await client.startTrackEgress(room, output, pub.audioTrackSid!)).egressId;
  await waitFor('ACTIVE', async () => ((await info(id))?.status === EgressStatus.EGRESS_ACTIVE ? true : undefined), 20_000);
  await new Promise((r) => setTimeout(r, 3000));
  await client.stopEgress(id);
  return waitFor('the end', async () => {
    const i = await info(id);
    return i && i.status >= EgressStatus.EGRESS_COMPLETE ? i : undefined;
  }, 60_000);
}

/** The downloaded object must be the recording: an Opus file of about the recorded length. */
async function checkRecording(t: Test, bytes: Buffer, result: EgressInfo): Promise<void> {
  const file = result.fileResults[0]!;
  t.equal(bytes.length, Number(file.size), 'the stored object has the reported size');
  const local = path.join(scratch, `${result.egressId}.ogg`);
  writeFileSync(local, bytes);
  const p = await probe(local);
  t.equal(p.streams[0]?.codecName, 'opus', 'the stored object is the Opus recording');
  t.ok(p.duration > 2.5, `${p.duration.toFixed(2)} s`);
}

const s3Get = async (bucket: string, key: string) => {
  const c = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: S3RVER_SECRET } });
  const out = await c.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
};

t.test('S3 from the config, and per-request S3 and Ali OSS overrides', async (t) => {
  const node = await startEgressNode(d, { storage: { prefix: 'egress/', s3: s3Block('rec') } });
  t.teardown(() => node.stop());

  const fromConfig = await record(t, 's3cfg', new DirectFileOutput({ filepath: 'tracks/{track_id}' }));
  t.equal(fromConfig.status, EgressStatus.EGRESS_COMPLETE, fromConfig.error);
  const key = `egress/${fromConfig.fileResults[0]!.filename}`;
  t.match(fromConfig.fileResults[0]!.location, /rec\/egress\/tracks\//, `location ${fromConfig.fileResults[0]!.location}`);
  await checkRecording(t, await s3Get('rec', key), fromConfig);
  t.ok(fromConfig.manifestLocation, 'a manifest was uploaded next to it');
  const manifest = JSON.parse((await s3Get('rec', `egress/tracks/${fromConfig.egressId}.json`)).toString());
  t.equal(manifest.egress_id, fromConfig.egressId);
  t.equal(manifest.files[0].filename, fromConfig.fileResults[0]!.filename);
  t.notOk(existsSync(path.join(node.outputDir, 'tracks')), 'nothing left on local disk');

  const override = await record(t, 's3req', new DirectFileOutput({
    filepath: 'req/{track_id}',
    output: { case: 's3', value: new S3Upload({ accessKey: S3RVER_ACCESS_KEY, secret: S3RVER_SECRET, endpoint: s3.endpoint, bucket: 'override', region: 'us-east-1', forcePathStyle: true }) },
  }));
  t.equal(override.status, EgressStatus.EGRESS_COMPLETE, override.error);
  await checkRecording(t, await s3Get('override', `egress/${override.fileResults[0]!.filename}`), override);
  const stored = override.request.case === 'track' && override.request.value.output.case === 'file' ? override.request.value.output.value.output.value : undefined;
  t.equal((stored as S3Upload).secret, '{secret}', 'the stored request is redacted');

  const ali = await record(t, 'oss', new DirectFileOutput({
    filepath: 'oss/{track_id}',
    output: { case: 'aliOSS', value: new AliOSSUpload({ accessKey: oss.accessKey, secret: oss.secret, endpoint: oss.endpoint, bucket: 'rec' }) },
  }));
  t.equal(ali.status, EgressStatus.EGRESS_COMPLETE, ali.error);
  const object = oss.object('rec', `egress/${ali.fileResults[0]!.filename}`);
  t.ok(object, 'the object is in the OSS bucket, signature verified');
  await checkRecording(t, object!.data, ali);
});

t.test('Azure and GCS from the config', async (t) => {
  const azureNode = await startEgressNode(d, { storage: { azure: { account_name: AZURITE_ACCOUNT, account_key: AZURITE_KEY, container_name: 'rec', endpoint: azurite.endpoint } } });
  t.teardown(() => azureNode.stop());
  const az = await record(t, 'azure', new DirectFileOutput({ filepath: 'az/{track_id}' }));
  t.equal(az.status, EgressStatus.EGRESS_COMPLETE, az.error);
  const blob = await azurite.client().getContainerClient('rec').getBlobClient(az.fileResults[0]!.filename).downloadToBuffer();
  await checkRecording(t, blob, az);
  // Both nodes share one Redis: the next job must not land on the Azure node.
  await azureNode.stop();

  const gcsNode = await startEgressNode(d, { storage: { gcp: { bucket: 'rec', endpoint: gcs.endpoint } } });
  t.teardown(() => gcsNode.stop());
  const g = await record(t, 'gcs', new DirectFileOutput({ filepath: 'gcs/{track_id}' }));
  t.equal(g.status, EgressStatus.EGRESS_COMPLETE, g.error);
  await checkRecording(t, await gcs.download('rec', g.fileResults[0]!.filename), g);
});

t.test('primary down: the backup takes the file and the result says so', async (t) => {
  const backupDir = mkdtempSync(path.join(os.tmpdir(), 'backup-'));
  const node = await startEgressNode(d, { storage: { s3: s3Block('rec', `http://127.0.0.1:${await freePort()}`) }, backup_storage: backupDir });
  t.teardown(() => node.stop());
  const r = await record(t, 'backup', new DirectFileOutput({ filepath: 'b/{track_id}', disableManifest: true }));
  t.equal(r.status, EgressStatus.EGRESS_COMPLETE, r.error);
  t.equal(r.backupStorageUsed, true, 'backup_storage_used');
  t.ok(r.fileResults[0]!.location.startsWith(backupDir), `in the backup: ${r.fileResults[0]!.location}`);
  t.ok((await probe(r.fileResults[0]!.location)).duration > 2.5, 'playable');
  // As Go: the backup was used, so the manifest is written although the request disabled it.
  t.ok(existsSync(path.join(backupDir, 'b', `${r.egressId}.json`)), 'the manifest is next to the file in the backup');
});

t.test('backup configured but not used: a disabled manifest stays disabled', async (t) => {
  const backupDir = mkdtempSync(path.join(os.tmpdir(), 'backup-'));
  const node = await startEgressNode(d, { storage: { s3: s3Block('rec') }, backup_storage: backupDir });
  t.teardown(() => node.stop());
  const r = await record(t, 'nomanifest', new DirectFileOutput({ filepath: 'nm/{track_id}', disableManifest: true }));
  t.equal(r.status, EgressStatus.EGRESS_COMPLETE, r.error);
  t.equal(r.backupStorageUsed, false);
  t.equal(r.manifestLocation, '', 'no manifest location');
  await t.rejects(s3Get('rec', `nm/${r.egressId}.json`), 'no manifest object in storage');
  t.same(readdirSync(backupDir), [], 'and nothing in the backup');
});

t.test('primary and backup both fail: FAILED, and the file stays on disk', async (t) => {
  const blocker = path.join(scratch, 'not-a-dir');
  writeFileSync(blocker, 'x');
  const node = await startEgressNode(d, { storage: { s3: s3Block('rec', `http://127.0.0.1:${await freePort()}`) }, backup_storage: path.join(blocker, 'sub') });
  t.teardown(() => node.stop());
  const r = await record(t, 'bothfail', new DirectFileOutput({ filepath: 'f/{track_id}' }));
  t.equal(r.status, EgressStatus.EGRESS_FAILED);
  t.match(r.error, /^primary: S3 upload failed: .*\nbackup: .*upload failed: /, r.error);
  t.notMatch(r.error, new RegExp(S3RVER_SECRET + '(?![A-Z])'), 'no secret in the error');
  const kept = r.fileResults[0]!.location;
  t.ok(existsSync(kept), `kept at ${kept}`);
  t.ok((await probe(kept)).duration > 2.5, 'and playable');
});

/** Starts an audio track egress on a node with profiling on, and fails its pipeline by killing gst-launch. */
async function failPipeline(t: Test, name: string, debugPort: number): Promise<EgressInfo> {
  const room = `${name}-${Date.now()}`;
  const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: `${name}-pub`, audio: true, video: false });
  t.teardown(() => pub.stop());
  const id = (await client.startTrackEgress(room, new DirectFileOutput({ filepath: `${name}/{track_id}` }), pub.audioTrackSid!)).egressId;
  await waitFor('ACTIVE', async () => ((await info(id))?.status === EgressStatus.EGRESS_ACTIVE ? true : undefined), 20_000);
  await new Promise((r) => setTimeout(r, 1500));
  const gst = (await jobDetail(debugPort, id)).processes.find((p) => p.name === 'gst-launch-1.0')!;
  process.kill(gst.pid, 'SIGKILL');
  return waitFor('the end', async () => {
    const i = await info(id);
    return i && i.status >= EgressStatus.EGRESS_COMPLETE ? i : undefined;
  }, 60_000);
}

t.test('debug.enable_profiling: a failed pipeline\'s bundle is uploaded to the debug storage, named by egress id', async (t) => {
  const debugPort = await freePort();
  const node = await startEgressNode(d, { debug_handler_port: debugPort, debug: { enable_profiling: true, prefix: 'dbg', s3: s3Block('override') } });
  t.teardown(() => node.stop());
  const r = await failPipeline(t, 'dbgup', debugPort);
  t.equal(r.status, EgressStatus.EGRESS_FAILED, r.error);
  const where = /debug files uploaded to (\S+)/.exec(r.details)?.[1];
  t.ok(where, `the details say where the bundle went: ${r.details}`);
  t.match(where, new RegExp(`override/dbg/${r.egressId}/$`), 'the debug bucket and prefix, then the egress id');
  const dot = (await s3Get('override', `dbg/${r.egressId}/pipeline.dot`)).toString();
  t.match(dot, /^digraph/, 'the stored pipeline graph is a dot graph');
  const commands = (await s3Get('override', `dbg/${r.egressId}/gst-launch.txt`)).toString();
  t.match(commands, /gst-launch-1\.0|oggmux/, 'the stored command lines are the job\'s');
  const profile = JSON.parse((await s3Get('override', `dbg/${r.egressId}/handler.cpuprofile`)).toString()) as { nodes?: unknown[] };
  t.ok(Array.isArray(profile.nodes), 'the stored CPU profile parses');
  t.ok((await s3Get('override', `dbg/${r.egressId}/handler.log`)).length > 0, 'the handler log is there');
});

t.test('debug storage unreachable: the job reports its own failure, and says the bundle stayed on disk', async (t) => {
  const debugPort = await freePort();
  const node = await startEgressNode(d, { debug_handler_port: debugPort, debug: { enable_profiling: true, s3: s3Block('override', `http://127.0.0.1:${await freePort()}`) } });
  t.teardown(() => node.stop());
  const r = await failPipeline(t, 'dbgdown', debugPort);
  t.equal(r.status, EgressStatus.EGRESS_FAILED);
  t.notMatch(r.error, /upload/i, `the error is the pipeline's, not the bundle's: ${r.error}`);
  t.match(r.details, /debug files not uploaded: /, r.details);
  const dir = /debug files: ([^\s;]+)/.exec(r.details)?.[1];
  t.ok(dir && existsSync(path.join(dir, 'pipeline.dot')), `the local bundle is kept: ${dir}`);
  t.notMatch(r.details, new RegExp(S3RVER_SECRET + '(?![A-Z])'), 'no secret in the details');
});
