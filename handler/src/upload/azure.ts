// Azure Blob storage (egress-behaviour §12.2): shared-key auth, block uploads of 4 MiB, the Go
// egress's retry policy (exponential, 5 tries, at most 5 s between tries), SAS URLs as presigned locations.
import { stat } from 'node:fs/promises';
import {
  BlobSASPermissions,
  BlobServiceClient,
  StorageRetryPolicyType,
  StorageSharedKeyCredential,
  type ContainerClient,
} from '@azure/storage-blob';
import type { AzureConfig } from '@egress/shared/config/types.ts';
import type { StorageBackend, UploadResult } from './backend.ts';
import { redact, StorageError, uploadFailed } from './redact-error.ts';

export const AZURE_BLOCK_SIZE = 4 * 1024 * 1024;
const PRESIGN_EXPIRY_MS = 7 * 24 * 3600 * 1000;

export interface AzureBackendOptions {
  generatePresignedUrl?: boolean;
  /** Blocks uploaded in parallel. Default 4. */
  concurrency?: number;
  /** Block size; files larger than one block are uploaded as blocks. Default 4 MiB. */
  blockSize?: number;
  /** SDK retry policy; defaults to the Go egress's (5 tries, 4 s base delay, 5 s max delay). */
  retry?: { maxTries?: number; retryDelayMs?: number; maxRetryDelayMs?: number; tryTimeoutMs?: number };
}

/** Config values first, then AZURE_STORAGE_ACCOUNT / AZURE_STORAGE_KEY (the product brief's fallbacks). */
export function azureCredentials(cfg: AzureConfig): { accountName: string; accountKey: string } {
  return {
    accountName: cfg.accountName || process.env.AZURE_STORAGE_ACCOUNT || '',
    accountKey: cfg.accountKey || process.env.AZURE_STORAGE_KEY || '',
  };
}

export function azureEndpoint(cfg: AzureConfig, accountName: string): string {
  return (cfg.endpoint || `https://${accountName}.blob.core.windows.net`).replace(/\/+$/, '');
}

export class AzureBackend implements StorageBackend {
  readonly kind = 'Azure' as const;
  readonly description: string;
  private readonly container?: ContainerClient;
  private readonly secrets: string[];
  private readonly endpoint: string;

  constructor(
    readonly cfg: AzureConfig,
    private readonly opts: AzureBackendOptions = {},
  ) {
    const { accountName, accountKey } = azureCredentials(cfg);
    this.secrets = [accountKey];
    this.endpoint = azureEndpoint(cfg, accountName || '<account>');
    this.description = `Azure container "${cfg.containerName}" at ${redact(this.endpoint, this.secrets)}`;
    // Missing credentials surface at upload time, like any other upload failure (backup still applies).
    if (!accountName || !accountKey) return;
    const r = opts.retry ?? {};
    const service = new BlobServiceClient(this.endpoint, new StorageSharedKeyCredential(accountName, accountKey), {
      retryOptions: {
        retryPolicyType: StorageRetryPolicyType.EXPONENTIAL,
        maxTries: r.maxTries ?? 5,
        retryDelayInMs: r.retryDelayMs ?? 4000,
        maxRetryDelayInMs: r.maxRetryDelayMs ?? 5000,
        ...(r.tryTimeoutMs ? { tryTimeoutInMs: r.tryTimeoutMs } : {}),
      },
    });
    this.container = service.getContainerClient(cfg.containerName);
  }

  async upload(localPath: string, storagePath: string, contentType: string): Promise<UploadResult> {
    if (!this.container) {
      throw new StorageError('Azure', `Azure upload failed: ${this.description}: no account name/key (config or AZURE_STORAGE_ACCOUNT/AZURE_STORAGE_KEY)`, false);
    }
    try {
      const { size } = await stat(localPath);
      const blob = this.container.getBlockBlobClient(storagePath);
      const blockSize = this.opts.blockSize ?? AZURE_BLOCK_SIZE;
      await blob.uploadFile(localPath, {
        blockSize,
        maxSingleShotSize: blockSize,
        concurrency: this.opts.concurrency ?? 4,
        blobHTTPHeaders: { blobContentType: contentType },
      });
      const location = this.opts.generatePresignedUrl
        ? await blob.generateSasUrl({ permissions: BlobSASPermissions.parse('r'), expiresOn: new Date(Date.now() + PRESIGN_EXPIRY_MS) })
        : `${this.endpoint}/${this.cfg.containerName}/${storagePath}`;
      return { location, size };
    } catch (err) {
      throw uploadFailed(this, err, this.secrets);
    }
  }
}

export function createAzureBackend(cfg: AzureConfig, opts: AzureBackendOptions = {}): AzureBackend {
  return new AzureBackend(cfg, opts);
}
