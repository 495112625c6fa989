// The stream ingests of the rig on their own, with gst-launch as the sender: nginx-rtmp records
// what is pushed to it (a file per publish, across a crash and restart), srt-live-transmit writes
// the MPEG-TS it receives. No LiveKit, no egress.
import { existsSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import t, { type Test } from 'tap';
import { probe } from '../rig/probe.ts';
import { startRtmpServer } from '../rig/rtmp-server.ts';
import { startSrtListener } from '../rig/srt-listener.ts';
import { waitFor } from '../support/wait.ts';

// Missing tools fail the run (tests/rig/setup.sh installs them): never a silent skip.
const NEEDS = ['/usr/sbin/nginx', '/usr/lib/nginx/modules/ngx_rtmp_module.so', '/usr/bin/srt-live-transmit'];
const missing = NEEDS.filter((p) => !existsSync(p));
if (missing.length) throw new Error(`the stream rig needs ${missing.join(', ')} (tests/rig/setup.sh installs them)`);

const FPS = 30;
const AUDIO_RATE = 48000;

/** A live test pattern and tone, H.264 + AAC, ending (EOS) after `seconds`; `mux` is linked by name. */
function media(seconds: number): string[] {
  return [
    'videotestsrc', 'is-live=true', `num-buffers=${seconds * FPS}`,
    '!', `video/x-raw,width=320,height=240,framerate=${FPS}/1`,
    '!', 'x264enc', 'tune=zerolatency', 'speed-preset=ultrafast', `key-int-max=${FPS}`,
    '!', 'h264parse', '!', 'queue', '!', 'mux.',
    'audiotestsrc', 'is-live=true', 'samplesperbuffer=1024', `num-buffers=${Math.round((seconds * AUDIO_RATE) / 1024)}`,
    '!', `audio/x-raw,rate=${AUDIO_RATE},channels=2`,
    '!', 'audioconvert', '!', 'avenc_aac', '!', 'aacparse', '!', 'queue', '!', 'mux.',
  ];
}

function gst(args: string[]) {
  return execa('gst-launch-1.0', ['-q', '-e', ...args], { reject: false, stdin: 'ignore', timeout: 20_000 });
}

const toRtmp = (url: string) => ['flvmux', 'name=mux', 'streamable=true', '!', 'rtmp2sink', `location=${url}`];
// alignment=7: one 1316-byte SRT payload per buffer (see srt-listener.ts)
const toSrt = (url: string) => ['mpegtsmux', 'name=mux', 'alignment=7', '!', 'srtsink', `uri=${url}`, 'wait-for-connection=true'];

async function checkFile(t: Test, what: string, path: string, seconds: number): Promise<void> {
  const p = await probe(path);
  t.same(p.streams.map((s) => s.codecName).sort(), ['aac', 'h264'], `${what}: H.264 and AAC`);
  t.ok(Math.abs(p.duration - seconds) <= 1, `${what}: ${p.duration.toFixed(2)} s ≈ ${seconds} s`);
}

async function sizeSettled(path: string): Promise<void> {
  let last = -1;
  for (;;) {
    const size = statSync(path).size;
    if (size === last) return;
    last = size;
    await sleep(300);
  }
}

t.test('RTMP and SRT ingests record what gst-launch sends; RTMP keeps a file per publish across a kill and restart', async (t) => {
  const [rtmp, srt] = await Promise.all([startRtmpServer(), startSrtListener()]);
  t.teardown(() => Promise.all([rtmp.stop(), srt.stop()]).then(() => undefined));
  const key = 'rig';

  const rtmpPush = gst([...media(5), ...toRtmp(rtmp.url('live', key))]);
  const srtPush = gst([...media(5), ...toSrt(srt.url)]);
  await waitFor('the RTMP publisher', async () => ((await rtmp.publishing(key)) ? true : undefined), 5000);
  t.pass('publishing() sees the publisher');
  t.notOk(await rtmp.publishing('other'), 'publishing() tells stream keys apart');
  const [r, s] = await Promise.all([rtmpPush, srtPush]);
  t.equal(r.exitCode, 0, `rtmp push exited cleanly ${r.exitCode ? r.stderr : ''}`);
  t.equal(s.exitCode, 0, `srt push exited cleanly ${s.exitCode ? s.stderr : ''}`);
  await waitFor('the RTMP publisher to leave', async () => ((await rtmp.publishing(key)) ? undefined : true), 5000);

  const first = await rtmp.recordings(key);
  t.equal(first.length, 1, 'one recording');
  await checkFile(t, 'RTMP recording', first[0]!, 5);
  await sizeSettled(srt.file);
  await checkFile(t, 'SRT file', srt.file, 5);

  await rtmp.kill();
  t.notOk(await rtmp.publishing(key), 'a killed server has no publishers');
  await rtmp.restart();
  const again = await gst([...media(2), ...toRtmp(rtmp.url('live', key))]);
  t.equal(again.exitCode, 0, `push after the restart exited cleanly ${again.exitCode ? again.stderr : ''}`);
  const both = await rtmp.recordings(key);
  t.equal(both.length, 2, `a second recording beside the first: ${both.join(', ')}`);
  t.equal(both[0], first[0], 'oldest first');
  await checkFile(t, 'RTMP recording after the restart', both[1]!, 2);
});
