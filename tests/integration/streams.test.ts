// RTMP and SRT stream outputs (issue 8), fed by an SDK participant egress through livekit-server-sdk
// on the real livekit-server, into the rig's nginx-rtmp and srt-live-transmit: one encode fanned out
// to a file and two RTMP servers, one of them killed for good (dropped after the 30 s outage) and one
// restarted (picked up again); UpdateStream adding and removing URLs live, with the reference's
// errors; a refused URL failing at once; twitch:// resolved through a local ingest list; SRT with the
// stream session limit. Stream keys never appear in the logs, the EgressInfo or the debug endpoint.
import '../rig/quiet-rtc.ts';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { EgressInfo, EgressStatus, EncodedFileOutput, EncodingOptions, StreamInfo_Status, StreamOutput, StreamProtocol } from '@livekit/protocol';
import { freePort } from '../rig/ports.ts';
import { probe, videoChanges } from '../rig/probe.ts';
import { startPublisher, type Publisher, type PublisherOptions } from '../rig/publisher.ts';
import { startRtmpServer, type RtmpServer } from '../rig/rtmp-server.ts';
import { startSrtListener } from '../rig/srt-listener.ts';
import { jobDetail } from '../support/debug-api.ts';
import { checkDuration, fileOf, runEgress, waitForStatus } from '../support/egress-run.ts';
import { startEgressNode } from '../support/egress-node.ts';
import { egressSuite } from '../support/suite.ts';
import { waitFor } from '../support/wait.ts';

// A fake Twitch ingest list, so twitch:// resolves without leaving the machine.
const ingest = createServer((_req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ ingests: [{ url_template: `rtmp://127.0.0.1:${twitchPort}/live/{stream_key}` }] }));
});
await new Promise<void>((r) => ingest.listen(0, '127.0.0.1', r));
t.teardown(() => new Promise((r) => ingest.close(r)));
let twitchPort = 0;

