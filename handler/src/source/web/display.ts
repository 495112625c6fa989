// The job's own X display: an Xvfb of the page's size, on a free display number.
//
// `-displayfd` lets the X server pick that number itself: it tries :0, :1, … and takes the first
// whose lock file and socket are free, atomically, then writes the number to the fd once it
// accepts clients. That is both the free-number search and the readiness wait, with no race
// between two jobs starting at once. `-nolisten unix` leaves only the abstract socket
// (@/tmp/.X11-unix/X<n>), so nothing is left on disk when Xvfb is killed.
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { errors } from '@egress/shared/errors.ts';
import type { ProcessReport } from '@egress/shared/ipc.ts';

const READY_TIMEOUT_MS = 10_000;

export interface Display {
  /** e.g. `:3` */
  name: string;
  pid: number;
  close(): Promise<void>;
}

export function xvfbArgs(size: { width: number; height: number; depth: number }): string[] {
  return ['-displayfd', '3', '-screen', '0', `${size.width}x${size.height}x${size.depth}`, '-ac', '-nolisten', 'tcp', '-nolisten', 'unix'];
}

/** `report` hears of Xvfb the moment it is spawned, so that a killed handler never leaves it running. */
export async function startDisplay(size: { width: number; height: number; depth: number }, report: (p: ProcessReport) => void): Promise<Display> {
  const args = xvfbArgs(size);
  const child = spawn('Xvfb', args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], detached: true });
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => void (stderr = (stderr + b.toString()).slice(-2000)));
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await exited;
  };
  if (child.pid === undefined) {
    const err = await new Promise<Error>((r) => child.once('error', r));
    throw errors.launchXvfb(err.message);
  }
  report({ pid: child.pid, pgid: child.pid, name: 'Xvfb', commandLine: ['Xvfb', ...args].join(' ') });
  try {
    const n = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`not ready in ${READY_TIMEOUT_MS / 1000} s`)), READY_TIMEOUT_MS);
      (child.stdio[3] as Readable).on('data', (b: Buffer) => {
        out += b.toString();
        if (!out.includes('\n')) return;
        clearTimeout(timer);
        resolve(out.trim());
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(stderr.trim().split('\n').pop() || `exited ${child.exitCode ?? child.signalCode}`));
      });
    });
    return { name: `:${n}`, pid: child.pid, close };
  } catch (err) {
    await close();
    throw errors.launchXvfb((err as Error).message);
  }
}
