// File outputs: naming (egress-behaviour §4.3) and the path checks.
import { errors } from '../../errors.ts';
import { applyPlaceholders, cleanPath, fileOutputPath, type NamingContext } from '../naming.ts';
import { checkOutputPath } from '../path-safety.ts';
import type { FileOutputPlan, FileType, StorageTarget } from '../pipeline-config.ts';
import { FILE_EXTENSION } from '../codecs.ts';

/** An explicit name (not empty, not a directory) must carry `{retry}` on a retry, or it would overwrite. */
export function checkRetry(requested: string, retryCount: number): void {
  if (retryCount > 0 && requested !== '' && !requested.endsWith('/') && !requested.includes('{retry}')) throw errors.retryUnsupported();
}

/**
 * `fileType` undefined (track egress, passthrough): only the first pass and cleaning; the handler
 * names it once the codec is known (`resolveSdkPlaceholders`).
 */
export function planFile(
  requested: string,
  fileType: FileType | undefined,
  identifier: string,
  ctx: NamingContext,
  storage: StorageTarget,
  disableManifest: boolean,
): FileOutputPlan {
  checkRetry(requested, ctx.retryCount ?? 0);
  const templated = applyPlaceholders(requested, ctx);
  checkOutputPath(templated, storage, 'filepath');
  const filepath = fileType ? fileOutputPath(requested, FILE_EXTENSION[fileType], identifier, ctx) : cleanPath(templated);
  checkOutputPath(filepath, storage, 'filepath');
  return { type: 'file', ...(fileType ? { fileType } : {}), filepath, disableManifest, storage };
}
