// Where a spare handler keeps what it starts before its job (handler_pool.browser): the browser
// profile. Named after its pid, so the supervisor finds it when the spare dies without removing it.
// Its null sink is named the same way (pulse.ts). Spares and jobs both list here what they start.
import { appendFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ProcessReport } from './ipc.ts';
import type { Logger } from './logging.ts';

const SPARE_DIR = /^spare-(\d+)$/;

export const spareScratch = (tmpDir: string, pid: number): string => path.join(tmpDir, `spare-${pid}`);

/**
 * Whether a process of that pid runs (a spare whose scratch or sink is still in use). A zombie does
 * not: it holds nothing, and some inits (a container's first process) never reap it, so a spare
 * killed along with its parent would look alive for ever.
 */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/** The pid of a spare's scratch directory name, or undefined for any other name. */
export function spareOfDir(name: string): number | undefined {
  const m = SPARE_DIR.exec(name);
  return m ? Number(m[1]) : undefined;
}

// What a spare or a job started, one report a line, in its scratch: when the whole process tree dies
// at once (SIGKILL to every pid), nobody is left to kill the detached Xvfb, Chromium, parec and gst
// (each in its own group); the next node does.
const PROCESSES_FILE = 'processes.jsonl';

/** Appends to `dir`, which must exist: a scratch already removed (its job done) is not made again. */
export function recordProcess(dir: string, report: ProcessReport, log: Logger): void {
  try {
    appendFileSync(path.join(dir, PROCESSES_FILE), JSON.stringify(report) + '\n');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn('could not record a process for the next node', { error: (err as Error).message });
  }
}

/** The processes a dead spare or job recorded that still run as what it started (a reused pid is left alone). */
export function survivingProcesses(dir: string): ProcessReport[] {
  let text: string;
  try {
    text = readFileSync(path.join(dir, PROCESSES_FILE), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as ProcessReport)
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').includes(p.name);
      } catch {
        return false;
      }
    });
}
