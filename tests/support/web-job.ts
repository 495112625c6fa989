// What a web job (web egress, room composite) leaves running, as the node's debug endpoint and the
// machine show it: its processes and their groups, and its PulseAudio null sink.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { execa } from 'execa';
import { isAlive, jobDetail, type JobDetail } from './debug-api.ts';
import { decodeErrors, videoDecode } from '../rig/probe.ts';
import { waitFor } from './wait.ts';

/**
 * Node config for web jobs that join the rig's rooms (tests and bench): the egress's Chromium kept on
 * 127.0.0.1 by tests/rig/browser/loopback.js, with the WebRTC flags that file wants (one
 * wildcard-bound UDP socket, which it names 127.0.0.1).
 */
export const LOOPBACK_CHROME = {
  test_overrides: { cpu_load: 0, chrome_init_script: fileURLToPath(new URL('../rig/browser/loopback.js', import.meta.url)) },
  chrome_flags: { 'force-webrtc-ip-handling-policy': true, 'webrtc-ip-handling-policy': 'default_public_interface_only', 'disable-quic': true, 'disable-component-update': true },
};

/** The job's processes as the node lists them, once Chromium is among them. */
export const jobProcesses = (debugPort: number, egressId: string): Promise<JobDetail> =>
  waitFor(`${egressId} to report its chromium`, async () => {
    const d = await jobDetail(debugPort, egressId).catch(() => undefined);
    return d?.processes.some((p) => p.name === 'chromium') ? d : undefined;
  }, 30_000);

/** The null sinks loaded now, as `pactl list short modules` lines. */
export const egressSinks = async (): Promise<string[]> => (await execa('pactl', ['list', 'short', 'modules'])).stdout.split('\n').filter((l) => l.includes('module-null-sink'));

/**
 * The names a job's null sink may have: its egress id, or, when the job took the browser its spare
 * handler had started (handler_pool.browser), that handler's (`egress_spare_<pid>`).
 */
export function sinkNames(egressId: string, detail: JobDetail): string[] {
  const handler = detail.processes.find((p) => p.name === 'handler')?.pid;
  return [egressId, ...(handler === undefined ? [] : [`egress_spare_${handler}`])];
}

/** Whether one of the `pactl` module lines loads a sink of one of these names. */
export const hasSink = (lines: string[], names: string[]): boolean => lines.some((l) => names.some((n) => new RegExp(`sink_name=${n}(\\s|$)`).test(l)));

/** Everything the job started is gone: its processes (and their groups) and its null sink. */
export async function checkFreed(t: Test, egressId: string, detail: JobDetail): Promise<void> {
  await waitFor(`${egressId}'s processes to go`, async () => (detail.processes.every((p) => !isAlive(p.pid)) ? true : undefined), 15_000).catch(() => undefined);
  for (const p of detail.processes) t.notOk(isAlive(p.pid), `${p.name} (${p.pid}) is gone`);
  const groups = new Set(detail.processes.map((p) => p.pgid));
  // Zombies count as gone (isAlive): PID 1 here may never reap what the browser left it.
  const inGroups = async () =>
    (await execa('ps', ['-eo', 'pid=,pgid=,stat=,comm='])).stdout
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter(([, g, stat]) => groups.has(Number(g)) && !stat!.startsWith('Z'));
  await waitFor('their groups to empty', async () => ((await inGroups()).length ? undefined : true), 10_000).catch(() => undefined);
  t.same(await inGroups(), [], 'no process of their groups is left');
  // A killed handler's sink is unloaded by the supervisor, a moment after it hears of the death.
  const names = sinkNames(egressId, detail);
  await waitFor('the sink to go', async () => (hasSink(await egressSinks(), names) ? undefined : true), 10_000).catch(() => undefined);
  t.notOk(hasSink(await egressSinks(), names), `its null sink (${names.join(' or ')}) is unloaded`);
}

/**
 * A file recovered from a killed web job decodes whole: every video packet gives a frame, with no
 * decoder error, and most of its 30 frames a second are there. (The capture drops frames when the
 * encoder falls behind: a quiet machine here keeps 26-30 a second, a loaded one fewer.)
 */
export async function checkRecovered(t: Test, path: string, duration: number): Promise<void> {
  const { packets, frames } = await videoDecode(path);
  t.equal(frames, packets, `every frame decodes (${frames} of ${packets})`);
  t.equal(await decodeErrors(path), '', 'with no decoder error');
  t.ok(frames >= duration * 30 * 0.5, `most frames kept (${(frames / duration).toFixed(1)} a second)`);
}

/** The file name of the program a process runs (its argv[0]), or '' once it is gone. */
export function processName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]!.split('/').pop()!;
  } catch {
    return '';
  }
}

/** A process's direct children, by the name its command starts with. */
export function childrenOf(parent: number): { pid: number; name: string }[] {
  const found: { pid: number; name: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== parent || !isAlive(pid)) continue;
      found.push({ pid, name: processName(pid) });
    } catch {
      // gone while we looked
    }
  }
  return found;
}

/** What a spare started for the next web job: its Xvfb and Chromium (children of it) and its sink. */
export const spareBrowser = async (spare: number) => {
  const children = childrenOf(spare);
  return {
    xvfb: children.find((c) => c.name === 'Xvfb')?.pid,
    chromium: children.find((c) => c.name === 'chromium')?.pid,
    /** its sink's latency keeper */
    parec: children.find((c) => c.name === 'parec')?.pid,
    sink: hasSink(await egressSinks(), [`egress_spare_${spare}`]),
  };
};
export const browserReady = (spare: number) =>
  waitFor(`spare ${spare}'s browser`, async () => {
    const b = await spareBrowser(spare);
    return b.xvfb && b.chromium && b.sink ? b : undefined;
  }, 30_000);

/** The node's spare handlers: its children started with EGRESS_HANDLER_SPARE=1. */
export function spares(nodePid: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === nodePid && readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes('EGRESS_HANDLER_SPARE=1') && isAlive(pid)) found.push(pid);
    } catch {
      // gone while we looked
    }
  }
  return found;
}
