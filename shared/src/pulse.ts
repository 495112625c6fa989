// PulseAudio for web sources: the server every web job plays into, and one null sink per egress
// (egress-behaviour §9.1 step 3, §7.5). Chromium plays into the sink named by PULSE_SINK; gst records
// its `.monitor`.
//
// The server runs in user mode even as root: `--system` refuses root's clients ("Access denied")
// unless its socket module is loaded with auth-anonymous=1, which would open the server to every
// local user. User mode as root only warns ("not intended to be run as root") and puts its socket in
// a private /tmp/pulse-* directory that clients with the same HOME find through ~/.config/pulse.
// It is daemonized, so it outlives the handler that happened to start it and serves every job.
import { spawn } from 'node:child_process';
import type { ProcessReport } from './ipc.ts';
import { errors } from './errors.ts';
import { processAlive } from './scratch.ts';

/** Egress ids start with this (`EG_…`): sinks so named are the egress's, whoever created them. */
const EGRESS_SINK_PREFIX = 'EG_';

// execa is imported on first use: the supervisor imports this module on its way to ready, where
// loading execa would cost it ~0.1 s.
const run = async (file: string, args: string[], timeoutMs: number) => (await import('execa')).execa(file, args, { reject: false, timeout: timeoutMs });
const pactl = (args: string[]) => run('pactl', args, 10_000);

/** Starts a PulseAudio server unless one answers. Two callers at once are fine: the loser finds the winner's. */
export async function ensurePulse(): Promise<void> {
  if ((await pactl(['info'])).exitCode === 0) return;
  // --daemonize=yes returns once the daemon is ready; no exit when idle, no exit on a client's request.
  const started = await run('pulseaudio', ['--daemonize=yes', '--exit-idle-time=-1', '--disallow-exit'], 15_000);
  if ((await pactl(['info'])).exitCode === 0) return;
  throw errors.launchPulse(started.stderr.trim().split('\n').pop() || `pulseaudio exited ${started.exitCode}`);
}

export interface NullSink {
  name: string;
  /** Its module index, which unloading takes. */
  module: number;
  /** What gst records. */
  monitor: string;
}

/** A 48 kHz stereo sink: what Chromium plays and the pipeline records, so nothing resamples in between. */
export async function loadNullSink(name: string): Promise<NullSink> {
  const r = await pactl(['load-module', 'module-null-sink', `sink_name=${name}`, `sink_properties=device.description=${name}`, 'rate=48000', 'channels=2']);
  const module = Number(r.stdout.trim());
  if (r.exitCode !== 0 || !Number.isInteger(module)) throw errors.launchPulse(r.stderr.trim() || `pactl exited ${r.exitCode}`);
  return { name, module, monitor: `${name}.monitor` };
}

/**
 * A null sink that nothing plays into renders in blocks as long as its maximum latency (2 s), and a
 * recording started on its monitor gets its first samples only when the current block ends: gst's
 * pulsesrc, and so the pipeline's PLAYING, came 0.5-2 s late (measured: 2.04 s on a sink idle for
 * 8 s, 51 ms with this held). A reader asking for 10 ms keeps the blocks short until the
 * recording's own stream is on the monitor; `stop()` then.
 */
export function holdLowLatency(monitor: string, report: (p: ProcessReport) => void): { stop(): void } {
  const args = ['--latency-msec=10', `--device=${monitor}`, '--raw', '/dev/null'];
  const child = spawn('parec', args, { stdio: 'ignore', detached: true });
  child.on('error', () => undefined);
  if (child.pid !== undefined) report({ pid: child.pid, pgid: child.pid, name: 'parec', commandLine: ['parec', ...args].join(' ') });
  return { stop: () => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')) };
}

export async function unloadModule(module: number): Promise<void> {
  await pactl(['unload-module', String(module)]);
}

/**
 * A spare handler's sink (handler_pool.browser), loaded before its job is known: named after the
 * handler's pid, it stays that job's sink.
 */
const SPARE_SINK_PREFIX = 'egress_spare_';
export const spareSinkName = (pid: number): string => `${SPARE_SINK_PREFIX}${pid}`;

/** A sink this egress loaded: an egress's (named after it), or a spare handler's (named after its pid). */
export interface OwnedSink {
  module: number;
  egressId?: string;
  pid?: number;
}

/** The null sinks of egresses and spare handlers now loaded. */
export async function egressSinks(): Promise<OwnedSink[]> {
  const r = await pactl(['list', 'short', 'modules']);
  if (r.exitCode !== 0) return [];
  return r.stdout.split('\n').flatMap((line): OwnedSink[] => {
    const [index, name, args = ''] = line.split('\t');
    const sink = /(?:^|\s)sink_name=(\S+)/.exec(args)?.[1];
    if (name !== 'module-null-sink' || !sink) return [];
    if (sink.startsWith(EGRESS_SINK_PREFIX)) return [{ module: Number(index), egressId: sink }];
    const pid = sink.startsWith(SPARE_SINK_PREFIX) ? Number(sink.slice(SPARE_SINK_PREFIX.length)) : NaN;
    return Number.isInteger(pid) ? [{ module: Number(index), pid }] : [];
  });
}

/** Unloads the sink of a handler that died before it could: its egress's, or the one it loaded as a spare. */
export async function unloadEgressSink(owner: { egressId?: string; pid?: number }): Promise<void> {
  for (const s of await egressSinks()) {
    if ((owner.egressId !== undefined && s.egressId === owner.egressId) || (owner.pid !== undefined && s.pid === owner.pid)) await unloadModule(s.module);
  }
}

/**
 * Unloads the sinks left by egresses that no longer run (a handler killed before it could unload
 * its own), once they have been orphans for `graceMs` (pulse_sink_reap_grace_sec): a job that is
 * starting may have loaded its sink before the caller lists it as running.
 */
export class SinkReaper {
  private readonly orphanSince = new Map<string, number>();

  constructor(private readonly graceMs: number) {}

  /** Returns the owners (egress ids, `pid <n>` for spares) whose sinks it unloaded. */
  async sweep(running: (egressId: string) => boolean, now = Date.now(), isAlive = processAlive): Promise<string[]> {
    const sinks = await egressSinks();
    const reaped: string[] = [];
    const seen = new Set<string>();
    for (const s of sinks) {
      const owner = s.egressId ?? `pid ${s.pid}`;
      if (s.egressId !== undefined ? running(s.egressId) : isAlive(s.pid!)) continue;
      seen.add(owner);
      const since = this.orphanSince.get(owner) ?? now;
      this.orphanSince.set(owner, since);
      if (now - since < this.graceMs) continue;
      await unloadModule(s.module);
      reaped.push(owner);
    }
    for (const id of this.orphanSince.keys()) if (!seen.has(id) || reaped.includes(id)) this.orphanSince.delete(id);
    return reaped;
  }
}
