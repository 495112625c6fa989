// Room composite (issue 9): the default template in the egress's own Chromium, recording rooms of
// rtc-node publishers on the real livekit-server through Xvfb, PulseAudio and gst, driven through
// livekit-server-sdk. Layouts are checked on frames of the recordings, region by region
// (tests/rig/layouts.ts); each room's publishers send their own tone, which tells the rooms apart in
// a recording. A web egress of a page built on the real @livekit/egress-sdk closes the file.
//
// The rig's livekit-server offers only 127.0.0.1 ICE candidates: the egress's Chromium runs the rig's
// loopback.js (test_overrides.chrome_init_script) with the WebRTC flags that file wants, so every
// packet stays on loopback.
import '../rig/quiet-rtc.ts';
import t, { type Test } from 'tap';
import { EgressStatus, EncodedFileOutput, EncodingOptionsPreset, SegmentedFileOutput, StreamOutput, StreamProtocol, type EgressInfo } from '@livekit/protocol';
import { GRID_2, LAYOUT_HEIGHT, LAYOUT_WIDTH, layoutMismatches, medians, SINGLE, SPEAKER_2, type Region } from '../rig/layouts.ts';
import { freePort } from '../rig/ports.ts';
import { frozenSpells, grayFrame, isSilent, probe, toneLevel, videoChanges } from '../rig/probe.ts';
import { startPublisher, type Publisher } from '../rig/publisher.ts';
import { startRtmpServer } from '../rig/rtmp-server.ts';
import { serveWebPages } from '../rig/web-page.ts';
import { jobDetail } from '../support/debug-api.ts';
import { checkComposite, checkDuration, checkSegments, fileOf, runEgress, waitForStatus, type EgressRun } from '../support/egress-run.ts';
import { egressSuite } from '../support/suite.ts';
import { waitFor } from '../support/wait.ts';
import { checkFreed, checkRecovered, egressSinks, hasSink, jobProcesses, LOOPBACK_CHROME, sinkNames } from '../support/web-job.ts';

