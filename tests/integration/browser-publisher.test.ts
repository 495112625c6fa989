// Track egress of tracks published from a browser: Debian's Chromium (headless) running
// livekit-client 2.22.0, its fake camera and microphone looping the rig's marker media
// (tests/rig/browser-publisher.ts). Opus → OGG, VP8 → WebM, H.264 → MP4; and a VP8 screen share
// whose resolution changes mid-way.
import '../rig/quiet-rtc.ts';
import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { execa } from 'execa';
import { DirectFileOutput, EgressStatus, type EgressInfo } from '@livekit/protocol';
import { audioLevel, probe, videoChanges } from '../rig/probe.ts';
import { startBrowserPublisher, type BrowserPublisher } from '../rig/browser-publisher.ts';
import { egressSuite } from '../support/suite.ts';
import { waitFor } from '../support/wait.ts';

const RECORD_MS = 8_000;

/** width x height of every decoded frame, in order. */
async function frameSizes(file: string): Promise<string[]> {
  const r = await execa('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=width,height', '-of', 'csv=p=0', file], { reject: false });
  return r.stdout.split('\n').filter(Boolean).map((l) => l.replace(',', 'x'));
}

/** Runs of equal sizes: ['640x360 ×120', '320x180 ×110']. */
function runs(sizes: string[]): string[] {
  const out: { size: string; n: number }[] = [];
  for (const s of sizes) {
    const last = out.at(-1);
    if (last?.size === s) last.n++;
    else out.push({ size: s, n: 1 });
  }
  return out.map((r) => `${r.size} ×${r.n}`);
}

const suite = await egressSuite(t, { what: 'track file cases', filteredBy: ['stream_only', 'segments_only', 'room_only', 'web_only', 'track_composite_only'] });
if (suite) {
  const { deployment: d, client, getInfo } = suite;

  /** Track egress of one track for RECORD_MS; `during` runs while it records. Returns the file and the recorded wall time. */
  const record = async (t: Test, room: string, trackId: string, prefix: string, during?: () => Promise<void>) => {
    const started = await client.startTrackEgress(room, new DirectFileOutput({ filepath: `${prefix}/{track_type}-{track_id}` }), trackId);
    t.equal(started.status, EgressStatus.EGRESS_STARTING, 'StartEgress answers STARTING');
    await waitFor('ACTIVE', async () => ((await getInfo(started.egressId))?.status === EgressStatus.EGRESS_ACTIVE ? true : undefined), 20_000);
    const activeAt = Date.now();
    await Promise.all([new Promise((r) => setTimeout(r, RECORD_MS)), during?.()]);
    const stopAt = Date.now();
    await client.stopEgress(started.egressId);
    const final: EgressInfo = await waitFor('COMPLETE', async () => {
      const info = await getInfo(started.egressId);
      return info && info.status >= EgressStatus.EGRESS_COMPLETE ? info : undefined;
    }, 30_000);
    t.equal(final.status, EgressStatus.EGRESS_COMPLETE, `ends COMPLETE (error: ${final.error})`);
    const file = final.fileResults[0]!;
    t.ok(existsSync(file.location), `file exists at ${file.location}`);
    return { file, expected: (stopAt - activeAt) / 1000 };
  };

  const cases = [
    { name: 'browser Opus → OGG', audio: true, video: false as const, codec: 'opus', ext: '.ogg' },
    { name: 'browser VP8 → WebM', audio: false, video: 'vp8' as const, codec: 'vp8', ext: '.webm' },
    { name: 'browser H.264 → MP4', audio: false, video: 'h264' as const, codec: 'h264', ext: '.mp4' },
  ];

  // One Chromium at a time: each takes most of a core while it encodes.
  for (const [i, c] of cases.entries()) {
    await t.test(c.name, async (t) => {
      const room = `browser-${i}-${Date.now()}`;
      // both kinds are published, as a browser user would; one of them is recorded
      const p: BrowserPublisher = await startBrowserPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: `browser-${i}`, audio: true, video: c.video || 'vp8' });
      t.teardown(() => p.stop());
      const trackId = (c.audio ? p.audioTrackSid : p.videoTrackSid)!;
      t.match(trackId, /^TR_/, 'the page reports its track sid');
      t.ok(Math.abs(p.publishedAt - Date.now()) < 10_000, 'publishedAt is a recent wall time');

      const { file, expected } = await record(t, room, trackId, 'browser');
      t.equal(file.filename, `browser/${c.audio ? 'audio' : 'video'}-${trackId}${c.ext}`, 'placeholders resolved');
      const info = await probe(file.location);
      const stream = info.streams.find((s) => s.codecType === (c.audio ? 'audio' : 'video'));
      t.equal(stream?.codecName, c.codec, `codec ${c.codec}`);
      t.ok(Math.abs(info.duration - expected) <= expected * 0.1, `duration ${info.duration.toFixed(2)} s within 10% of ${expected.toFixed(2)} s`);
      if (c.audio) {
        const level = await audioLevel(file.location);
        t.ok(level.meanDb > -50, `audio is not silent (mean ${level.meanDb} dB)`);
      } else {
        t.equal(stream?.width, 640, 'width 640');
        t.equal(stream?.height, 360, 'height 360');
        const v = await videoChanges(file.location);
        t.ok(v.distinctFrames > v.frames / 2, `video changes (${v.distinctFrames}/${v.frames} distinct frames)`);
      }
    });
  }

  await t.test('browser VP8 screen share whose resolution changes mid-way → WebM', async (t) => {
    const room = `browser-switch-${Date.now()}`;
    const p = await startBrowserPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: 'browser-switch', audio: false, video: 'vp8', screenShare: true });
    t.teardown(() => p.stop());
    const sent = new Set<string>();
    const sentSize = async () => {
      const { stats } = (await p.stats()) as { stats: { kind?: string; frameWidth?: number; frameHeight?: number }[] };
      const v = stats.find((s) => s.kind === 'video' && s.frameWidth);
      if (v) sent.add(`${v.frameWidth}x${v.frameHeight}`);
    };
    const { file, expected } = await record(t, room, p.videoTrackSid!, 'browser-switch', async () => {
      await new Promise((r) => setTimeout(r, RECORD_MS / 2));
      await sentSize();
      t.same(await p.switchResolution(320, 180), { width: 320, height: 180 }, 'the camera track now delivers 320x180');
      await new Promise((r) => setTimeout(r, 2000));
      await sentSize();
    });
    t.same([...sent], ['640x360', '320x180'], 'the browser encoded 640x360, then 320x180 (outbound-rtp frameWidth/Height)');
    const sizes = runs(await frameSizes(file.location));
    t.comment(`frames in ${file.location}: ${sizes.join(', ') || '(none decoded)'}`);
    // The egress scales every frame to the output size (a track egress keeps its first frame's), so the
    // file never holds frames its caps do not describe, and it runs on through the switch.
    t.ok(sizes.length === 1 && sizes[0]!.startsWith('640x360'), 'every frame at the output size 640x360');
    const info = await probe(file.location);
    t.ok(Math.abs(info.duration - expected) <= expected * 0.1, `duration ${info.duration.toFixed(2)} s within 10% of ${expected.toFixed(2)} s: recorded past the switch`);
    const changes = await videoChanges(file.location);
    t.ok(changes.distinctFrames > changes.frames / 3, `video changes (${changes.distinctFrames}/${changes.frames} distinct frames)`);
  });
}
