// PulseAudio for web sources: the server every web job plays into, and one null sink per egress
// (egress-behaviour §9.1 step 3, §7.5). Chromium plays into the sink named by PULSE_SINK; gst records
// its `.monitor`.
//
// The server runs in user mode even as root: `--system` refuses root's clients ("Access denied")
// unless its socket module is loaded with auth-anonymous=1, which would open the server to every
// local user. User mode as root only warns ("not intended to be run as root") and puts its socket in
// a private /tmp/pulse-* directory that clients with the same HOME find through ~/.config/pulse.
// It is daemonized, so it outlives the handler that happened to start it and serves every job.
import { execa } from 'execa';
import { errors } from './errors.ts';

/** Egress ids start with this (`EG_…`): sinks so named are the egress's, whoever created them. */
const EGRESS_SINK_PREFIX = 'EG_';

const pactl = (args: string[]) => execa('pactl', args, { reject: false, timeout: 10_000 });

/** Starts a PulseAudio server unless one answers. Two callers at once are fine: the loser finds the winner's. */
export async function ensurePulse(): Promise<void> {
  if ((await pactl(['info'])).exitCode === 0) return;
  // --daemonize=yes returns once the daemon is ready; no exit when idle, no exit on a client's request.
  const started = await execa('pulseaudio', ['--daemonize=yes', '--exit-idle-time=-1', '--disallow-exit'], { reject: false, timeout: 15_000 });
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

export async function unloadModule(module: number): Promise<void> {
  await pactl(['unload-module', String(module)]);
}

/** The null sinks of egresses now loaded: their module and egress id. */
export async function egressSinks(): Promise<{ module: number; egressId: string }[]> {
  const r = await pactl(['list', 'short', 'modules']);
  if (r.exitCode !== 0) return [];
  return r.stdout.split('\n').flatMap((line) => {
    const [index, name, args = ''] = line.split('\t');
    const sink = /(?:^|\s)sink_name=(\S+)/.exec(args)?.[1];
    return name === 'module-null-sink' && sink?.startsWith(EGRESS_SINK_PREFIX) ? [{ module: Number(index), egressId: sink }] : [];
  });
}

/** Unloads the sink of `egressId`, if one is loaded (its handler died before it could). */
export async function unloadEgressSink(egressId: string): Promise<void> {
  for (const s of await egressSinks()) if (s.egressId === egressId) await unloadModule(s.module);
}

/**
 * Unloads the sinks left by egresses that no longer run (a handler killed before it could unload
 * its own), once they have been orphans for `graceMs` (pulse_sink_reap_grace_sec): a job that is
 * starting may have loaded its sink before the caller lists it as running.
 */
export class SinkReaper {
  private readonly orphanSince = new Map<string, number>();

  constructor(private readonly graceMs: number) {}

  /** Returns the egress ids whose sinks it unloaded. */
  async sweep(running: (egressId: string) => boolean, now = Date.now()): Promise<string[]> {
    const sinks = await egressSinks();
    const reaped: string[] = [];
    const seen = new Set<string>();
    for (const s of sinks) {
      if (running(s.egressId)) continue;
      seen.add(s.egressId);
      const since = this.orphanSince.get(s.egressId) ?? now;
      this.orphanSince.set(s.egressId, since);
      if (now - since < this.graceMs) continue;
      await unloadModule(s.module);
      reaped.push(s.egressId);
    }
    for (const id of this.orphanSince.keys()) if (!seen.has(id) || reaped.includes(id)) this.orphanSince.delete(id);
    return reaped;
  }
}
