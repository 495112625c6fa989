// The back-end for a resolved storage target. Resolution itself (egress-behaviour §5.4) is pure and
// lives in shared/src/plan/storage.ts, run at plan time; it is re-exported here for handler code.
import type { StorageBackend } from './backend.ts';
import { createLocalBackend } from './local.ts';
import type { StorageTarget } from '@egress/shared/plan/storage.ts';

export {
  ASSUME_ROLE_DISABLED,
  REQUEST_S3_MAX_RETRIES,
  REQUEST_S3_MAX_RETRY_DELAY_MS,
  REQUEST_S3_MIN_RETRY_DELAY_MS,
  isLocalTarget,
  resolveStorage,
  storageKey,
  type RequestUpload,
  type StorageResolveConfig,
  type StorageTarget,
} from '@egress/shared/plan/storage.ts';

/**
 * The back-end for a resolved target (or for `backup`). Local disk when no cloud block is set.
 * Cloud SDKs load on first use: they take a second to import, and most handlers need one at most.
 */
export async function backendFor(target: StorageTarget, opts: { localDir?: string } = {}): Promise<StorageBackend> {
  const presign = { generatePresignedUrl: target.generatePresignedUrl };
  if (target.s3) return (await import('./s3.ts')).createS3Backend(target.s3, presign);
  if (target.azure) return (await import('./azure.ts')).createAzureBackend(target.azure, presign);
  if (target.gcp) return (await import('./gcs.ts')).createGcsBackend(target.gcp);
  if (target.alioss) return (await import('./alioss.ts')).createAliOssBackend(target.alioss);
  return createLocalBackend(target.localDir ?? opts.localDir ?? process.cwd());
}