// The file's time 0 lies between gst setting the pipeline to PLAYING and its PLAYING message, which
// started_at is taken from (seen 0.2-0.5 s apart on this 2-core machine): its duration runs up to
// ~0.6 s past the wall time, inside the 5% of 11-12 s.
const RECORD_MS = 11_000;
// Each publisher its own tone, none a harmonic of another (a recording of 440 Hz alone has its
// 880 Hz at -39 dB), so that two tones never cancel or pass for each other in a mix.
const TONES = { a: [440, 520], b: [620, 700] } as const;
const debugPort = await freePort();
const suite = await egressSuite(t, {
  what: 'room composite',
  filteredBy: ['web_only', 'track_composite_only', 'track_only'],
  node: {
    debug_handler_port: debugPort,
    // The reference's 4 cores a job are more than this 2-core machine admits; two at once must fit.
    cpu_cost: { room_composite_cpu_cost: 0.5, web_cpu_cost: 0.5 },
    ...LOOPBACK_CHROME,
  },
});
if (suite) {
  const { deployment: d, client } = suite;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  let roomSeq = 0;
  const newRoom = (name: string) => `${name}-${++roomSeq}-${Date.now()}`;
  const publishers: Publisher[] = [];
  t.teardown(() => Promise.all(publishers.map((p) => p.stop())));
  /** Two camera publishers in a new room, each sending its tone between its beeps. */
  const publishedRoom = async (name: string, tones: readonly number[]): Promise<string> => {
    const room = newRoom(name);
    for (const [i, toneHz] of tones.entries()) {
      publishers.push(await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: ['alice', 'bob'][i]!, width: 640, height: 360, fps: 15, toneHz }));
    }
    return room;
  };
  const roomA = await publishedRoom('composite-a', TONES.a);
  const fileOutput = (name: string) => new EncodedFileOutput({ filepath: `composite/${name}-{time}.mp4` });
  const composite = (room: string, name: string, layout: string) => () =>
    client.startRoomCompositeEgress(room, fileOutput(name), { layout, encodingOptions: EncodingOptionsPreset.H264_720P_30 });
  const want = { audio: 'aac', width: LAYOUT_WIDTH, height: LAYOUT_HEIGHT, fps: 30 };

  /** A recording's frame at `seconds` shows the layout (a later frame is tried when the first does not: the marker's flash). */
  async function checkLayout(t: Test, file: string, seconds: number, what: string, regions: Region[]) {
    let shown = '';
    // Not a second apart: the flash comes at the same point of each second.
    for (const at of [seconds, seconds + 0.35, seconds + 0.7]) {
      const img = await grayFrame(file, at, LAYOUT_WIDTH, LAYOUT_HEIGHT);
      const wrong = layoutMismatches(img, regions);
      shown = `at ${at} s: ${medians(img, regions)}`;
      if (wrong.length === 0) return void t.pass(`${what} (${shown})`);
      shown += `; ${wrong.join('; ')}`;
    }
    t.fail(`${what} (${shown})`);
  }

  /** Where wall-clock `at` (Date.now()) falls in the run's recording, in seconds. */
  const fileTime = (run: EgressRun, at: number) => (at - run.activeAt) / 1000;

  for (const [layout, regions, what] of [
    ['grid', GRID_2, 'two tiles side by side'],
    ['speaker', SPEAKER_2, 'a focus and a carousel tile'],
    ['single-speaker', SINGLE, 'one picture, full frame'],
  ] as const) {
    t.test(`${layout}: H.264 + AAC at 720p30, the wall time long, ${what}`, async (t) => {
      const run = await runEgress(client, composite(roomA, layout, layout), { recordMs: RECORD_MS });
      const file = await checkComposite(t, run, want);
      t.equal(run.final.roomName, roomA, 'of the room');
      await checkLayout(t, file, RECORD_MS / 2000, `${layout}: ${what} mid-recording`, regions);
    });
  }

  t.test('UpdateLayout mid-recording: grid, then single-speaker, with no gap', async (t) => {
    let updatedAt = 0;
    const run = await runEgress(client, composite(roomA, 'update', 'grid'), {
      recordMs: 12_000,
      during: async (info) => {
        await sleep(5_000);
        // livekit-server sets the recorder's metadata and answers with the EgressInfo as it stored it.
        t.equal((await client.updateLayout(info.egressId, 'single-speaker')).egressId, info.egressId, 'UpdateLayout accepted');
        updatedAt = Date.now();
      },
    });
    const file = await checkComposite(t, run, want);
    const at = fileTime(run, updatedAt);
    await checkLayout(t, file, at - 1.5, 'grid before the update', GRID_2);
    await checkLayout(t, file, at + 2, 'single-speaker after it', SINGLE);
    // No gap: the file is as long as the wall time (checkComposite), and the picture never stood still
    // for long, as a reloaded page or a restarted capture would. Shorter stills happen on this 2-core
    // machine under load (seen up to 0.63 s in any layout, with no update at all).
    t.same(await frozenSpells(file, 1), [], 'no frozen stretch of a second or more');
  });

  t.test('to HLS segments and RTMP at once', async (t) => {
    const rtmp = await startRtmpServer();
    t.teardown(() => rtmp.stop());
    const key = 'compositekey1';
    let publishingAt = 0;
    const run = await runEgress(
      client,
      () =>
        client.startRoomCompositeEgress(
          roomA,
          { segments: new SegmentedFileOutput({ filenamePrefix: 'composite/hls/seg', segmentDuration: 2 }), stream: new StreamOutput({ protocol: StreamProtocol.RTMP, urls: [rtmp.url('live', key)] }) },
          { layout: 'grid', encodingOptions: EncodingOptionsPreset.H264_720P_30 },
        ),
      {
        recordMs: RECORD_MS,
        during: async () => {
          await waitFor('RTMP publishing', async () => ((await rtmp.publishing(key)) ? true : undefined), 20_000);
          publishingAt = Date.now();
        },
      },
    );
    t.equal(run.final.status, EgressStatus.EGRESS_COMPLETE, `COMPLETE (${run.final.error})`);
    const hls = await checkSegments(t, run);
    if (hls) {
      checkDuration(t, hls.info.duration, run);
      const changes = await videoChanges(hls.playlist);
      t.ok(changes.distinctFrames > changes.frames / 4, `HLS: the video moves (${changes.distinctFrames}/${changes.frames} distinct, by second ${changes.perSecond.join(' ')})`);
    }
    t.equal(run.final.streamResults[0]?.url, `rtmp://127.0.0.1:${rtmp.port}/live/{com...ey1}`, 'the stream, its key redacted');
    const [flv] = await rtmp.recordings(key);
    t.ok(flv, 'the RTMP server recorded the stream');
    if (flv) {
      const p = await probe(flv);
      t.same(p.streams.map((s) => s.codecName).sort(), ['aac', 'h264'], 'RTMP: H.264 + AAC');
      // From when the server saw the publish (its connection comes after the encoder's start).
      const sent = (run.stopAt - publishingAt) / 1000;
      t.ok(p.duration >= sent - 1, `RTMP: ${p.duration.toFixed(2)} s received, ${sent.toFixed(2)} s sent after the server saw the publish ${((publishingAt - run.activeAt) / 1000).toFixed(2)} s into the recording`);
      const changes = await videoChanges(flv);
      t.ok(changes.distinctFrames > changes.frames / 4, `RTMP: the video moves (${changes.distinctFrames}/${changes.frames} distinct, by second ${changes.perSecond.join(' ')})`);
      t.notOk(await isSilent(flv), 'RTMP: not silent');
    }
  });

  t.test('SIGKILL the handler of a running room composite: Chromium, Xvfb, gst and the sink go, the MP4 is recovered', async (t) => {
    const started = await composite(roomA, 'killed', 'grid')();
    await waitForStatus(client, started.egressId, (s) => s === EgressStatus.EGRESS_ACTIVE, 'ACTIVE', 40_000);
    await jobProcesses(debugPort, started.egressId);
    await sleep(5_000);
    const all = await jobDetail(debugPort, started.egressId);
    for (const name of ['handler', 'Xvfb', 'chromium', 'gst-launch-1.0']) t.ok(all.processes.some((p) => p.name === name), `${name} reported`);
    process.kill(all.processes.find((p) => p.name === 'handler')!.pid, 'SIGKILL');
    const final: EgressInfo = await waitForStatus(client, started.egressId, (s) => s >= EgressStatus.EGRESS_COMPLETE, 'ended', 60_000);
    t.equal(final.status, EgressStatus.EGRESS_FAILED);
    t.match(final.error, /signal: killed/);
    const file = final.fileResults[0];
    t.ok(file?.location, 'the FAILED EgressInfo lists the recovered file');
    if (file?.location) {
      const p = await probe(file.location);
      t.same(p.streams.map((s) => s.codecName).sort(), ['aac', 'h264'], 'the recovered MP4 plays: H.264 + AAC');
      t.ok(p.duration >= 3, `it holds what was recorded (${p.duration.toFixed(2)} s)`);
      await checkRecovered(t, file.location, p.duration);
    }
    await checkFreed(t, started.egressId, all);
  });

  t.test('two room composites at once: each its own display and sink, each its own room\'s tone', async (t) => {
    const roomB = await publishedRoom('composite-b', TONES.b);
    const jobs: { display?: string; sinks: string[] }[] = [];
    const runs = await Promise.all(
      [
        [roomA, 'a'],
        [roomB, 'b'],
      ].map(([room, name]) =>
        runEgress(client, composite(room!, `both-${name}`, 'grid'), {
          recordMs: RECORD_MS,
          during: async (info) => {
            const detail = await jobProcesses(debugPort, info.egressId);
            const chromium = detail.processes.find((p) => p.name === 'chromium')!;
            const lines = await egressSinks();
            jobs.push({ display: /--display=(:\d+)/.exec(chromium.commandLine)?.[1], sinks: sinkNames(info.egressId, detail).filter((n) => hasSink(lines, [n])) });
          },
        }),
      ),
    );
    const displays = jobs.map((j) => j.display);
    t.ok(displays[0] && displays[1] && displays[0] !== displays[1], `two displays (${displays.join(', ')})`);
    const sinks = jobs.map((j) => j.sinks[0]);
    t.ok(jobs.length === 2 && sinks[0] && sinks[1] && sinks[0] !== sinks[1], `each its own null sink, named after its egress or its handler (${sinks.join(', ')})`);
    const files = runs.map((run) => fileOf(t, run).location);
    for (const [i, run] of runs.entries()) checkDuration(t, (await probe(files[i]!)).duration, run);
    // Every tone in each file: its own room's loud; the other room's far below its level in that
    // room's own file (audio leaking between the sinks would bring it close). What is left of it is the
    // band-pass letting the neighbouring tones through (seen: -44 dB, 100 Hz off a -24 dB tone).
    const all = [...TONES.a, ...TONES.b];
    const levels = await Promise.all(files.map((f) => Promise.all(all.map((hz) => toneLevel(f, hz, 'left')))));
    t.comment(`tone levels (dB) at ${all.join(', ')} Hz: room A's file ${levels[0]!.join(', ')}; room B's file ${levels[1]!.join(', ')}`);
    for (const [i, hz] of all.entries()) {
      const [own, other] = i < TONES.a.length ? [0, 1] : [1, 0];
      const room = own === 0 ? 'A' : 'B';
      t.ok(levels[own]![i]! > -40, `room ${room}'s file has its ${hz} Hz tone (${levels[own]![i]} dB)`);
      t.ok(levels[own]![i]! - levels[other]![i]! > 15, `the other file has it ${(levels[own]![i]! - levels[other]![i]!).toFixed(1)} dB lower (${levels[other]![i]} dB)`);
    }
  });

  t.test('a web egress of a page on the real @livekit/egress-sdk: its startRecording and endRecording work unchanged', async (t) => {
    const pages = await serveWebPages();
    t.teardown(() => pages.stop());
    const id = 'egress-sdk';
    const run = await runEgress(client, () => client.startWebEgress(pages.url({ id, signal: 1000, sdk: true }), fileOutput(id), { awaitStartSignal: true, encodingOptions: EncodingOptionsPreset.H264_720P_30 }), {
      recordMs: 8_000,
      endsByItself: true,
      during: async () => {
        await sleep(8_000);
        pages.end(id);
        return Date.now();
      },
    });
    t.equal(run.final.details, 'End reason: Source closed', 'endRecording ended it');
    // The page polls for its end every 50 ms and its console reaches the handler through playwright,
    // which on a loaded machine took 0.4 s: the file is checked against when the egress saw the end
    // (its ended_at), and that against when the page was told.
    const endedAt = Number((run.final.fileResults[0]?.endedAt ?? 0n) / 1_000_000n);
    t.ok(endedAt >= run.stopAt && endedAt - run.stopAt < 2_000, `the recording ended ${endedAt - run.stopAt} ms after the page was told to end`);
    await checkComposite(t, { ...run, stopAt: endedAt }, want);
  });
}
