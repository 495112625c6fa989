import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A child process whose stdout+stderr go to a log file and which dies with the test process. */
export interface Service {
  readonly name: string;
  readonly logPath: string;
  /** Set once the process has exited (code or signal). */
  readonly exited: boolean;
  logTail(lines?: number): string;
  /** For fault injection: SIGSTOP, SIGCONT, SIGKILL. */
  signal(signal: NodeJS.Signals): void;
  /** keepTmp leaves the log in place, e.g. after a failed start whose error names it. */
  stop(opts?: { keepTmp?: boolean }): Promise<void>;
}

const STOP_GRACE_MS = 5000;
const running = new Set<ChildProcess>();

function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
}

// 'exit' handlers cannot await, so the children get SIGKILL. Signals skip 'exit' handlers,
// hence the extra listeners; `once` plus re-raising keeps the default "terminate" behaviour
// when nobody else listens for the signal.
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killAll();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  });
}

export function makeTmpDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `egress-rig-${prefix}-`));
}

function tail(path: string, lines: number): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Spawns `command` with its output appended to `<tmpDir>/<name>.log`.
 * stop() sends SIGTERM twice (livekit-server only skips waiting for participants on the
 * second one), then SIGKILL after STOP_GRACE_MS, and removes tmpDir (unless $RIG_KEEP_LOGS
 * is set, for looking at server logs after a failed test).
 */
export function spawnService(
  name: string,
  command: string,
  args: string[],
  opts: { tmpDir: string },
): Service {
  const logPath = join(opts.tmpDir, `${name}.log`);
  const fd = openSync(logPath, 'a');
  const child = spawn(command, args, {
    stdio: ['ignore', fd, fd],
    cwd: opts.tmpDir,
  });
  closeSync(fd);
  running.add(child);
  // A test that forgets stop() must still be able to exit; the 'exit' hook then kills the child.
  child.unref();

  let exited = false;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      running.delete(child);
      resolve();
    });
    // spawn failures (ENOENT) emit 'error' without 'exit'
    child.once('error', (err) => {
      appendFileSync(logPath, `failed to spawn ${command}: ${err.message}\n`);
      exited = true;
      running.delete(child);
      resolve();
    });
  });

  let stopping: Promise<void> | undefined;
  const stop = (stopOpts?: { keepTmp?: boolean }): Promise<void> => {
    stopping ??= (async () => {
      if (!exited) {
        // keeps the event loop alive until the exit is observed
        child.ref();
        child.kill('SIGTERM');
        await Promise.race([exitPromise, sleep(200)]);
        if (!exited) child.kill('SIGTERM');
        await Promise.race([exitPromise, sleep(STOP_GRACE_MS)]);
        if (!exited) child.kill('SIGKILL');
        await exitPromise;
      }
      if (!stopOpts?.keepTmp && !process.env.RIG_KEEP_LOGS) rmSync(opts.tmpDir, { recursive: true, force: true });
    })();
    return stopping;
  };

  return {
    name,
    logPath,
    get exited() {
      return exited;
    },
    logTail: (lines = 40) => tail(logPath, lines),
    signal: (signal) => void child.kill(signal),
    stop,
  };
}

/**
 * Polls `ready` until it resolves true. Fails early if the service exits, and after
 * `timeoutMs`; both errors carry the tail of the service log.
 */
export async function waitReady(
  service: Service,
  ready: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (service.exited) {
      throw new Error(
        `${service.name} exited during startup (log: ${service.logPath}):\n${service.logTail()}`,
      );
    }
    if (await ready().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new Error(
        `${service.name} not ready after ${timeoutMs} ms (log: ${service.logPath}):\n${service.logTail()}`,
      );
    }
    await sleep(100);
  }
}
