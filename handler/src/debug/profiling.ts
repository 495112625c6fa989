// debug.enable_profiling: when a pipeline fails, keep what explains it — the pipeline graph, the
// gst-launch command lines, the handler's log and a CPU profile of the handler — and say where.
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import path from 'node:path';

export interface DebugArtifacts {
  dot?: string;
  commandLines: string[];
  logPath?: string;
}

export class Profiler {
  private readonly session = new Session();

  async start(): Promise<void> {
    this.session.connect();
    await this.session.post('Profiler.enable');
    await this.session.post('Profiler.start');
  }

  /** Writes the bundle under `dir` and returns the directory. */
  async saveBundle(dir: string, artifacts: DebugArtifacts): Promise<string> {
    await mkdir(dir, { recursive: true });
    const { profile } = await this.session.post('Profiler.stop');
    await writeFile(path.join(dir, 'handler.cpuprofile'), JSON.stringify(profile));
    await writeFile(path.join(dir, 'gst-launch.txt'), artifacts.commandLines.join('\n\n') + '\n');
    if (artifacts.dot) await writeFile(path.join(dir, 'pipeline.dot'), artifacts.dot);
    if (artifacts.logPath) await copyFile(artifacts.logPath, path.join(dir, 'handler.log')).catch(() => undefined);
    this.session.disconnect();
    return dir;
  }
}
