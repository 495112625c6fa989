// Temporary files of random bytes for upload tests, and their digests.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export interface ScratchFiles {
  dir: string;
  /** A new file of `size` random bytes in `dir` (default: the scratch directory). */
  make(size: number, dir?: string): { path: string; data: Buffer };
  remove(): void;
}

export function scratchFiles(prefix: string): ScratchFiles {
  const root = mkdtempSync(join(tmpdir(), `${prefix}-`));
  let n = 0;
  return {
    dir: root,
    make(size, dir = root) {
      const data = randomBytes(size);
      const path = join(dir, `f${++n}.bin`);
      writeFileSync(path, data);
      return { path, data };
    },
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}
