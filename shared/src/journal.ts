// A job's journal, `job.json` in its scratch directory (<tmp_dir>/<egress_id>/). The handler writes
// it; a node started after its own supervisor died reads it to finish the job's report: the request
// (it names the storage), every output reported so far, and, when the handler outlived its
// supervisor, the final EgressInfo it had nobody to send to. Written whole and renamed into place,
// so a reader never sees half of it.
import { readFileSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { OutputReport } from './ipc.ts';

export const JOURNAL_FILE = 'job.json';

export interface Journal {
  egressId: string;
  /** rpc.StartEgressRequest, base64. */
  request: string;
  /** The handler's pid and its start time (clock ticks since boot, /proc/<pid>/stat field 22): a pid alone may be reused. */
  pid: number;
  pidStart: number;
  /** The same for the supervisor that forked it: while that runs, the job is its node's, not an orphan. */
  supervisorPid: number;
  supervisorStart: number;
  outputs: OutputReport[];
  /** The final EgressInfo (base64), written only by a handler whose supervisor had gone. */
  final?: string;
  /** Set by the supervisor once livekit-server has the job's final status: the scratch may then age out. */
  reported?: boolean;
}

/** Start time of `pid` in clock ticks since boot, or undefined if there is no such process. */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces and parentheses): state is field 3, starttime 22.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? undefined : Number(fields[19]);
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote the journal still runs. */
export const ownerAlive = (j: Journal): boolean => processStartTime(j.pid) === j.pidStart;

/** Whether the node that ran the job still runs (then it reports the job itself). */
export const supervisorAlive = (j: Journal): boolean => processStartTime(j.supervisorPid) === j.supervisorStart;

export async function writeJournal(dir: string, j: Journal): Promise<void> {
  const file = path.join(dir, JOURNAL_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(j));
  await rename(tmp, file);
}

/** The journal in `dir`, or undefined when there is none or it does not read as one. */
export async function readJournal(dir: string): Promise<Journal | undefined> {
  try {
    const j = JSON.parse(await readFile(path.join(dir, JOURNAL_FILE), 'utf8')) as Journal;
    return typeof j.egressId === 'string' && typeof j.request === 'string' && Array.isArray(j.outputs) ? j : undefined;
  } catch {
    return undefined;
  }
}

/** Notes in `dir`'s journal that livekit-server has the job's final status; nothing to do without one. */
export async function markReported(dir: string): Promise<void> {
  const j = await readJournal(dir);
  if (j && !j.reported) await writeJournal(dir, { ...j, reported: true }).catch(() => undefined);
}

/**
 * The handler's side: created at the job's start, updated at each reported output. Writes are
 * chained, so they land in order and the last one wins.
 */
export class JournalWriter {
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly dir: string,
    private readonly journal: Journal,
  ) {}

  static start(dir: string, egressId: string, request: string): JournalWriter {
    const w = new JournalWriter(dir, {
      egressId,
      request,
      pid: process.pid,
      pidStart: processStartTime(process.pid) ?? 0,
      supervisorPid: process.ppid,
      supervisorStart: processStartTime(process.ppid) ?? 0,
      outputs: [],
    });
    w.save();
    return w;
  }

  addOutput(o: OutputReport): void {
    this.journal.outputs.push(o);
    this.save();
  }

  /** Records the final EgressInfo; resolves once it is on disk. */
  async finish(finalInfo: string): Promise<void> {
    this.journal.final = finalInfo;
    this.save();
    await this.tail;
  }

  private save(): void {
    const snapshot = structuredClone(this.journal);
    // A journal that cannot be written costs only the after-restart report, never the recording.
    this.tail = this.tail.then(() => writeJournal(this.dir, snapshot)).catch(() => undefined);
  }
}
