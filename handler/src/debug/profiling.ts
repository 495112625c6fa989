// debug.enable_profiling: when a pipeline fails, keep what explains it — the pipeline graph, the
// gst-launch command lines, the handler's log and a CPU profile of the handler — upload it to the
// `debug` block's storage when there is one, and say where.
import { copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import type { StorageConfig } from '@egress/shared/config/types.ts';
import { createUploader, type UploadLogger } from '../upload/uploader.ts';

/** The bundle's files, in the order they are uploaded. */
const BUNDLE_FILES = ['pipeline.dot', 'gst-launch.txt', 'handler.log', 'handler.cpuprofile'];

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

/**
 * Uploads the bundle in `dir` as `<egress_id>/<file>` (F63) and returns where it went: the storage
 * location of its folder. The local copy stays: it is small, and it is all the operator has if this
 * fails. Throws when no file could be stored; the caller says so, and the job's result stays its own.
 */
export async function uploadBundle(dir: string, egressId: string, storage: StorageConfig, log: UploadLogger): Promise<string> {
  const present = new Set(await readdir(dir));
  const uploader = await createUploader(storage, undefined, { logger: log });
  try {
    const stored = await Promise.all(
      BUNDLE_FILES.filter((f) => present.has(f)).map((f) => uploader.enqueue(path.join(dir, f), `${egressId}/${f}`, undefined, { deleteAfterUpload: false })),
    );
    const first = stored[0];
    if (!first) throw new Error('the bundle is empty');
    // The folder: the location less its file name (and any presigned query).
    return first.location.split('?')[0]!.replace(/\/[^/]*$/, '/');
  } finally {
    await uploader.close();
  }
}
