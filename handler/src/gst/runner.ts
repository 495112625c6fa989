/**
 * Runs one `gst-launch-1.0 -e -m` process and reports how it ended.
 *
 * Media goes in through extra pipe fds (3, 4, ...) that the pipeline reads with
 * `fdsrc fd=N`. Stopping is graceful, in three steps:
 *  1. End every input fd: fdsrc sees end-of-file and sends EOS down its branch.
 *     This is gst's normal end-of-stream path and finishes GDP-fed pipelines.
 *  2. SIGINT, once gst reports the pipeline PLAYING: with -e, gst-launch then sends
 *     EOS from every source, which also stops live sources that have no input fd.
 *     Not earlier: gst 1.22 deadlocks when that EOS lands during a state change
 *     (seen here with SIGINT right after start, and when the first data arrives
 *     together with it), and before PAUSED a SIGINT simply kills gst-launch.
 *     `-m` makes gst-launch print bus messages, the only way to see PLAYING.
 *  3. SIGKILL to the process group if gst is still running after the timeout
 *     (a plain MP4 killed this way is unreadable; fragmented MP4 survives).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';

export interface GstLogger {
  debug(msg: string, meta?: object): void;
  warn(msg: string, meta?: object): void;
  error(msg: string, meta?: object): void;
}

export interface GstExit {
  code: number | null;
  signal: string | null;
  /** First error gst reported (element error text, or why the pipeline could not be built). */
  error?: string;
  /** True when stop() had to SIGKILL because gst did not finish within the timeout. */
  killedByWatchdog: boolean;
}

export interface GstProcess {
  /** Also the process group id. -1 if gst-launch could not be spawned (`exited` carries why). */
  pid: number;
  /** Writable ends of fd 3, 4, ... in order. */
  inputs: Writable[];
  /** Readable ends of the fds after the inputs (gst's `fdsink fd=N`), in order. */
  outputs: Readable[];
  commandLine: string;
  /** Ends the inputs, SIGINT (→ EOS) when safe, SIGKILL after `timeoutMs` (default 10000). */
  stop(opts?: { timeoutMs?: number }): Promise<GstExit>;
  /** SIGKILL to the whole process group, at once. */
  kill(): void;
  exited: Promise<GstExit>;
  /** Settles when the pipeline first reaches PLAYING (never, if it fails before). */
  playing: Promise<void>;
}

export interface StartGstOptions {
  /** How many pipe fds to open after stdio 0-2 (1 → fd 3, 2 → fds 3 and 4). */
  extraFds: number;
  /** How many more fds gst writes to (`fdsink`), after the input ones. */
  outputFds?: number;
  logger?: GstLogger;
  /** Added to the inherited environment (e.g. GST_DEBUG). */
  env?: Record<string, string>;
  /** Applied to every line gst prints before it is logged or taken as the error (secrets in URLs). */
  redact?: (line: string) => string;
  /** Element messages on the bus (splitmuxsink fragments, multifilesink files), as `-m` prints them. */
  onMessage?: (m: GstElementMessage) => void;
}

export interface GstElementMessage {
  /** The element's name (`name=` in the pipeline). */
  element: string;
  /** The structure's name, e.g. `splitmuxsink-fragment-closed`. */
  name: string;
  /** Field values as printed, without their `(type)`; quoted strings unquoted. */
  fields: Record<string, string>;
}

