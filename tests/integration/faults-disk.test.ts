// The scratch disk fills up mid-recording (a small tmpfs this test mounts as the node's tmp_dir, then
// fills): the recording on it ends FAILED with an error that says so, what it had recorded is still
// delivered, a job that does not write to disk (track → websocket) goes on untouched, and the node
// keeps serving. Needs root (mount); CI runs as root.
import '../rig/quiet-rtc.ts';
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DirectFileOutput, EgressStatus } from '@livekit/protocol';
import { EgressClient } from 'livekit-server-sdk';
import { probe } from '../rig/probe.ts';
import { disposeRtc, startPublisher } from '../rig/publisher.ts';
import { startWsReceiver } from '../rig/ws-receiver.ts';
import { startEgressNode } from '../support/egress-node.ts';
import { egressInfo, waitForStatus } from '../support/egress-run.ts';
import { suiteDeployment } from '../support/suite.ts';

const mountable = process.getuid?.() === 0;
if (!mountable) t.plan(0, 'mounting a tmpfs needs root');

const { deployment: d } = await suiteDeployment(t, { needsWebhooks: false });
const client = new EgressClient(d.httpUrl, d.apiKey, d.apiSecret);
const disk = mkdtempSync(path.join(os.tmpdir(), 'small-disk-'));
execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', disk]);
t.teardown(async () => {
  await disposeRtc();
  execFileSync('umount', ['-l', disk]);
  rmSync(disk, { recursive: true, force: true });
});

const info = (id: string) => egressInfo(client, id);
/** Waits for `id`'s status to satisfy `done`. */
const until = (id: string, done: (s: EgressStatus) => boolean, what: string, ms?: number) => waitForStatus(client, id, done, `${id} ${what}`, ms);

t.test('scratch disk full mid-recording: a clear FAILED, the file so far delivered, the other job and the node untouched', async (t) => {
  const node = await startEgressNode(d, { tmp_dir: disk });
  t.teardown(() => node.stop());
  const room = `disk-${Date.now()}`;
  const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: 'disk-pub', audio: true, video: false });
  t.teardown(() => pub.stop());
  const ws = await startWsReceiver();
  t.teardown(() => ws.stop());

  const file = (await client.startTrackEgress(room, new DirectFileOutput({ filepath: 'disk/{track_id}' }), pub.audioTrackSid!)).egressId;
  const socket = (await client.startTrackEgress(room, ws.url, pub.audioTrackSid!)).egressId;
  for (const id of [file, socket]) await until(id, (s) => s === EgressStatus.EGRESS_ACTIVE, 'ACTIVE');
  await new Promise((r) => setTimeout(r, 3000));

  // Fill what is left of the disk.
  const filler = path.join(disk, 'filler');
  try {
    writeFileSync(filler, Buffer.alloc(8 * 1024 * 1024));
  } catch {
    // ENOSPC once it is full: that is the point
  }
  const failed = await until(file, (s) => s >= EgressStatus.EGRESS_COMPLETE, 'to end', 60_000);
  t.equal(failed.status, EgressStatus.EGRESS_FAILED, `FAILED: ${failed.error}`);
  t.match(failed.error, /no space|ENOSPC|space left/i, 'the error says the disk is full');
  const result = failed.fileResults[0];
  t.ok(result && existsSync(result.location), `what was recorded is delivered: ${result?.location}`);
  if (result) t.ok((await probe(result.location)).duration > 2, 'and it plays');

  const bytes = ws.binaryBytes;
  await new Promise((r) => setTimeout(r, 2000));
  t.equal((await info(socket))?.status, EgressStatus.EGRESS_ACTIVE, 'the websocket job is still ACTIVE');
  t.ok(ws.binaryBytes > bytes + 48_000 * 4, 'and still sending audio');
  t.equal(node.process.exitCode, null, 'the node is alive');

  rmSync(filler, { force: true });
  const next = (await client.startTrackEgress(room, new DirectFileOutput({ filepath: 'disk/after-{track_id}' }), pub.audioTrackSid!)).egressId;
  await until(next, (s) => s === EgressStatus.EGRESS_ACTIVE, 'ACTIVE');
  await new Promise((r) => setTimeout(r, 2000));
  for (const id of [next, socket]) await client.stopEgress(id);
  t.equal((await until(next, (s) => s >= EgressStatus.EGRESS_COMPLETE, 'to end')).status, EgressStatus.EGRESS_COMPLETE, 'with space again, the next recording completes');
  t.equal((await until(socket, (s) => s >= EgressStatus.EGRESS_COMPLETE, 'to end')).status, EgressStatus.EGRESS_COMPLETE, 'and the websocket job completes');
});
