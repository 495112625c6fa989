// One egress driven the way a user drives it: started through livekit-server-sdk, recorded while
// `during` runs, stopped, and waited for until it ends. Times are wall-clock ms, so outputs can be
// compared with what really happened.
import { readFileSync } from 'node:fs';
import { EgressStatus, type EgressInfo, type FileInfo } from '@livekit/protocol';
import type { EgressClient } from 'livekit-server-sdk';
import type { Test } from 'tap';
import { checkPlaylist } from '../rig/hls-check.ts';
import { audioLevel, probe, videoChanges, type ProbeResult } from '../rig/probe.ts';
import { waitFor } from './wait.ts';

export interface EgressRun {
  started: EgressInfo;
  final: EgressInfo;
  /**
   * When recording began: its outputs' started_at (their first frame), or, when there are none or
   * their clock disagrees with ours (a remote deployment), when livekit-server first listed it ACTIVE.
   * Polling sees ACTIVE late, by up to a second on a loaded machine, which made files look too long.
   */
  activeAt: number;
  /** When StopEgress was sent (or the egress ended by itself). */
  stopAt: number;
}

export const egressInfo = async (client: EgressClient, egressId: string): Promise<EgressInfo | undefined> => (await client.listEgress({ egressId }))[0];

export async function waitForStatus(client: EgressClient, egressId: string, done: (s: EgressStatus) => boolean, what: string, timeoutMs = 30_000): Promise<EgressInfo> {
  return waitFor(what, async () => {
    const info = await egressInfo(client, egressId);
    return info && done(info.status) ? info : undefined;
  }, timeoutMs);
}

export async function runEgress(
  client: EgressClient,
  start: () => Promise<EgressInfo>,
  opts: {
    /** Recorded time after ACTIVE, unless `during` ends the egress itself. */
    recordMs: number;
    /** Runs once ACTIVE; recording stops when both it and recordMs are done. A returned time is when the egress was ended by other means. */
    during?: (info: EgressInfo) => Promise<number | void>;
    /** The egress ends by itself (participant left, track gone): no StopEgress is sent. */
    endsByItself?: boolean;
  },
): Promise<EgressRun> {
  const started = await start();
  await waitForStatus(client, started.egressId, (s) => s >= EgressStatus.EGRESS_ACTIVE, `${started.egressId} ACTIVE`, 40_000);
  const activeAt = Date.now();
  // A failing step must not leave the egress running past its test.
  const [endedAt] = await Promise.all([opts.during?.(started), new Promise((r) => setTimeout(r, opts.recordMs))]).catch(async (err: unknown) => {
    await client.stopEgress(started.egressId).catch(() => undefined);
    throw err;
  });
  let stopAt = endedAt ?? Date.now();
  if (!opts.endsByItself) {
    await client.stopEgress(started.egressId);
    stopAt = Date.now();
  }
  const final = await waitForStatus(client, started.egressId, (s) => s >= EgressStatus.EGRESS_COMPLETE, `${started.egressId} ended`, 60_000);
  // An output's started_at is its time 0 (the first frame); the egress's own is when it was requested.
  const recorded = [...final.fileResults, ...final.segmentResults, ...final.imageResults].map((r) => Number(r.startedAt / 1_000_000n)).filter((ms) => ms > 0);
  const startedAt = recorded.length ? Math.min(...recorded) : activeAt;
  const sameClock = startedAt <= activeAt && startedAt > activeAt - 10_000;
  return { started, final, activeAt: sameClock ? startedAt : activeAt, stopAt };
}

// ---- checks of a run's output (ffprobe and content analysis) ----

/** The file's duration is the recorded wall time, within 5%. */
export function checkDuration(t: Test, seconds: number, run: EgressRun): void {
  const wall = (run.stopAt - run.activeAt) / 1000;
  t.ok(Math.abs(seconds - wall) <= wall * 0.05, `duration ${seconds.toFixed(2)} s within 5% of the recorded ${wall.toFixed(2)} s`);
}

/** The run ended COMPLETE with a file; returns its result. */
export function fileOf(t: Test, run: EgressRun): FileInfo {
  t.equal(run.final.status, EgressStatus.EGRESS_COMPLETE, `COMPLETE (error: ${run.final.error})`);
  const f = run.final.fileResults[0];
  t.ok(f, 'a file result');
  return f!;
}

/** The run's HLS output: four segments or more, an ended playlist that lists them all and plays as H.264 + AAC. */
export async function checkSegments(t: Test, run: EgressRun): Promise<{ playlist: string; info: ProbeResult } | undefined> {
  const seg = run.final.segmentResults[0];
  t.ok(seg && seg.segmentCount >= 4n, `segments recorded (${seg?.segmentCount})`);
  if (!seg) return undefined;
  const playlist = checkPlaylist(readFileSync(seg.playlistLocation, 'utf8'), { ended: true });
  t.equal(playlist.segments.length, Number(seg.segmentCount), 'the playlist lists every segment');
  const info = await probe(seg.playlistLocation);
  t.same(info.streams.map((s) => s.codecName).sort(), ['aac', 'h264'], 'the playlist plays, H.264 + AAC');
  return { playlist: seg.playlistLocation, info };
}

/** An H.264 composite: codecs, size, rate, duration, audio not silent, video changing. Returns the file's path. */
export async function checkComposite(t: Test, run: EgressRun, want: { audio: string; width: number; height: number; fps: number; minDistinctPerSecond?: number }): Promise<string> {
  const file = fileOf(t, run);
  const info = await probe(file.location);
  const v = info.streams.find((s) => s.codecType === 'video');
  const a = info.streams.find((s) => s.codecType === 'audio');
  t.equal(v?.codecName, 'h264', 'H.264');
  t.equal(a?.codecName, want.audio, want.audio);
  t.equal(v?.width, want.width);
  t.equal(v?.height, want.height);
  t.equal(v?.frameRate, want.fps, `${want.fps} fps`);
  checkDuration(t, info.duration, run);
  t.ok((await audioLevel(file.location)).meanDb > -50, 'audio is not silent');
  const changes = await videoChanges(file.location);
  const minDistinct = want.minDistinctPerSecond ? want.minDistinctPerSecond * info.duration : changes.frames / 4;
  t.ok(changes.distinctFrames > minDistinct, `video changes (${changes.distinctFrames}/${changes.frames} distinct)`);
  return file.location;
}
