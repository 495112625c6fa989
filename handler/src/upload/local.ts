// Local disk as a "storage": no storage configured → results move to local_output_dir/<storage path>;
// also the product brief's `backup_storage: /path`. The source is removed only once the file is in
// place (rename; across devices: copy to a temp name, rename into place, then unlink the source).
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '@egress/shared/config/types.ts';
import { errors, type EgressError } from '@egress/shared/errors.ts';
import type { StorageBackend, UploadResult } from './backend.ts';
import { uploadFailed } from './redact-error.ts';

export class LocalBackend implements StorageBackend {
  readonly kind = 'Local' as const;
  readonly movesSource = true;
  readonly description: string;
  readonly dir: string;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
    this.description = `Local directory "${this.dir}"`;
  }

  /** Absolute destination of a storage path (absolute storage paths are kept as they are). */
  destination(storagePath: string): string {
    return path.resolve(this.dir, storagePath);
  }

  async upload(localPath: string, storagePath: string): Promise<UploadResult> {
    const dest = this.destination(storagePath);
    try {
      const { size } = await stat(localPath);
      if (path.resolve(localPath) === dest) return { location: dest, size };
      await mkdir(path.dirname(dest), { recursive: true, mode: 0o755 });
      await moveFile(localPath, dest);
      return { location: dest, size };
    } catch (err) {
      throw uploadFailed(this, err);
    }
  }
}

/** rename(2), or copy + rename + unlink when source and destination are on different file systems. */
export async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
  }
  const tmp = `${to}.partial-${randomBytes(4).toString('hex')}`;
  try {
    await copyFile(from, tmp);
    await rename(tmp, to);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await unlink(from);
}

export function createLocalBackend(dir: string): LocalBackend {
  return new LocalBackend(dir);
}

/**
 * Request planning: with `disallow_local_storage`, a request that resolves to local disk is refused
 * with `request has missing or invalid field: output` (400). Returns the error, or undefined when allowed.
 */
export function checkLocalStorageAllowed(config: Pick<Config, 'disallowLocalStorage'>, usesLocalStorage: boolean): EgressError | undefined {
  return config.disallowLocalStorage && usesLocalStorage ? errors.invalidField('output') : undefined;
}