const debugPort = await freePort();
const suite = await egressSuite(t, {
  what: 'stream cases',
  filteredBy: ['file_only', 'segments_only', 'web_only', 'track_only'],
  node: { debug_handler_port: debugPort, test_overrides: { cpu_load: 0, twitch_ingest_url: `http://127.0.0.1:${(ingest.address() as AddressInfo).port}/ingests` } },
});
if (suite) {
  const { deployment: d, node, client, getInfo } = suite;
  let roomSeq = 0;
  const newRoom = (name: string) => `${name}-${++roomSeq}-${Date.now()}`;
  const publish = async (t: Test, room: string, identity: string, opts: Partial<PublisherOptions> = {}): Promise<Publisher> => {
    const p = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity, audio: true, video: 'vp8', width: 640, height: 360, fps: 30, ...opts });
    t.teardown(() => p.stop());
    return p;
  };
  const rtmpServer = async (t: Test): Promise<RtmpServer> => {
    const s = await startRtmpServer();
    t.teardown(() => s.stop());
    return s;
  };
  // The encode is the same for any size; 360p keeps the suite light beside the others.
  const encodingOptions = new EncodingOptions({ width: 640, height: 360, framerate: 30, videoBitrate: 1200, audioBitrate: 128, keyFrameInterval: 2 });
  const publishing = (s: RtmpServer, key: string, what: string) => waitFor(what, async () => ((await s.publishing(key)) ? true : undefined), 20_000);
  const streamOf = (info: EgressInfo | undefined, key: string) => info?.streamResults.find((s) => s.url.includes(`{${key.slice(0, 3)}...${key.slice(-3)}}`));

  /** An FLV the server recorded: H.264 + AAC, its duration in seconds. */
  async function checkRecording(t: Test, what: string, file: string): Promise<number> {
    const p = await probe(file);
    t.same(p.streams.map((s) => s.codecName).sort(), ['aac', 'h264'], `${what}: H.264 + AAC`);
    const changes = await videoChanges(file);
    t.ok(changes.distinctFrames > changes.frames / 4, `${what}: the video moves (${changes.distinctFrames}/${changes.frames} distinct frames)`);
    return p.duration;
  }

  /** No stream key in the node's log, or in what livekit-server stores. */
  const checkSecrets = (t: Test, keys: string[], info: EgressInfo) => {
    const log = node.log();
    const stored = JSON.stringify(info.toJson());
    for (const k of keys) {
      t.notOk(log.includes(k), `stream key ${k} is not in the node's log`);
      t.notOk(stored.includes(k), `stream key ${k} is not in the EgressInfo`);
    }
  };

  t.test('file + two RTMP servers from one encode: one killed for good is dropped after the 30 s outage, one back inside it is picked up again', async (t) => {
    const room = newRoom('rtmp');
    await publish(t, room, 'ann');
    const [a, b] = [await rtmpServer(t), await rtmpServer(t)];
    const [keyA, keyB] = ['alphakey123', 'bravokey456'];
    let killedAt = 0;
    let backAt = 0;
    let droppedAt = 0;
    let midway: EgressInfo | undefined;
    let debugText = '';
    let gstCount = 0;
    const run = await runEgress(
      client,
      () =>
        client.startParticipantEgress(
          room,
          'ann',
          { file: new EncodedFileOutput({ filepath: 'rtmp/{room_name}.mp4' }), stream: new StreamOutput({ protocol: StreamProtocol.RTMP, urls: [a.url('live', keyA), b.url('live', keyB)] }) },
          { encodingOptions },
        ),
      {
        recordMs: 0,
        during: async (info) => {
          await publishing(a, keyA, 'A publishing');
          await publishing(b, keyB, 'B publishing');
          const detail = await jobDetail(debugPort, info.egressId);
          debugText = JSON.stringify(detail);
          gstCount = detail.processes.filter((p) => p.name === 'gst-launch-1.0').length;
          // Up for 10 s: a URL that dies sooner is taken for a bad one (refused, or never answered).
          await sleep(10_000);
          await Promise.all([a.kill(), b.kill()]);
          killedAt = Date.now();
          await sleep(3_000);
          await b.restart();
          await publishing(b, keyB, 'B publishing again');
          backAt = Date.now();
          midway = await waitFor('A dropped', async () => {
            const i = await getInfo(info.egressId);
            return streamOf(i, keyA)?.status === StreamInfo_Status.FAILED ? i : undefined;
          }, 45_000);
          droppedAt = Date.now();
          debugText += JSON.stringify(await jobDetail(debugPort, info.egressId));
          await sleep(3_000);
        },
      },
    );
    t.equal(gstCount, 3, 'one encoder and one process per URL');
    t.equal(midway!.status, EgressStatus.EGRESS_ACTIVE, 'the egress goes on while A is dropped');
    const outage = (droppedAt - killedAt) / 1000;
    t.ok(outage >= 29 && outage <= 40, `A dropped ${outage.toFixed(1)} s after its server died`);
    t.equal(streamOf(midway, keyB)?.status, StreamInfo_Status.ACTIVE, 'B is live again by then');

    const file = fileOf(t, run);
    const mp4 = await probe(file.location);
    t.same(mp4.streams.map((s) => s.codecName).sort(), ['aac', 'h264'], 'the file: H.264 + AAC');
    checkDuration(t, mp4.duration, run);
    const changes = await videoChanges(file.location);
    t.ok(changes.distinctFrames > changes.frames / 4, 'the file never noticed: its video moves throughout');

    const sa = streamOf(run.final, keyA)!;
    const sb = streamOf(run.final, keyB)!;
    t.equal(sa.status, StreamInfo_Status.FAILED, 'A: FAILED');
    t.match(sa.error, /connect|closed|refused/i, `with the error (${sa.error})`);
    t.ok(sa.endedAt > sa.startedAt && sa.startedAt > 0n, 'A: started and ended');
    t.equal(sb.status, StreamInfo_Status.FINISHED, 'B: FINISHED');
    t.ok(sb.retries >= 1 && sb.lastRetryAt > 0n, `B: retried (${sb.retries} retries)`);
    t.equal(sa.url, `rtmp://127.0.0.1:${a.port}/live/{alp...123}`, 'URLs shown with their keys redacted');
    t.equal(run.final.result.case, undefined, 'no deprecated single result for two outputs');

    const recA = await a.recordings(keyA);
    t.equal(recA.length, 1, 'A recorded one stream');
    const durA = await checkRecording(t, 'A', recA[0]!);
    t.ok(durA >= 9, `A: what was sent before the kill (${durA.toFixed(2)} s)`);
    const recB = await b.recordings(keyB);
    t.equal(recB.length, 2, 'B recorded two streams: before the kill and after the restart');
    await checkRecording(t, 'B before', recB[0]!);
    const durB = await checkRecording(t, 'B after', recB[1]!);
    const expected = (run.stopAt - backAt) / 1000;
    t.ok(durB >= expected - 1.5 && durB <= expected + 3, `B after the restart: ${durB.toFixed(2)} s, sent ~${expected.toFixed(1)} s`);

    checkSecrets(t, [keyA, keyB], run.final);
    t.notOk(debugText.includes(keyA) || debugText.includes(keyB), 'no stream key on the debug endpoint');
  });

  t.test('UpdateStream adds and removes URLs live, answers the reference errors, and removing the last ends the job', async (t) => {
    const room = newRoom('update');
    await publish(t, room, 'bob');
    const s = await rtmpServer(t);
    const [first, second] = ['firstkey11', 'secondkey22'];
    const firstUrl = s.url('live', first);
    const secondUrl = s.url('live', second);
    const steps: Record<string, number> = {};
    const run = await runEgress(
      client,
      () => client.startParticipantEgress(room, 'bob', { stream: new StreamOutput({ protocol: StreamProtocol.RTMP, urls: [firstUrl] }) }, { encodingOptions }),
      {
        recordMs: 0,
        endsByItself: true,
        during: async (info) => {
          await publishing(s, first, 'the first URL publishing');
          const added = await client.updateStream(info.egressId, [secondUrl]);
          t.same(added.streamResults.map((r) => [r.url, r.status]), [
            [`rtmp://127.0.0.1:${s.port}/live/{fir...y11}`, StreamInfo_Status.ACTIVE],
            [`rtmp://127.0.0.1:${s.port}/live/{sec...y22}`, StreamInfo_Status.ACTIVE],
          ], 'the answer lists the added URL, ACTIVE');
          await publishing(s, second, 'the added URL publishing');
          steps.added = Date.now();
          await t.rejects(client.updateStream(info.egressId, ['srt://127.0.0.1:9000']), /invalid url srt:\/\/127\.0\.0\.1:9000: invalid scheme/, 'a URL of another protocol');
          await t.rejects(client.updateStream(info.egressId, [`rtmp://127.0.0.1:${s.port}/live`]), /rtmp urls must be of format/, 'an RTMP URL without a key');
          await t.rejects(client.updateStream(info.egressId, [], [s.url('live', 'nosuchkey')]), /stream rtmp:\/\/127\.0\.0\.1:\d+\/live\/nosuchkey not found/, 'removing a URL it does not stream');
          await sleep(3_000);
          const removed = await client.updateStream(info.egressId, [], [firstUrl]);
          t.equal(removed.streamResults[0]?.status, StreamInfo_Status.FINISHED, 'the removed URL is FINISHED');
          t.ok(removed.streamResults[0]!.endedAt > 0n, 'and ended');
          steps.removedFirst = Date.now();
          await waitFor('the first URL stops publishing', async () => ((await s.publishing(first)) ? undefined : true), 10_000);
          t.ok(await s.publishing(second), 'the other URL goes on');
          await sleep(2_000);
          await client.updateStream(info.egressId, [], [secondUrl]);
          return Date.now();
        },
      },
    );
    t.equal(run.final.status, EgressStatus.EGRESS_COMPLETE, `removing the last URL ends the job COMPLETE (${run.final.error})`);
    t.equal(run.final.details, 'End reason: All streams stopped');
    t.same(run.final.streamResults.map((r) => r.status), [StreamInfo_Status.FINISHED, StreamInfo_Status.FINISHED], 'both FINISHED');
    t.equal(run.final.result.case, 'stream', 'the deprecated stream result, for a stream-only egress');
    const [r1, r2] = [(await s.recordings(first))[0]!, (await s.recordings(second))[0]!];
    const d1 = await checkRecording(t, 'first', r1);
    const d2 = await checkRecording(t, 'second', r2);
    const firstFor = (steps.removedFirst! - run.activeAt) / 1000;
    t.ok(Math.abs(d1 - firstFor) <= 2.5, `the first URL streamed until it was removed (${d1.toFixed(2)} s of ~${firstFor.toFixed(1)} s)`);
    const secondFor = (run.stopAt - steps.added!) / 1000;
    t.ok(Math.abs(d2 - secondFor) <= 2.5, `the added URL streamed from when it was added (${d2.toFixed(2)} s of ~${secondFor.toFixed(1)} s)`);
    checkSecrets(t, [first, second], run.final);
  });

  t.test('a URL the server refuses fails at once: a stream-only egress ends FAILED with the stream error', async (t) => {
    const room = newRoom('refused');
    await publish(t, room, 'cat');
    const closed = await freePort();
    const started = await client.startParticipantEgress(room, 'cat', { stream: new StreamOutput({ protocol: StreamProtocol.RTMP, urls: [`rtmp://127.0.0.1:${closed}/live/refusedkey1`] }) }, { encodingOptions });
    const t0 = Date.now();
    const final = await waitForStatus(client, started.egressId, (st) => st >= EgressStatus.EGRESS_COMPLETE, 'the failure', 30_000);
    t.equal(final.status, EgressStatus.EGRESS_FAILED, 'FAILED');
    t.equal(final.errorCode, 503, 'Unavailable, as the reference answers when the last output is gone');
    t.match(final.error, /refused/i, `the stream's error (${final.error})`);
    t.equal(final.streamResults[0]?.status, StreamInfo_Status.FAILED, 'the stream is FAILED');
    t.ok(Date.now() - t0 < 20_000, 'no retries for a URL that never worked');
    checkSecrets(t, ['refusedkey1'], final);
  });

  t.test('twitch:// is resolved through the ingest list to its RTMP server', async (t) => {
    const room = newRoom('twitch');
    await publish(t, room, 'dan');
    const s = await rtmpServer(t);
    twitchPort = s.port;
    const key = 'live_twitchkey_99';
    const run = await runEgress(
      client,
      () => client.startParticipantEgress(room, 'dan', { stream: new StreamOutput({ protocol: StreamProtocol.RTMP, urls: [`twitch://${key}`] }) }, { encodingOptions }),
      { recordMs: 0, during: () => publishing(s, key, 'publishing to the listed ingest').then(() => sleep(3_000)) },
    );
    t.equal(run.final.status, EgressStatus.EGRESS_COMPLETE, `COMPLETE (${run.final.error})`);
    t.equal(run.final.streamResults[0]?.url, `rtmp://127.0.0.1:${s.port}/live/{liv..._99}`, 'the resolved URL, its key redacted');
    await checkRecording(t, 'twitch', (await s.recordings(key))[0]!);
    checkSecrets(t, [key], run.final);
  });

  t.test('SRT, and stream_output_max_duration ending the job LIMIT_REACHED', async (t) => {
    await node.stop();
    const limited = await startEgressNode(d, { session_limits: { stream_output_max_duration: '8s' } });
    t.teardown(() => limited.stop());
    const room = newRoom('srt');
    await publish(t, room, 'eve');
    const srt = await startSrtListener();
    t.teardown(() => srt.stop());
    const started = await client.startParticipantEgress(room, 'eve', { stream: new StreamOutput({ protocol: StreamProtocol.SRT, urls: [srt.url] }) }, { encodingOptions });
    t.equal(started.streamResults[0]?.url, srt.url, 'SRT URLs are shown as given');
    t.ok(started.streamResults[0]!.startedAt > 0n, 'and started at once, as the reference does');
    const final = await waitForStatus(client, started.egressId, (st) => st >= EgressStatus.EGRESS_COMPLETE, 'the limit', 60_000);
    t.equal(final.status, EgressStatus.EGRESS_LIMIT_REACHED, `LIMIT_REACHED (${final.error})`);
    t.equal(final.streamResults[0]?.status, StreamInfo_Status.FINISHED, 'the stream is FINISHED');
    const p = await probe(srt.file);
    t.same(p.streams.map((s) => s.codecName).sort(), ['aac', 'h264'], 'the listener got H.264 + AAC in MPEG-TS');
    t.ok(p.duration >= 5 && p.duration <= 9, `about the 8 s limit streamed (${p.duration.toFixed(2)} s)`);
    const changes = await videoChanges(srt.file);
    t.ok(changes.distinctFrames > changes.frames / 4, 'the video moves');
  });
}
