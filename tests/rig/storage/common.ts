// Shared by the storage emulators: a child process that can be taken down and brought back on the same
// port with the same data directory, to simulate a storage server that is briefly unavailable.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { makeTmpDir, spawnService, waitReady, type Service } from '../process.ts';

export interface RestartableService {
  /** Root temp dir: data under `data/`, one log dir per run under `run-<n>/`. */
  readonly root: string;
  readonly dataDir: string;
  readonly logPath: string;
  /** Kills the server; the port then refuses connections. Data is kept. */
  down(): Promise<void>;
  /** Starts it again on the same port with the same data dir; resolves when it answers. */
  up(): Promise<void>;
  /** Kills the server and removes its data (unless $RIG_KEEP_LOGS). */
  stop(): Promise<void>;
}

export async function startRestartable(opts: {
  name: string;
  command: string;
  args: (dataDir: string) => string[];
  ready: () => Promise<boolean>;
  timeoutMs?: number;
}): Promise<RestartableService> {
  const root = makeTmpDir(opts.name);
  const dataDir = join(root, 'data');
  mkdirSync(dataDir, { recursive: true });
  let run = 0;
  let current: Service | undefined;

  const up = async (): Promise<void> => {
    if (current && !current.exited) return;
    const runDir = join(root, `run-${++run}`);
    mkdirSync(runDir, { recursive: true });
    const service = spawnService(opts.name, opts.command, opts.args(dataDir), { tmpDir: runDir });
    current = service;
    try {
      await waitReady(service, opts.ready, opts.timeoutMs ?? 20_000);
    } catch (err) {
      await service.stop({ keepTmp: true });
      throw err;
    }
  };
  const down = async (): Promise<void> => {
    await current?.stop({ keepTmp: true });
  };
  await up();
  return {
    root,
    dataDir,
    get logPath() {
      return current?.logPath ?? '';
    },
    up,
    down,
    async stop() {
      await down();
      if (!process.env.RIG_KEEP_LOGS) rmSync(root, { recursive: true, force: true });
    },
  };
}

/** True once anything answers HTTP on the port (any status). */
export async function answersHttp(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}