const ELEMENT_MESSAGE = /^Got message #\d+ from element "([^"]+)" \(element\): ([\w-]+)(?:, (.*))?;$/;
const FIELD = /([\w-]+)=\([\w]+\)("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/gy;

/**
 * An element message as `gst-launch -m` prints it, or undefined for other lines. Field values are
 * split on `, `: the callers name their files themselves, with no commas or quotes in them.
 */
export function parseElementMessage(line: string): GstElementMessage | undefined {
  const m = ELEMENT_MESSAGE.exec(line);
  if (!m) return undefined;
  const fields: Record<string, string> = {};
  const rest = m[3] ?? '';
  FIELD.lastIndex = 0;
  for (let f = FIELD.exec(rest); f; f = FIELD.exec(rest)) {
    const raw = f[2]!;
    fields[f[1]!] = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw;
    if (FIELD.lastIndex >= rest.length) break;
  }
  return { element: m[1]!, name: m[2]!, fields };
}

const GST_LAUNCH = 'gst-launch-1.0';
const GST_FLAGS = ['-e', '-m'];
const DEFAULT_STOP_TIMEOUT_MS = 10_000;
/**
 * After its inputs end, a GDP-fed pipeline usually finishes on its own; SIGINT waits
 * this long so the common case involves no signal at all (a SIGINT that lands while
 * gst-launch is already exiting kills it with SIGINT instead of exit code 0).
 */
const SIGINT_GRACE_MS = 1_000;

const SAFE_SHELL_WORD = /^[\w@%+=:,./-]+$/;

function shellQuote(arg: string): string {
  if (arg === '!' || SAFE_SHELL_WORD.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** The command as a shell would need it, for logs and for reproducing a pipeline by hand. */
export function gstCommandLine(args: string[]): string {
  return [GST_LAUNCH, ...GST_FLAGS, ...args].map(shellQuote).join(' ');
}

/** The text of the first error gst reports, or undefined for other lines. */
export function parseGstError(line: string): string | undefined {
  // ERROR: from element /GstPipeline:pipeline0/GstFileSink:filesink0: Could not open file ...
  const fromElement = /^ERROR: from element \S+: (.*)$/.exec(line);
  if (fromElement) return fromElement[1];
  // ERROR: pipeline could not be constructed: ... / ERROR: pipeline doesn't want to preroll.
  const plain = /^ERROR: (.*)$/.exec(line);
  if (plain) return plain[1];
  // A parse failure (unknown element, unlinkable caps) is printed as a warning but fails the run.
  const erroneous = /^WARNING: erroneous pipeline: (.*)$/.exec(line);
  return erroneous?.[1];
}

const PIPELINE_PLAYING = /^Got message #\d+ from element "pipeline0" \(state-changed\): .*new-state=\(GstState\)playing/;
const SHUTTING_DOWN = /^(Got EOS from element|Execution ended|Setting pipeline to NULL)/;

export function startGst(args: string[], opts: StartGstOptions): GstProcess {
  const log = opts.logger;
  // Redacted: it is logged and shown by inspect.
  const commandLine = opts.redact ? opts.redact(gstCommandLine(args)) : gstCommandLine(args);
  const child = spawn(GST_LAUNCH, [...GST_FLAGS, ...args], {
    stdio: ['ignore', 'pipe', 'pipe', ...Array<'pipe'>(opts.extraFds + (opts.outputFds ?? 0)).fill('pipe')],
    // Own process group, so a supervisor can kill gst with everything it spawned.
    detached: true,
    env: { ...process.env, ...opts.env },
  });
  // Undefined when the binary could not be spawned; 'error' then settles `exited`.
  const pid = child.pid;

  let firstError: string | undefined;
  let playing = false;
  let shuttingDown = false;
  let killedByWatchdog = false;
  let hasExited = false;
  let onPlaying: (() => void) | undefined;
  let markPlaying!: () => void;
  const playingPromise = new Promise<void>((r) => (markPlaying = r));

  const watch = (stream: Readable | null, name: 'stdout' | 'stderr'): void => {
    if (!stream) return;
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (raw) => {
      const line = opts.redact ? opts.redact(raw) : raw;
      const error = parseGstError(line);
      if (error !== undefined) {
        firstError ??= error;
        log?.error(`gst: ${line}`, { pid });
      } else if (line.startsWith('WARNING:')) {
        log?.warn(`gst: ${line}`, { pid });
      } else {
        log?.debug(`gst ${name}: ${line}`, { pid });
      }
      if (opts.onMessage && name === 'stdout') {
        const message = parseElementMessage(line);
        if (message) opts.onMessage(message);
      }
      if (SHUTTING_DOWN.test(line)) shuttingDown = true;
      if (!playing && PIPELINE_PLAYING.test(line)) {
        playing = true;
        markPlaying();
        onPlaying?.();
      }
    });
  };
  watch(child.stdout, 'stdout');
  watch(child.stderr, 'stderr');

  const outputs = child.stdio.slice(3 + opts.extraFds) as Readable[];
  const inputs = child.stdio.slice(3, 3 + opts.extraFds).map((s) => {
    const w = s as Writable;
    // EPIPE after gst exits must not crash us; the exit status says what happened.
    w.on('error', (err) => log?.debug('gst input closed with error', { pid, error: err.message }));
    return w;
  });

  const signalGroup = (signal: NodeJS.Signals): void => {
    if (hasExited || pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // The group is already gone (exit racing with us); nothing left to signal.
    }
  };

  // If Node exits while gst still runs, gst would keep writing files nobody
  // finalizes or uploads. Take it down with us.
  const killOnExit = (): void => signalGroup('SIGKILL');
  process.on('exit', killOnExit);

  const exited = new Promise<GstExit>((resolve) => {
    const settle = (code: number | null, signal: string | null, spawnError?: string): void => {
      if (hasExited) return;
      hasExited = true;
      process.off('exit', killOnExit);
      const error = spawnError ?? firstError;
      resolve({ code, signal, killedByWatchdog, ...(error !== undefined && { error }) });
    };
    child.on('error', (err) => {
      log?.error('gst-launch could not be started', { commandLine, error: err.message });
      settle(null, null, err.message);
    });
    // 'close' (not 'exit') waits until stdout/stderr are drained, so every ERROR line has been parsed.
    child.on('close', (code, signal) => settle(code, signal));
  });

  let stopping: Promise<GstExit> | undefined;
  const stop = ({ timeoutMs = DEFAULT_STOP_TIMEOUT_MS } = {}): Promise<GstExit> => {
    stopping ??= (() => {
      const timers = [
        setTimeout(() => {
          killedByWatchdog = true;
          log?.warn('gst did not stop in time, killing it', { pid, timeoutMs });
          signalGroup('SIGKILL');
        }, timeoutMs),
      ];
      for (const input of inputs) input.end();
      const interrupt = (): void => {
        if (!shuttingDown) signalGroup('SIGINT');
      };
      const graceMs = inputs.length > 0 ? Math.min(SIGINT_GRACE_MS, timeoutMs / 2) : 0;
      timers.push(
        setTimeout(() => {
          if (playing) interrupt();
          else onPlaying = interrupt;
        }, graceMs),
      );
      return exited.finally(() => timers.forEach(clearTimeout));
    })();
    return stopping;
  };

  return {
    pid: pid ?? -1,
    inputs,
    outputs,
    commandLine,
    stop,
    kill: () => signalGroup('SIGKILL'),
    exited,
    playing: playingPromise,
  };
}
